"""``export -o`` writes through what is not a regular file and never replaces it.

A FIFO, or a symlink, is written through as the shell's ``>`` would; a regular
file is replaced whole, keeping its permissions. Everything here lives in the
test's folder: no test touches a real device.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from cli_terminal import SCRIPT, Terminal, declared, ok, one_line_error, process

from incidentflow.cli import EXIT_USAGE

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and symlinks are POSIX")


@contextmanager
def reading(fifo: Path) -> Iterator[list[bytes]]:
    """A reader draining ``fifo`` while the block runs; what it read, once the block is done."""
    received: list[bytes] = []

    def drain() -> None:
        with open(fifo, "rb") as source:
            received.append(source.read())

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        yield received
    finally:
        if reader.is_alive() and not received:
            # The command never opened the FIFO: open its other end so the reader returns.
            with suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=30)


def header(text: str) -> dict[str, object]:
    """The export's first line, parsed."""
    parsed: dict[str, object] = json.loads(text.splitlines()[0])
    return parsed


class TestWrittenThrough:
    """FIFOs and symlinks stay what they are; what they lead to gets the export."""

    def test_a_fifo(self, term: Terminal, tmp_path: Path) -> None:
        """``-o FIFO`` writes into the FIFO, without --force: nothing there can be lost."""
        declared(term)
        fifo = tmp_path / "incidents.fifo"
        os.mkfifo(fifo)
        with reading(fifo) as received:
            result = ok(term("export", "-o", str(fifo)))
        assert stat.S_ISFIFO(fifo.lstat().st_mode)
        assert header(received[0].decode("utf-8"))["format"] == "incidentflow-export"
        assert "1 incident(s)" in result.out

    def test_a_symlink_to_a_fifo(self, term: Terminal, tmp_path: Path) -> None:
        """A symlink to a FIFO is followed, and both stay as they were."""
        declared(term)
        fifo = tmp_path / "incidents.fifo"
        os.mkfifo(fifo)
        link = tmp_path / "out.jsonl"
        link.symlink_to(fifo)
        with reading(fifo) as received:
            ok(term("export", "-o", str(link)))
        assert link.is_symlink()
        assert stat.S_ISFIFO(fifo.lstat().st_mode)
        assert header(received[0].decode("utf-8"))["format"] == "incidentflow-export"

    def test_a_symlink_to_a_file(self, term: Terminal, tmp_path: Path) -> None:
        """The file a symlink names is overwritten only with --force; the link stays a link."""
        declared(term)
        target = tmp_path / "kept" / "incidents.jsonl"
        target.parent.mkdir()
        target.write_text("keep me", encoding="utf-8")
        link = tmp_path / "out.jsonl"
        link.symlink_to(target)
        error = one_line_error(term("export", "-o", str(link)), EXIT_USAGE)
        assert "--force" in error
        assert target.read_text(encoding="utf-8") == "keep me"
        ok(term("export", "-o", str(link), "--force"))
        assert link.is_symlink()
        assert link.resolve() == target.resolve()
        assert header(target.read_text(encoding="utf-8"))["format"] == "incidentflow-export"

    def test_a_dangling_symlink(self, term: Terminal, tmp_path: Path) -> None:
        """A symlink to nothing yet: the file it names is made, and the link kept."""
        declared(term)
        target = tmp_path / "incidents.jsonl"
        link = tmp_path / "latest.jsonl"
        link.symlink_to(target.name)
        ok(term("export", "-o", str(link)))
        assert link.is_symlink()
        assert header(target.read_text(encoding="utf-8"))["format"] == "incidentflow-export"

    def test_a_link_to_standard_output(self, term: Terminal, tmp_path: Path) -> None:
        """A link to the process's standard output (as /dev/stdout is) works like ``-o -``.

        The export goes to standard output without the summary line, which would
        otherwise end up inside it.
        """
        declared(term)
        link = tmp_path / "stdout"
        link.symlink_to("/proc/self/fd/1")
        if not Path("/proc/self/fd/1").exists():
            pytest.skip("no /proc/self/fd on this system")
        run = process([str(SCRIPT), "--store", term.store_url, "export", "-o", str(link)], tmp_path)
        assert run.returncode == 0, run.stderr
        lines = run.stdout.splitlines()
        assert header(run.stdout)["format"] == "incidentflow-export"
        assert all(json.loads(line) for line in lines)  # no "exported ..." line among them
        assert link.is_symlink()


class TestRefusedOrReplaced:
    """Only a regular file is replaced; what cannot hold an export is refused."""

    def test_a_socket_is_refused(self, term: Terminal, tmp_path: Path) -> None:
        """A Unix socket is not written over, even with --force: exit 2 naming what it is."""
        declared(term)
        path = tmp_path / "s.sock"
        with socket.socket(socket.AF_UNIX) as listening:
            listening.bind(str(path))
            error = one_line_error(term("export", "-o", str(path), "--force"), EXIT_USAGE)
            assert "socket" in error
            assert stat.S_ISSOCK(path.lstat().st_mode)

    def test_a_replaced_file_keeps_its_permissions(self, term: Terminal, tmp_path: Path) -> None:
        """``--force`` over a file readable by all leaves it readable by all."""
        declared(term)
        target = tmp_path / "shared.jsonl"
        target.write_text("old", encoding="utf-8")
        target.chmod(0o644)
        ok(term("export", "-o", str(target), "--force"))
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        assert header(target.read_text(encoding="utf-8"))["format"] == "incidentflow-export"
