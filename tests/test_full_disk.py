"""A full disk while a run writes its small files (pipeline.json, metrics.png, metrics.csv, the lock record) is one
line naming the file, exit 2, and the file that was there before is unchanged (no torn file, no temporary left).

The disk is "filled" with RLIMIT_FSIZE (a write past the limit fails with EFBIG, as ENOSPC would) or with
/dev/full; the checkpoint's own full-disk handling is tested in test_fault_injection.py.
"""

from __future__ import annotations

import contextlib
import json
import resource
import signal
from pathlib import Path

import pytest

from perceiver_core.errors import UserError


TINY = Path(__file__).parent / "tiny.toml"


@contextlib.contextmanager
def file_size_limit(limit: int):
    """Writes past `limit` bytes fail (EFBIG) in this process, for the block (the soft limit only: restored)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_a_full_disk_while_resume_rewrites_pipeline_json_keeps_it(tmp_path):
    """`train --resume` rewrites pipeline.json first: the disk fills (files are capped below its size): one line
    naming it, exit 2, and the run's pipeline.json (which --resume reads back) is whole, so the run still resumes."""
    from perceiver_core import load_registry, train

    out = tmp_path / "run"
    spec = load_registry([TINY], include_default=False).resolve("tiny", ["data.batch_size=500", "train.max_steps=6"])
    train(spec, out, stop_after=3, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert len(before["pipeline.json"]) > 1000
    with file_size_limit(1000), pytest.raises(UserError) as info:  # (the CLI prints a UserError as one line, exit 2)
        train(spec, out, resume=out, progress=False)
    message = str(info.value)
    assert message.startswith(f"could not write {out / 'pipeline.json'}: File too large"), message
    assert "intact: free space and continue with --resume" in message and "\n" not in message
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert after == before
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_full_disk_while_drawing_metrics_png_is_one_line_and_keeps_the_old_plot(tmp_path):
    pytest.importorskip("matplotlib", reason="the metrics plot needs matplotlib (pip install perceiver-core[plot])")
    from perceiver_core.runtime.plot import plot_metrics

    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps({"step": 3 * e, "epoch": e, "split": s, "loss": 2.0 / e}) + "\n"
                               for e in (1, 2, 3) for s in ("train_epoch", "test")))
    png = tmp_path / "metrics.png"
    png.write_bytes(b"the previous plot")
    with file_size_limit(2000), pytest.raises(UserError) as info:  # a plot is ~30 KB
        plot_metrics(metrics, png)
    message = str(info.value)
    assert message.startswith(f"could not write {png}: File too large"), message
    assert "free space and run `perceiver train --resume" in message and "\n" not in message
    assert png.read_bytes() == b"the previous plot"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl", "metrics.png"]


def test_a_full_disk_while_rewriting_metrics_csv_keeps_the_previous_rows(tmp_path):
    from types import SimpleNamespace

    from perceiver_core.runtime.callbacks import CsvLogger

    path = tmp_path / "metrics.csv"
    logger = CsvLogger(path)
    trainer = SimpleNamespace(step=1, epoch=0)
    logger.on_eval(trainer, "test", {"loss": 1.5, "accuracy": 0.5})
    before = path.read_bytes()
    trainer.step = 2
    with file_size_limit(len(before) + 5), pytest.raises(UserError, match="could not write .*metrics.csv: File too "
                                                                           "large .*the last checkpoint is intact"):
        logger.on_eval(trainer, "test", {"loss": 1.25, "accuracy": 0.75})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]


def test_no_space_left_says_the_disk_is_full(tmp_path):
    """ENOSPC itself (writing to /dev/full's kind of device): the message says the disk is full, not 'is it?'."""
    import errno
    import os

    from perceiver_core.runtime.files import atomic_write, disk_error

    assert "(the disk is full); then" in str(disk_error("x", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
                                                       "then"))
    target = tmp_path / "pipeline.json"
    target.write_text("old")
    real_open = open

    def full(path, mode="r", *args, **kwargs):  # every write of the temporary file: ENOSPC
        f = real_open("/dev/full", mode, *args, **kwargs) if "w" in mode else real_open(path, mode, *args, **kwargs)
        return f

    import perceiver_core.runtime.files as files

    files.open = full
    try:
        with pytest.raises(UserError, match=r"could not write .*pipeline.json: No space left on device \(the disk is "
                                            r"full\); free space"):
            atomic_write(target, "new" * 10_000, "free space")
    finally:
        del files.open
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["pipeline.json"]


def test_schema_out_on_a_full_disk_is_one_line_and_a_device_stays_a_device(cli, tmp_path):
    """`schema --out /dev/full`: one line naming the file; the device is written in place (renaming over it would
    replace /dev/full by a regular file). A link is followed: the file it names is replaced, the link stays."""
    import stat

    result = cli("schema", "--out", "/dev/full")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "could not write /dev/full: No space left on device (the disk is full)" in result.stderr
    assert stat.S_ISCHR(Path("/dev/full").stat().st_mode)
    target, link = tmp_path / "schema.json", tmp_path / "link.json"
    target.write_text("old")
    link.symlink_to(target)
    assert cli("schema", "--out", str(link)).returncode == 0
    assert link.is_symlink() and json.loads(target.read_text())["$defs"]
