"""Moving and checking histories: ``export``, ``import``, ``verify``."""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import click

from ..exceptions import IncidentNotFound
from ._app import EXIT_OK, EXIT_REJECTED, App, environment_failure, pass_app
from ._output import plain

__all__ = ["COMMANDS"]

#: Files SQLite keeps beside a database.
_SIDECARS = ("-wal", "-shm", "-journal")


@click.command(short_help="Export histories as JSON Lines.")
@click.argument("incident_ids", metavar="[ID]...", nargs=-1)
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
    if str(output) != "-":
        _check_output(app, output, force)
    ids = list(dict.fromkeys(incident_ids))  # each history once, or the export is unreadable
    for incident_id in ids:
        if not flow.store.exists(incident_id):  # unknown ids fail before anything is written
            raise IncidentNotFound(incident_id)
    ids = ids or [i.id for i in flow.summaries(newest_first=False)]
    lines = export_lines(flow, app.progress(ids, "exporting"))
    if str(output) == "-":
        for line in lines:
            click.echo(line)
        return
    written = _write_lines(output, lines)
    app.emit(
        {"output": str(output), "incidents": len(ids), "events": written},
        f"exported {len(ids)} incident(s), {written} event(s) to {output}",
    )


def _check_output(app: App, output: Path, force: bool) -> None:
    """Refuse to overwrite a file without --force, and the store's own files ever."""
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
    if output.exists() and not force:
        raise click.BadParameter(
            f"{output} exists; pass --force to overwrite it", param_hint="--output"
        )


def _write_lines(path: Path, lines: Iterable[str]) -> int:
    """Write lines to ``path`` via a new temporary file: a failure leaves nothing behind.

    Returns how many lines after the header were written (events).
    """
    import tempfile

    written = -1  # the header line is not an event
    try:
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise environment_failure(f"cannot write {path}: {exc.strerror}") from None
    temporary = Path(name)
    try:
        with open(descriptor, "w", encoding="utf-8") as out:
            for line in lines:
                out.write(line + "\n")
                written += 1
        temporary.replace(path)
    except OSError as exc:
        raise environment_failure(f"cannot write {path}: {exc.strerror}") from None
    finally:
        temporary.unlink(missing_ok=True)  # gone already when it was renamed
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
@click.argument("incident_ids", metavar="[ID]...", nargs=-1)
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
