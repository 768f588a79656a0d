"""Running the command line: argv in, an exit code out, every error as one line."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence

import click

from ..exceptions import (
    ConcurrencyConflict,
    ConfigError,
    DuplicateIncident,
    IdempotencyConflict,
    IncidentFlowError,
    IncidentNotFound,
    InvalidTransition,
    ReferenceTaken,
    TransitionRejected,
    ValidationError,
)
from ._app import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_USAGE,
    AmbiguousIncident,
    App,
    EnvironmentFailure,
    library_warnings,
)
from ._root import cli

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    app = App()
    if (refused := _not_utf8(args)) is not None:
        return _report(f"incidentflow: error: {refused}", "UsageError", refused, app, args)
    stdout = sys.stdout
    try:
        with library_warnings(args):
            result = cli.main(args=args, prog_name="incidentflow", standalone_mode=False, obj=app)
    except click.exceptions.NoArgsIsHelpError as exc:
        shown = exc.ctx.get_help() if exc.ctx is not None else exc.format_message()
        if app.as_json or _json_requested(args):  # the help goes to standard error, beside it
            where = exc.ctx.command_path if exc.ctx is not None else "incidentflow"
            missing = f"a command is missing (see '{where} --help')"
            return _report(shown, "UsageError", missing, app, args)
        click.echo(shown)
        return EXIT_USAGE
    except AmbiguousIncident as exc:
        return _report(f"incidentflow: error: {exc.message}", "AmbiguousIncident",
                       exc.message, app, args)  # fmt: skip
    except EnvironmentFailure as exc:
        return _report(f"incidentflow: error: {exc.message}", "EnvironmentFailure",
                       exc.message, app, args, code=EXIT_FAILED)  # fmt: skip
    except click.UsageError as exc:
        from ._output import one_line  # errors only: ``--help`` does not load the output module

        where = exc.ctx.command_path if exc.ctx is not None else "incidentflow"
        message = f"{one_line(exc.format_message())} (see '{where} --help')"
        return _report(f"{where}: error: {message}", "UsageError", message, app, args)
    except click.ClickException as exc:
        from ._output import one_line

        message = one_line(exc.format_message())
        return _report(f"incidentflow: error: {message}", "UsageError", message, app, args)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort as exc:
        # click turns Ctrl-C into Abort; 130 is what shells expect of an interrupt.
        if isinstance(exc.__context__, KeyboardInterrupt):
            return _report("interrupted", "KeyboardInterrupt", "interrupted", app, args,
                           code=EXIT_INTERRUPTED)  # fmt: skip
        return _report("aborted", "Abort", "aborted", app, args)
    except KeyboardInterrupt:
        return _report("interrupted", "KeyboardInterrupt", "interrupted", app, args,
                       code=EXIT_INTERRUPTED)  # fmt: skip
    except SystemExit as exc:
        return _exit_status(exc, reader_gone=sys.stdout is not stdout)
    except IncidentFlowError as exc:
        return _report_error(exc, app.as_json or _json_requested(args))
    except OSError as exc:
        from ._output import one_line

        message = one_line(str(exc))
        return _report(f"incidentflow: error: {message}", type(exc).__name__, message, app, args,
                       code=EXIT_FAILED)  # fmt: skip
    return result if isinstance(result, int) else EXIT_OK


def _exit_status(exc: SystemExit, *, reader_gone: bool) -> int:
    """The exit code a ``SystemExit`` asks for, as ``sys.exit`` would give it to the shell.

    click exits 1 when the reader of standard output went away (``| head``), and
    only then puts its own wrapper in place of ``sys.stdout``: that exit answers
    as a program killed by SIGPIPE would, which shells know. Any other exit 1
    (an unknown shell-completion instruction) stays 1.
    """
    if exc.code is None:
        return EXIT_OK
    if isinstance(exc.code, int):
        return EXIT_BROKEN_PIPE if exc.code == 1 and reader_gone else exc.code
    click.echo(f"incidentflow: error: {exc.code}", err=True)
    return 1  # what Python exits with for sys.exit("message")


def _not_utf8(args: Sequence[str]) -> str | None:
    """Why the first argument that is not UTF-8 text is refused; ``None`` when all are.

    Python hands bytes that are not UTF-8 over as lone surrogates, which no
    store, file or terminal can take: refusing them here is one clear line.
    """
    for position, arg in enumerate(args, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            try:
                raw = arg.encode("utf-8", "surrogateescape")  # the bytes as typed
            except UnicodeEncodeError:
                raw = arg.encode("utf-8", "backslashreplace")
            shown = raw.decode("utf-8", "backslashreplace")
            return (
                f"argument {position} ('{shown}') is not UTF-8 text; "
                "pass every argument as UTF-8 (see 'incidentflow --help')"
            )
    return None


#: Global options that take a value, to find ``--json`` when parsing failed before reading it.
_VALUED_OPTIONS = frozenset({"--store", "--config", "--actor", "-i", "--incident"})


def _json_requested(args: Sequence[str]) -> bool:
    """Whether ``--json`` is on the line (anywhere before ``--``), when parsing failed first."""
    tokens = iter(args)
    for token in tokens:
        if token == "--json":
            return True
        if token in _VALUED_OPTIONS:
            next(tokens, None)
        elif token == "--":
            return False  # the rest are arguments
    return False


def _report(
    line: str, kind: str, message: str, app: App, args: Sequence[str], *, code: int = EXIT_USAGE
) -> int:
    """Report a failure of the command line: one line on standard error, JSON with ``--json``.

    Returns ``code`` (default: a usage error). The JSON object goes to standard
    output even when that output is what failed, as far as it can.
    """
    if app.as_json or _json_requested(args):
        import json

        from ._output import printable

        document = {"error": kind, "message": message, "reasons": []}
        with contextlib.suppress(OSError):  # standard output may be what failed (a full disk)
            click.echo(printable(json.dumps(document)))
    click.echo(line, err=True)
    return code


def _report_error(exc: IncidentFlowError, as_json: bool) -> int:
    """Report an error of the library: its reasons one a line, and JSON with ``--json``."""
    import json

    from ._output import one_line, printable, reason_json
    from ._usage import in_cli_terms

    code = _exit_code(exc)
    reasons = exc.reasons if isinstance(exc, TransitionRejected) else ()
    message = str(exc)
    if isinstance(exc, IncidentNotFound):
        message = f"no incident with id {exc.incident_id!r}; run 'incidentflow list' to find its id"
    elif isinstance(exc, ReferenceTaken):
        message = message.replace("flow.find gives it", f"incidentflow find {exc.kind} VALUE")
    if as_json:
        document = {
            "error": type(exc).__name__,
            "message": message,
            "reasons": [reason_json(r) for r in reasons],
        }
        click.echo(printable(json.dumps(document, ensure_ascii=False)))
    if isinstance(exc, TransitionRejected) and reasons:
        click.echo(f"incidentflow: rejected: {exc.incident_id} cannot {exc.command} yet:", err=True)
        for reason in reasons:
            click.echo(f"  - {in_cli_terms(str(reason))}", err=True)
    elif isinstance(exc, IncidentNotFound):
        click.echo(f"incidentflow: error: {message}", err=True)
    else:
        label = "rejected" if code == EXIT_REJECTED else "error"
        click.echo(f"incidentflow: {label}: {in_cli_terms(one_line(message))}", err=True)
    return code


def _exit_code(exc: IncidentFlowError) -> int:
    rejected = (
        TransitionRejected,
        InvalidTransition,
        ConcurrencyConflict,
        DuplicateIncident,
        IdempotencyConflict,
        ReferenceTaken,
    )
    if isinstance(exc, rejected):
        return EXIT_REJECTED
    if isinstance(exc, (ValidationError, ConfigError, IncidentNotFound)):
        return EXIT_USAGE
    return EXIT_FAILED
