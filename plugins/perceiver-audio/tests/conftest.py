"""Prepared data of the tests goes to a temporary folder, never the user's cache."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _data_dir(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("PERCEIVER_DATA_DIR", str(tmp_path_factory.mktemp("audio-data")))
    yield
    mp.undo()
