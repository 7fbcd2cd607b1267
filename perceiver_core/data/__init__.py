"""Data: loading examples into batches.

    loader.py   torchdata.nodes loaders (prepare in workers, batch, pin, prefetch), collate, resumable state
    arrays.py   helpers for datasets held in memory as numpy arrays (public as `perceiver_core.datasets`)
    nodata.py   the `none` dataset: facts without examples, for presets and imported checkpoints
    readers.py  bounded readers of input files (.npy, images, bytes): sizes checked before anything is allocated
    files/      FileDataset: class folders, manifests and tables read lazily, splits, cached statistics
    files/      file-backed datasets every modality shares: folders, manifests, tables (public as
                `perceiver_core.datasets.FileDataset`)
"""
