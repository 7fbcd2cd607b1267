"""The training runtime: what turns a Pipeline into a trained checkpoint.

    training.py     the training loop and evaluation (one process or torchrun)
    resume.py       resume_spec: a resumed run's pipeline from its own pipeline.json, changed flags refused
    ema.py          EMA of the weights (train.ema_decay)
    callbacks.py    Callback (on_step, on_eval, on_checkpoint, ...), CSV and TensorBoard loggers, early stopping
    transfer.py     init_from: load, re-initialise and freeze modules from another checkpoint (fine-tuning)
    optim.py        optimisers (AdamW, LAMB), the warm-up + cosine schedule, the no_weight_decay() convention
    checkpoint.py   safetensors checkpoints as one unit (checkpoint.json published last), load, from_checkpoint
    faults.py       PERCEIVER_FAULT: kill points in the save path, for the fault-injection tests
    lock.py         RunLock: one run per --out folder
    metrics.py      metrics.jsonl: reading it tolerantly, trimming it to one run on resume
    distributed.py  process groups (a gloo group for host tensors), rank helpers, RNG gathering
    backends.py     backend selection ("auto": cuda > mps > cpu); cpu.py: the core's own CPU backend
    threads.py      thread oversubscription check (doctor, and the warning at the start of train)
    plot.py         the metrics PNG
"""
