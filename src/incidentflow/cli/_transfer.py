"""Moving and checking histories: ``export``, ``import``, ``verify``."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import click

from ._app import EXIT_OK, EXIT_REJECTED, App, environment_failure, pass_app
from ._current import complete_incident, resolve_argument
from ._output import plain

__all__ = ["COMMANDS"]

#: Files SQLite keeps beside a database.
_SIDECARS = ("-wal", "-shm", "-journal")


def _resolve_each(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """The ``[ID]...`` arguments' callback: each word's full id, as every other ID is read."""
    return tuple(resolve_argument(ctx, param, word) for word in value or ())


def _incident_ids(function: Any) -> Any:
    """The ``[ID]...`` argument: ids, unique prefixes or slugs (all incidents when none)."""
    return click.argument(
        "incident_ids",
        metavar="[ID]...",
        nargs=-1,
        callback=_resolve_each,
        shell_complete=complete_incident,
    )(function)


@click.command(short_help="Export histories as JSON Lines.")
@_incident_ids
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=Path("-"),
    help="Write to this file (default: standard output).",
)
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@pass_app
def export(app: App, incident_ids: tuple[str, ...], output: Path, force: bool) -> None:
    """Export histories as JSON Lines: a header, then every event in order."""
    from .._transfer import export_lines

    flow = app.reader
    # Unknown ids failed already, while the arguments were read: before anything is written.
    write = _check_output(app, output, force) if str(output) != "-" else None
    ids = list(dict.fromkeys(incident_ids))  # each history once, or the export is unreadable
    ids = ids or [i.id for i in flow.summaries(newest_first=False)]
    lines = export_lines(flow, app.progress(ids, "exporting"))
    if write is None:
        for line in lines:
            click.echo(line)
        return
    written = write(output, lines)
    app.emit(
        {"output": str(output), "incidents": len(ids), "events": written},
        f"exported {len(ids)} incident(s), {written} event(s) to {output}",
    )


#: Writes the export's lines to a path; returns how many events it wrote.
_Writer = Callable[[Path, Iterable[str]], int]


def _check_output(app: App, output: Path, force: bool) -> _Writer | None:
    """How to write the export to ``output``; ``None`` when it is standard output itself.

    A regular file is replaced whole (and only with --force if it exists); a
    symlink, FIFO or character device is written through, as the shell's ``>``
    would, and never replaced. The store's own files are refused, and so is
    anything else (a block device, a socket).
    """
    store = app.reader.store
    target = output.resolve()
    database = getattr(store, "path", None)  # SQLite: a file and its companions
    folder = getattr(store, "directory", None)  # JSONL: a folder of histories
    inside = folder is not None and Path(folder).resolve() in target.parents
    if database is not None:
        database = Path(database).resolve()
        companions = {database.with_name(database.name + suffix) for suffix in _SIDECARS}
        inside = inside or target in {database, *companions}
    if inside:
        raise click.BadParameter(
            f"{output} is part of the store; write the export elsewhere", param_hint="--output"
        )
    try:
        found = output.lstat()
    except OSError:
        return _write_lines  # nothing there yet (or nothing we may see): a new file
    if stat.S_ISREG(found.st_mode):
        _need_force(output, force, "exists")
        return _write_lines
    try:
        pointed = output.stat()
    except FileNotFoundError:
        return _write_through  # a dangling symlink: the file it names is created
    except OSError as exc:
        raise environment_failure(f"cannot write {output}: {exc.strerror}") from None
    if _is_standard_output(pointed):
        return None  # -o /dev/stdout: as -o -, with no summary line inside the export
    if stat.S_ISREG(pointed.st_mode):
        _need_force(output, force, "is a link to an existing file")
    elif not (stat.S_ISCHR(pointed.st_mode) or stat.S_ISFIFO(pointed.st_mode)):
        raise click.BadParameter(
            f"{output} is {_kind(pointed.st_mode)}; write the export to a file, "
            "a FIFO or a character device",
            param_hint="--output",
        )
    return _write_through


def _need_force(output: Path, force: bool, what: str) -> None:
    if not force:
        raise click.BadParameter(
            f"{output} {what}; pass --force to overwrite it", param_hint="--output"
        )


def _is_standard_output(pointed: os.stat_result) -> bool:
    """Whether ``pointed`` is the file standard output writes to (``/dev/stdout``)."""
    try:
        return os.path.samestat(pointed, os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False  # standard output is no file (a test's capture)


def _kind(mode: int) -> str:
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _write_lines(path: Path, lines: Iterable[str]) -> int:
    """Write lines to ``path`` via a new temporary file: a failure leaves nothing behind.

    A file replaced keeps its permissions. Returns how many lines after the
    header were written (events).
    """
    try:
        kept = stat.S_IMODE(path.stat().st_mode) if path.is_file() else None
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise environment_failure(f"cannot write {path}: {exc.strerror}") from None
    temporary = Path(name)
    try:
        from ..render.files import new_file_mode

        with open(descriptor, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), new_file_mode() if kept is None else kept)
            written = _put(out, lines)
        temporary.replace(path)
    except OSError as exc:
        raise environment_failure(f"cannot write {path}: {exc.strerror}") from None
    finally:
        temporary.unlink(missing_ok=True)  # gone already when it was renamed
    return written


def _write_through(path: Path, lines: Iterable[str]) -> int:
    """Write lines into what ``path`` names (a FIFO, a device, a symlink's file), in place.

    Returns how many lines after the header were written (events).
    """
    try:
        with open(path, "w", encoding="utf-8") as out:
            return _put(out, lines)
    except OSError as exc:
        raise environment_failure(f"cannot write {path}: {exc.strerror}") from None


def _put(out: IO[str], lines: Iterable[str]) -> int:
    """Write each line to ``out``; how many followed the header (the events)."""
    written = -1  # the header line is not an event
    for line in lines:
        out.write(line + "\n")
        written += 1
    return max(written, 0)


@click.command("import", short_help="Import histories from an export.")
@click.argument("source", type=click.File("rb"))
@pass_app
def import_(app: App, source: IO[bytes]) -> int:
    """Import histories exported by `incidentflow export` (no notifications are sent)."""
    from .._transfer import import_histories, iter_export

    name = getattr(source, "name", "input")
    policy, now = app.reader.policy, app.reader.now()
    with _seekable(source) as stream:
        # Two passes, one history at a time: everything is checked before anything is
        # written, and an export of any size moves in bounded memory.
        for _ in iter_export(stream, name, policy, now=now):
            pass
        stream.seek(0)
        histories = iter_export(stream, name, policy, now=now)
        outcome = import_histories(app.reader, app.progress(histories, "importing"))
    app.emit(
        plain(outcome),
        lambda: "\n".join(
            [
                f"imported {len(outcome.imported)}, caught up {len(outcome.extended)}, "
                f"already present {len(outcome.present)}, conflicting {len(outcome.conflicts)}"
                + (f", already present (older) {len(outcome.older)}" if outcome.older else "")
            ]
            + [
                f"  - {i}: another history is stored under this id; left as it is"
                for i in outcome.conflicts
            ]
        ),
    )
    for incident_id in outcome.unwritten:
        click.echo(
            f"incidentflow: warning: the files of {incident_id} could not be written; "
            "the next command on it (or incidentflow show) writes them",
            err=True,
        )
    return EXIT_REJECTED if outcome.conflicts else EXIT_OK


@click.command(short_help="Check histories replay to their snapshots.")
@_incident_ids
@pass_app
def verify(app: App, incident_ids: tuple[str, ...]) -> int:
    """Check that each history replays to its stored snapshot (all incidents by default)."""
    flow = app.reader
    ids = list(incident_ids) or [i.id for i in flow.summaries(newest_first=False)]
    bad = [i for i in app.progress(ids, "verifying") if not flow.verify(i)]
    app.emit(
        {"checked": len(ids), "mismatched": bad},
        lambda: "\n".join(
            [f"{len(ids)} incident(s) checked, {len(bad)} mismatched"]
            + [f"  - {i}: its history does not replay to its snapshot" for i in bad]
        ),
    )
    return EXIT_REJECTED if bad else EXIT_OK


COMMANDS: tuple[click.Command, ...] = (export, import_, verify)


@contextlib.contextmanager
def _seekable(source: IO[bytes]) -> Iterator[IO[bytes]]:
    """``source`` if it can be read twice, else a temporary copy of it (standard input)."""
    try:
        source.seek(0, io.SEEK_CUR)
        seekable = source.seekable()
    except (OSError, ValueError):
        seekable = False
    if seekable:
        yield source
        return
    with tempfile.TemporaryFile() as copy:
        shutil.copyfileobj(source, copy)
        copy.seek(0)
        yield copy
