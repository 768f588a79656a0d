"""open_store: the backend chosen by the URL's scheme."""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from incidentflow import ConfigError
from incidentflow.stores import JsonlStore, MemoryStore, SQLiteStore, Store, open_store


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("INCIDENTFLOW_URL", raising=False)


class FakeEntryPoint:
    def __init__(self, name: str, opener: Callable[[str], object]) -> None:
        self.name = name
        self.value = f"fake_package:{name}"
        self._opener = opener

    def load(self) -> Callable[[str], object]:
        return self._opener


def plugins(monkeypatch: pytest.MonkeyPatch, *points: FakeEntryPoint) -> None:
    def entry_points(group: str) -> list[FakeEntryPoint]:
        assert group == "incidentflow.stores"
        return list(points)

    # The store URL module reads entry points only when a scheme is not built in.
    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


class TestBuiltIn:
    def test_memory(self) -> None:
        """memory:// gives a MemoryStore."""
        assert isinstance(open_store("memory://"), MemoryStore)

    def test_sqlite_relative_path(self, tmp_path: Path) -> None:
        """sqlite:///PATH with three slashes is relative to the current folder."""
        store = open_store("sqlite:///data/incidents.db")
        assert isinstance(store, SQLiteStore)
        assert store.path == Path("data/incidents.db")
        assert (tmp_path / "data" / "incidents.db").exists()
        assert store.synchronous == "FULL"
        store.close()

    def test_sqlite_absolute_path(self, tmp_path: Path) -> None:
        """sqlite:////PATH with four slashes is absolute."""
        store = open_store(f"sqlite:///{tmp_path}/abs.db")
        assert isinstance(store, SQLiteStore)
        assert store.path == tmp_path / "abs.db"
        store.close()

    def test_sqlite_options(self) -> None:
        """?synchronous=NORMAL is passed on; unknown options are refused."""
        store = open_store("sqlite:///x.db?synchronous=normal")
        assert isinstance(store, SQLiteStore)
        assert store.synchronous == "NORMAL"
        store.close()
        with pytest.raises(ConfigError, match="colour"):
            open_store("sqlite:///x.db?colour=blue")
        with pytest.raises(ConfigError, match="FULL or NORMAL"):
            open_store("sqlite:///x.db?synchronous=off")

    def test_sqlite_percent_decoded(self, tmp_path: Path) -> None:
        """Paths are percent-decoded."""
        store = open_store("sqlite:///my%20incidents.db")
        assert isinstance(store, SQLiteStore)
        assert (tmp_path / "my incidents.db").exists()
        store.close()

    def test_sqlite_without_path(self) -> None:
        """sqlite:// without a path says what form to use."""
        with pytest.raises(ConfigError, match="sqlite:///relative"):
            open_store("sqlite://")
        with pytest.raises(ConfigError, match="three slashes"):
            open_store("sqlite://x.db")

    def test_file_folders(self, tmp_path: Path) -> None:
        """file://DIR is relative, file:///DIR absolute; both give a JsonlStore."""
        relative = open_store("file://.agent/incidents")
        assert isinstance(relative, JsonlStore)
        assert relative.directory == Path(".agent/incidents")
        absolute = open_store(f"file://{tmp_path}/abs")
        assert isinstance(absolute, JsonlStore)
        assert absolute.directory == tmp_path / "abs"
        with pytest.raises(ConfigError, match="give a folder"):
            open_store("file://")

    def test_default_is_sqlite_under_agent(self, tmp_path: Path) -> None:
        """No URL and no INCIDENTFLOW_URL: SQLite at .agent/incidents/incidentflow.db."""
        store = open_store()
        assert isinstance(store, SQLiteStore)
        assert store.path == Path(".agent/incidents/incidentflow.db")
        assert (tmp_path / ".agent" / "incidents" / "incidentflow.db").exists()
        store.close()

    def test_environment_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """INCIDENTFLOW_URL is used when no URL is given; a bad one names the variable."""
        monkeypatch.setenv("INCIDENTFLOW_URL", "memory://")
        assert isinstance(open_store(None), MemoryStore)
        monkeypatch.setenv("INCIDENTFLOW_URL", "nope://x")
        with pytest.raises(ConfigError) as caught:
            open_store(None)
        assert caught.value.key == "INCIDENTFLOW_URL"

    def test_postgres_needs_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """postgresql:// without psycopg installed says which extra to install."""
        monkeypatch.setitem(sys.modules, "psycopg", None)
        monkeypatch.setitem(sys.modules, "psycopg_pool", None)
        for name in [m for m in sys.modules if m.startswith("incidentflow.stores.postgres")]:
            monkeypatch.delitem(sys.modules, name)
        with pytest.raises(ConfigError, match=r"-e '\.\[postgres\]'"):
            open_store("postgresql://user@localhost/incidents")


class TestErrors:
    @pytest.mark.parametrize("url", ["redis://localhost", "ftp://x/y"])
    def test_unknown_scheme_lists_the_known_ones(self, url: str) -> None:
        """An unknown scheme raises ConfigError listing every known scheme."""
        with pytest.raises(ConfigError) as caught:
            open_store(url)
        message = str(caught.value)
        for scheme in ("memory://", "sqlite://", "file://", "postgresql://"):
            assert scheme in message
        assert caught.value.key == "url"

    @pytest.mark.parametrize("url", ["", "incidents.db", "sqlite:/x.db", "://x"])
    def test_not_a_url(self, url: str) -> None:
        """Text without a scheme is refused with an example."""
        with pytest.raises(ConfigError, match="sqlite:///"):
            open_store(url)

    def test_memory_takes_no_path(self) -> None:
        """memory://something is refused rather than silently ignored."""
        with pytest.raises(ConfigError, match="memory://"):
            open_store("memory://somewhere")


