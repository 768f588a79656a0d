"""Routes set in TOML configuration, with errors that name the key at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from incidentflow import ConfigError, IncidentFlow
from incidentflow.config import load_config, routes_from_toml
from incidentflow.delivery import Route
from incidentflow.notifiers import RecordingNotifier
from incidentflow.testing import FrozenClock

ROUTING = """
[[routes]]
notifier = "pager"
severities = ["P1"]
events = ["declared", "deadline_breached"]

[[routes]]
notifier = "log"
"""


#: [[routes]] that are refused, and the key each error names.
BAD = [
    ('[[routes]]\nnotifier = "pager"\nchannel = "#ops"\n', "routes[1].channel"),
    ("[[routes]]\nseverities = ['P1']\n", "routes[1].notifier"),
    ('[[routes]]\nnotifier = "pager"\nseverities = "P1"\n', "routes[1].severities"),
    ('[[routes]]\nnotifier = "pager"\nseverities = ["P7"]\n', "routes[1].severities[1]"),
    ('[[routes]]\nnotifier = "pager"\nevents = ["exploded"]\n', "routes[1].events[1]"),
    ('routes = "everything"\n', "routes"),
]


def named(name: str) -> RecordingNotifier:
    recorder = RecordingNotifier()
    recorder.name = name
    return recorder


class TestRoutesFromToml:
    def test_tables_become_routes(self, tmp_path: Path) -> None:
        """Each [[routes]] table becomes a Route with its filters."""
        path = tmp_path / "incidentflow.toml"
        path.write_text(ROUTING, encoding="utf-8")
        pager, log = routes_from_toml(path)
        assert pager == Route("pager", severities={"P1"}, events={"declared", "deadline_breached"})
        assert log == Route("log")

    def test_routes_from_toml_drive_delivery(self, clock: FrozenClock) -> None:
        """A P1 declaration pages; a P3 one only reaches the log, as configured."""
        pager, log = named("pager"), named("log")
        flow = IncidentFlow.in_memory(
            clock=clock, notifiers=[pager, log], routes=routes_from_toml("inline", text=ROUTING)
        )
        flow.declare("DB down", severity="P1", commander="alice", actor="alice")
        minor = flow.declare("Typo on the status page", severity="P3", commander="bo", actor="bo")
        flow.add_note(minor.id, "fixed the copy", actor="bo")
        assert pager.types() == ["declared"]
        assert log.types() == ["declared", "declared", "note_added"]

    def test_no_routes_table_means_no_routes(self) -> None:
        """A file without [[routes]] gives an empty list."""
        assert routes_from_toml("inline", text="[policy]\nblame_check = 'warn'\n") == []

    @pytest.mark.parametrize(("text", "key"), BAD)
    def test_bad_routes_name_the_key(self, text: str, key: str) -> None:
        """Unknown keys, wrong types, unknown severities or event types name their key."""
        with pytest.raises(ConfigError) as caught:
            routes_from_toml("incidentflow.toml", text=text)
        assert caught.value.key == f"incidentflow.toml: {key}"

    @pytest.mark.parametrize(("text", "key"), BAD)
    def test_the_configuration_file_reads_routes_the_same_way(
        self, tmp_path: Path, text: str, key: str
    ) -> None:
        """load_config refuses the same [[routes]] with the same key and message: one parser."""
        path = tmp_path / "incidentflow.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as from_file:
            load_config(path)
        with pytest.raises(ConfigError) as from_routes:
            routes_from_toml(path)
        assert from_file.value == from_routes.value

    def test_unreadable_or_invalid_file(self, tmp_path: Path) -> None:
        """A missing file or broken TOML is a ConfigError naming the file."""
        with pytest.raises(ConfigError, match="cannot read"):
            routes_from_toml(tmp_path / "missing.toml")
        with pytest.raises(ConfigError, match="not valid TOML"):
            routes_from_toml("bad.toml", text="[[routes]\n")

    def test_a_route_to_an_unknown_notifier_is_refused_at_set_up(self, clock: FrozenClock) -> None:
        """Routes are checked against the notifiers when the flow is built."""
        routes = routes_from_toml("inline", text='[[routes]]\nnotifier = "sms"\n')
        with pytest.raises(ConfigError) as caught:
            IncidentFlow.in_memory(clock=clock, notifiers=[named("log")], routes=routes)
        assert caught.value.key == "routes.notifier"
