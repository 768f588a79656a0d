"""Fixtures of the command-line tests: an isolated folder, a SQLite store, a terminal."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# --import-mode=importlib leaves sys.path alone; the test modules import cli_terminal by name.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from cli_terminal import Library, Terminal, sqlite_url  # noqa: E402 - needs the folder on sys.path

from incidentflow import load_config  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own empty folder, whatever INCIDENTFLOW_* the host has set."""
    for name in list(os.environ):
        if name.startswith("INCIDENTFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TZ", "UTC")  # times are shown in the local zone; tests read UTC
    monkeypatch.chdir(tmp_path)
    assert load_config().source is None, "a configuration file above the test folder leaks in"


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "incidents.db")


@pytest.fixture
def term(capsys: pytest.CaptureFixture[str], store_url: str) -> Terminal:
    return Terminal(capsys, store_url)


@pytest.fixture
def library(store_url: str) -> Library:
    return Library(store_url)
