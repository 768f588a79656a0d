"""The root group lists its subcommands from a table, and imports a module only when needed."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from cli_terminal import process

import incidentflow.cli
from incidentflow.cli import cli
from incidentflow.cli._root import SHORTENED, SUBCOMMANDS


def _defined() -> dict[str, tuple[str, click.Command]]:
    """Every command the command line's modules define: name -> (module, command)."""
    found: dict[str, tuple[str, click.Command]] = {}
    for info in pkgutil.iter_modules(incidentflow.cli.__path__):
        module = importlib.import_module(f"incidentflow.cli.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            assert command.name not in found, f"{command.name} is defined twice"
            found[command.name] = (info.name, command)
    return found


class _InOrder(click.Group):
    """A plain click group listing its commands in the order given (click sorts them)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


def _fresh_root() -> Any:
    """A root group like ``cli`` that has read none of its commands yet."""
    return type(cli)(name="incidentflow", callback=cli.callback, params=list(cli.params))


class TestTable:
    """``SUBCOMMANDS`` says what the commands themselves say: it cannot drift."""

    def test_names_and_modules(self) -> None:
        """Each command of every module is in the table once, with the module defining it."""
        names = [name for name, _, _ in SUBCOMMANDS]
        assert len(names) == len(set(names))
        assert {name: module for name, module, _ in SUBCOMMANDS} == {
            name: module for name, (module, _) in _defined().items()
        }

    def test_one_line_helps(self) -> None:
        """At every width, the table's one-line help is the one click makes of the command."""
        defined = _defined()
        for name, _, text in SUBCOMMANDS:
            command = defined[name][1]
            assert not command.hidden
            assert not command.deprecated
            assert (not command.short_help) == (name in SHORTENED), name
            stand_in = (
                click.Command(name, help=text)
                if name in SHORTENED
                else click.Command(name, short_help=text)
            )
            for limit in range(121):
                assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit)

    @pytest.mark.parametrize("width", [50, 60, 72, 80, 120])
    def test_listing_is_clicks_own(self, width: int) -> None:
        """The root's command list, from the table, equals click's from the commands themselves."""
        fresh = _fresh_root()
        commands = [_defined()[name][1] for name, _, _ in SUBCOMMANDS]
        written = []
        for group in (_InOrder("incidentflow", commands=commands), fresh):
            formatter = click.HelpFormatter(width=width)
            group.format_commands(click.Context(group), formatter)
            written.append(formatter.getvalue())
        assert fresh.commands.loaded("declare") is None  # listed from the table
        assert written[0] == written[1]
        assert all(f"  {name} " in written[1] for name, _, _ in SUBCOMMANDS)


class TestSubcommands:
    """``cli.commands`` is a mapping that imports a module on first read of its commands."""

    def test_names_without_importing(self, tmp_path: Path) -> None:
        """Names, ``in`` and ``len`` import no module; reading a command imports its own."""
        code = (
            "import sys\n"
            "from incidentflow.cli import cli\n"
            "def loaded():\n"
            "    return sorted(m for m in sys.modules if m.startswith('incidentflow.cli._'))\n"
            "before = loaded()\n"
            "print(len(cli.commands), 'declare' in cli.commands, 'frobnicate' in cli.commands)\n"
            "print(list(cli.commands)[:3], loaded() == before)\n"
            "print(cli.commands['list'].name, cli.commands.get('nope'))\n"
            "print(*sorted(set(loaded()) - set(before)))\n"
        )
        run = process([sys.executable, "-c", code], tmp_path)
        assert run.returncode == 0, run.stderr
        lines = run.stdout.splitlines()
        assert lines[:3] == [
            f"{len(SUBCOMMANDS)} True False",
            "['init', 'config', 'declare'] True",
            "list None",
        ]
        modules = {f"incidentflow.cli.{module}" for _, module, _ in SUBCOMMANDS}
        # _current: what finds an incident by prefix, which the incidents' commands use.
        assert modules.intersection(lines[3].split()) == {
            "incidentflow.cli._incidents",
            "incidentflow.cli._current",
        }

    def test_read_commands_take_global_options_and_examples(self) -> None:
        """A command read from the group accepts the global options and shows its examples."""
        for name in ("declare", "triage"):
            command = cli.commands[name]
            group = command if isinstance(command, click.Group) else None
            leaf = group.commands["start"] if group is not None else command
            options = {opt for param in leaf.params for opt in param.opts}
            assert {"--json", "--store", "--config", "--actor", "-i"} <= options
            assert "Examples:" in (leaf.epilog or "")

    def test_added_and_removed_commands(self) -> None:
        """A command added to the group is listed last; a removed one is gone."""
        group = _fresh_root()
        extra = click.Command("extra", short_help="Something else.")
        group.add_command(extra)
        del group.commands["serve"]
        ctx = click.Context(group)
        assert group.list_commands(ctx)[-2:] == ["verify", "extra"]
        assert group.get_command(ctx, "serve") is None
        assert group.get_command(ctx, "extra") is extra
        assert "Something else." in group.get_help(ctx)
