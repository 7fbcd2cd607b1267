"""The training runtime: what turns a Pipeline into a trained checkpoint.

    training.py     the training loop and evaluation (one process or torchrun)
    optim.py        optimisers (AdamW, LAMB) and the warm-up + cosine schedule
    checkpoint.py   safetensors checkpoints: save, load, from_checkpoint
    distributed.py  process groups, rank helpers, RNG gathering
    backends.py     backend selection ("auto": cuda > mps > cpu)
    plot.py         the metrics PNG
"""
