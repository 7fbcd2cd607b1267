"""File-backed datasets shared by every modality: folders, manifests and tables, indexed lazily, decoded in the
data workers, verified once, statistics cached beside the data.

    tables.py   CSV / JSON lines / Parquet read row by row, bounded
    index.py    the three layouts -> rows, splits, class names
    cache.py    fingerprint of the files and the JSON cache of one verification + statistics pass
    dataset.py  FileDataset (what plugins subclass) and FileSplit (a lazy split)
    stats.py    per-channel running statistics
"""