class TestPlugins:
    def test_registered_store(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A scheme registered under incidentflow.stores is opened with the whole URL."""
        seen: list[str] = []

        def opener(url: str) -> Store:
            seen.append(url)
            return MemoryStore()

        plugins(monkeypatch, FakeEntryPoint("redis", opener))
        assert isinstance(open_store("redis://cache:6379/0"), MemoryStore)
        assert seen == ["redis://cache:6379/0"]

    def test_registered_scheme_is_listed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Registered schemes appear in the list of known ones."""
        plugins(monkeypatch, FakeEntryPoint("redis", lambda url: MemoryStore()))
        with pytest.raises(ConfigError, match="redis://"):
            open_store("nope://x")

    def test_builtin_schemes_win(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A plugin cannot take over a built-in scheme."""
        plugins(monkeypatch, FakeEntryPoint("memory", lambda url: pytest.fail("not called")))
        assert isinstance(open_store("memory://"), MemoryStore)

    def test_plugin_returning_something_else(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A plugin that returns no Store is a configuration error naming it."""
        plugins(monkeypatch, FakeEntryPoint("odd", lambda url: object()))
        with pytest.raises(ConfigError, match="not a Store"):
            open_store("odd://x")

    def test_plugin_that_fails_to_load(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A plugin whose module cannot be imported is a configuration error naming it."""

        class Broken(FakeEntryPoint):
            def load(self) -> Callable[[str], object]:
                raise ImportError("no module named fake_package")

        plugins(monkeypatch, Broken("broken", lambda url: MemoryStore()))
        with pytest.raises(ConfigError, match="fake_package"):
            open_store("broken://x")


PASSWORD = "Hunter2"


class TestPasswordsMasked:
    """Every message that quotes a store URL masks its password."""

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            # not a store URL
            ("postgresql//ops:Hunter2@db/incidents", "***@db/incidents"),
            ("postgresql:/ops:Hunter2@db/incidents", "***@db/incidents"),
            ("host=db password=Hunter2", "host=db password=***"),
            # unknown scheme
            ("postgresq://ops:Hunter2@db/incidents", "postgresq://ops:***@db/incidents"),
            ("postgresq://ops:Hun/ter2@db/incidents", "postgresq://ops:***@db/incidents"),
            ("postgresq://ops:Hunter2@[::1/incidents", "postgresq://ops:***@[::1/incidents"),
            ("postgresq://db/incidents?password=Hunter2", "postgresq://db/incidents?password=***"),
            # a memory store takes no path
            ("memory://ops:Hunter2@somewhere", "memory://ops:***@somewhere"),
            # sqlite: three slashes, unknown options, synchronous
            ("sqlite://ops:Hunter2@db/incidents.db", "sqlite://ops:***@db/incidents.db"),
            ("sqlite:///x.db?password=Hunter2", "sqlite:///x.db?password=***"),
            ("sqlite:///ops:Hunter2@x.db?synchronous=off", "sqlite:///ops:***@x.db"),
            # file: give a folder
            ("file://ops:Hunter2@host/dir?x=1", "file://ops:***@host/dir?x=1"),
        ],
    )
    def test_message_masks_the_password(self, url: str, shown: str) -> None:
        """The message quotes the URL with user:***@host, never the password."""
        with pytest.raises(ConfigError) as caught:
            open_store(url)
        assert PASSWORD not in str(caught.value)
        assert shown in str(caught.value)

    def test_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A mistyped INCIDENTFLOW_URL is masked the same way, and the message names it."""
        monkeypatch.setenv("INCIDENTFLOW_URL", "postgresq://ops:Hunter2@db/incidents")
        with pytest.raises(ConfigError) as caught:
            open_store(None)
        assert caught.value.key == "INCIDENTFLOW_URL"
        assert "unknown store scheme 'postgresq'" in str(caught.value)
        assert "'postgresq://ops:***@db/incidents'" in str(caught.value)
        assert PASSWORD not in str(caught.value)

    def test_configuration_masks_the_same_way(self) -> None:
        """The configuration masks store URLs with the shared function."""
        from incidentflow._urls import mask_password
        from incidentflow.config import _config, _store

        assert _config.mask_password is mask_password
        assert _store.mask_password is mask_password


class TestMalformedPostgresURL:
    """A URL urlsplit refuses is a ConfigError before any connection, without the password."""

    @pytest.mark.parametrize(
        ("url", "secret", "problem"),
        [
            ("postgresql://ops:Hunter2@[::1/incidents", PASSWORD, "matching brackets"),
            ("postgresql://ops:Hunter2@::1]/incidents", PASSWORD, "matching brackets"),
            ("postgres://ops:Hunter2@[db]/incidents", PASSWORD, "matching brackets"),
            ("postgresql://ops:Hun[ter]2@db/incidents", "Hun[ter]2", "%5B and %5D"),
            ("postgresql://ops:[secret]@db/incidents", "secret", "%5B and %5D"),
            ("postgresql://ops:Hunter2@db\uff03x/incidents", PASSWORD, "characters a URL cannot"),
        ],
    )
    def test_malformed_url(self, url: str, secret: str, problem: str) -> None:
        """The message says what is wrong and gives an example; no traceback from urlsplit."""
        pytest.importorskip("psycopg")
        from incidentflow.stores.postgres import PostgresStore

        for opening in (open_store, PostgresStore):
            with pytest.raises(ConfigError) as caught:
                opening(url)
            message = str(caught.value)
            assert caught.value.key == "dsn"
            assert "malformed URL" in message
            assert problem in message
            assert "e.g. postgresql://" in message
            assert "ops:***@" in message
            assert secret not in message
            assert caught.value.__cause__ is None
