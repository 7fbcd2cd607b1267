"""Public helpers for dataset plugins: in-memory arrays, and the file-backed datasets every modality shares
(the implementation lives in `perceiver_core.data`)."""

from .config.data import FileDataConfig
from .data.arrays import ArraySplit, stratified_split
from .data.files.dataset import FileDataset, FileSplit
from .data.files.stats import ChannelStats
from .data.files.tables import Table, open_table

__all__ = ["ArraySplit", "stratified_split", "FileDataConfig", "FileDataset", "FileSplit", "ChannelStats", "Table",
           "open_table"]
