"""The `perceiver` command line.

    cli.py        argument parsing and the small commands (plugins, pipelines, validate, train, evaluate, ...)
    bench/        `perceiver bench`: our model vs HF transformers, throughput, MFU, memory
    import_hf.py  `perceiver import-hf`: HF transformers Perceiver checkpoints -> ours (also a Python API)
"""
