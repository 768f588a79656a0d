"""The ``incidentflow`` group: its global options, and every subcommand in the process's order."""

from __future__ import annotations

import click

from .._version import __version__
from . import (
    _closing,
    _coordination,
    _corrections,
    _current,
    _delivery,
    _diagram,
    _incidents,
    _labels,
    _learning,
    _links,
    _records,
    _remediation,
    _serve,
    _setup,
    _timing,
    _transfer,
    _triage,
)
from ._app import App
from ._params import Group, set_app

__all__ = ["cli"]


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    metavar="URL",
    callback=set_app("store"),
    help="Store URL (sqlite:///PATH, file://DIR, postgresql://..., memory://). "
    "Default: INCIDENTFLOW_URL, then the config's store, then SQLite under .agent/incidents/.",
)
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    callback=set_app("config_path"),  # read before the subcommand: its ID may be left out
    help="Configuration file. Default: INCIDENTFLOW_CONFIG, then the nearest "
    "incidentflow.toml or pyproject.toml with [tool.incidentflow].",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables and text.")
@click.option(
    "--actor",
    metavar="NAME",
    help="Who runs the command. Default: INCIDENTFLOW_ACTOR, the config's actor, your login.",
)
@click.option("--no-files", is_flag=True, help="Do not rewrite the incident's Markdown files.")
@click.option(
    "-i",
    "--incident",
    metavar="ID",
    expose_value=False,
    callback=set_app("incident_option"),
    help="The incident of a command whose ID is left out (default: 'incidentflow use').",
)
@click.version_option(__version__, "--version", prog_name="incidentflow")
@click.pass_context
def cli(
    ctx: click.Context,
    store: str | None,
    config_path: str | None,
    as_json: bool,
    actor: str | None,
    no_files: bool,
) -> None:
    """Run the incident-response process from a terminal.

    \b
    declare → triage → contain → rca → fix → resolve → postmortem → kb
    Global options go anywhere on the line; an ID may be any unique prefix or slug.
    Exit codes: 0 done, 1 rejected (every reason printed), 2 usage or input
    error, 3 the store or the environment failed.
    """  # noqa: D301 - "\b" is click's marker for a paragraph kept as written
    app = ctx.ensure_object(App)
    app.store, app.config_path, app.as_json = store, config_path, as_json
    app.actor_option, app.write_files = actor, not no_files
    ctx.call_on_close(app.close)


# The order of the process, which ``--help`` lists as it is.
for _module in (
    _setup,
    _incidents,
    _current,
    _triage,
    _remediation,
    _closing,
    _learning,
    _records,
    _corrections,
    _labels,
    _links,
    _coordination,
    _timing,
    _delivery,
    _diagram,
    _transfer,
    _serve,
):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def _add_examples(group: click.Group, path: str = "") -> None:
    """Give every command's ``--help`` its examples (``_usage.examples``)."""
    from ._usage import examples

    for name, command in group.commands.items():
        where = f"{path}{name}"
        if isinstance(command, click.Group):
            _add_examples(command, f"{where} ")
        elif command.epilog is None:
            command.epilog = examples(where) or None


_add_examples(cli)
