"""The `perceiver` command line.

    cli.py            argument parsing and the small commands (plugins, pipelines, validate, train, evaluate, ...)
    predict_files.py  `perceiver predict` rows: class names and probabilities, dense outputs written as files
    explain.py        `perceiver explain`: attention maps as pictures and JSON
    data.py           `perceiver data`: what a pipeline's dataset found
    inspect.py        `perceiver inspect`: a checkpoint's metadata
    doctor.py         `perceiver doctor`: an installation's health, for bug reports
    bench/            `perceiver bench`: our model vs HF transformers, throughput, MFU, memory
    import_hf.py      `perceiver import-hf`: HF transformers Perceiver checkpoints -> ours (also a Python API)
"""
