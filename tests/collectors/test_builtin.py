"""The built-in triage collectors: the commands they build, a real git log, absent tools."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from incidentflow.collectors import (
    Collector,
    DockerLogs,
    DockerPs,
    GitLog,
    Journalctl,
    SystemctlStatus,
)
from incidentflow.exceptions import ValidationError

from .conftest import SUBJECTS

LINE = re.compile(
    r"(?P<hash>[0-9a-f]{7,40}) (?P<date>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d) "
    r"(?P<author>[^:]+): (?P<subject>.*)\Z"
)


class TestGitLog:
    """GitLog against a real temporary repository."""

    def test_last_twenty_commits_newest_first(self, git_repo: Path) -> None:
        """By default the 20 most recent commits, one line each: hash, date, author, subject."""
        evidence = GitLog(repo=str(git_repo)).collect()
        assert evidence.exit_code == 0
        lines = evidence.content.splitlines()
        assert len(lines) == 20
        parsed = [LINE.match(line) for line in lines]
        assert all(parsed), lines
        subjects = [m["subject"] for m in parsed if m]
        expected = list(reversed(SUBJECTS))[:20]
        # The newest commit carries the tag and branch decoration after its subject.
        assert subjects[0].startswith("Rotate credentials: ")
        assert subjects[0].endswith(" (HEAD -> main, tag: v1.0)")
        assert subjects[1:] == expected[1:]
        assert {m["author"] for m in parsed if m} == {"Alice Example"}
        assert {m["date"] for m in parsed if m} == {"2026-11-27T13:00:00+00:00"}

    def test_secrets_in_commit_messages_are_redacted(self, git_repo: Path) -> None:
        """A password in a commit subject does not reach the evidence."""
        evidence = GitLog(repo=str(git_repo)).collect()
        assert "hunter2" not in evidence.content
        assert "password=[REDACTED:password]" in evidence.content
        assert evidence.redactions == 1

    def test_n(self, git_repo: Path) -> None:
        """n limits the number of commits."""
        evidence = GitLog(n=3, repo=git_repo).collect()  # type: ignore[arg-type]
        assert len(evidence.content.splitlines()) == 3

    def test_more_than_there_are(self, git_repo: Path) -> None:
        """Asking for more commits than exist gives them all."""
        evidence = GitLog(n=1000, repo=str(git_repo)).collect()
        assert len(evidence.content.splitlines()) == len(SUBJECTS)

    def test_runs_in_cwd_by_default(self, git_repo: Path) -> None:
        """repo='.' means the directory the command runs in."""
        evidence = GitLog(n=1).collect(cwd=git_repo)
        assert "Rotate credentials" in evidence.content

    def test_not_a_repository(self, tmp_path: Path) -> None:
        """Outside a repository git fails; the evidence holds its error and exit code."""
        evidence = GitLog(repo=str(tmp_path)).collect()
        assert evidence.exit_code == 128
        assert "--- stderr ---" in evidence.content
        assert "not a git repository" in evidence.content

    def test_argv(self) -> None:
        """The command git log runs, and its short source name."""
        log = GitLog()
        assert log.argv == (
            "git",
            "-C",
            ".",
            "log",
            "-n",
            "20",
            "--date=iso-strict",
            "--format=%h %cd %an: %s%d",
        )
        assert log.source == "git log -n 20"
        assert GitLog(n=5, repo="/srv/app").source == "git log -n 5 (/srv/app)"

    def test_git_missing(self, git_repo: Path, empty_path: dict[str, str]) -> None:
        """Without git on the PATH the evidence says the tool is missing."""
        evidence = GitLog(repo=str(git_repo)).collect(env=empty_path)
        assert evidence.missing_tool
        assert evidence.content == (
            "tool not found: git (install it or collect this evidence by hand)"
        )

    @pytest.mark.parametrize("n", [0, -1, 100_001, 2.5, "20", True, None])
    def test_bad_n(self, n: object) -> None:
        """n is a whole number from 1 to 100,000."""
        with pytest.raises(ValidationError) as caught:
            GitLog(n=n)  # type: ignore[arg-type]
        assert caught.value.field == "n"

    @pytest.mark.parametrize("repo", ["", "a\x00b", 5, None])
    def test_bad_repo(self, repo: object) -> None:
        """repo is a non-empty path."""
        with pytest.raises(ValidationError) as caught:
            GitLog(repo=repo)  # type: ignore[arg-type]
        assert caught.value.field == "repo"


# Each tool that may be absent here: the collector, the argv it runs, its source name.
TOOLS: list[tuple[Collector, tuple[str, ...], str]] = [
    (DockerPs(), ("docker", "ps", "--no-trunc"), "docker ps"),
    (DockerPs(all=True), ("docker", "ps", "--no-trunc", "--all"), "docker ps --all"),
    (
        DockerLogs("checkout-api"),
        ("docker", "logs", "--timestamps", "--tail", "200", "checkout-api"),
        "docker logs --tail 200 checkout-api",
    ),
    (
        DockerLogs("3f2a9c", tail=50),
        ("docker", "logs", "--timestamps", "--tail", "50", "3f2a9c"),
        "docker logs --tail 50 3f2a9c",
    ),
    (
        SystemctlStatus("nginx.service"),
        ("systemctl", "status", "--no-pager", "--full", "--", "nginx.service"),
        "systemctl status nginx.service",
    ),
    (
        Journalctl(),
        ("journalctl", "--no-pager", "--output=short-iso", "--lines=200"),
        "journalctl -n 200",
    ),
    (
        Journalctl("nginx", lines=50),
        ("journalctl", "--no-pager", "--output=short-iso", "--lines=50", "--unit=nginx"),
        "journalctl -u nginx -n 50",
    ),
]
TOOL_IDS = [source for _, _, source in TOOLS]


class TestSystemTools:
    """docker, systemctl and journalctl: the commands built, run on stand-ins, and absent."""

    @pytest.mark.parametrize(("collector", "argv", "source"), TOOLS, ids=TOOL_IDS)
    def test_argv_and_source(
        self, collector: Collector, argv: tuple[str, ...], source: str
    ) -> None:
        """Each collector runs the documented command and names it briefly."""
        assert collector.argv == argv
        assert collector.source == source

    @pytest.mark.parametrize(("collector", "argv", "source"), TOOLS, ids=TOOL_IDS)
    def test_runs_the_argv(
        self,
        collector: Collector,
        argv: tuple[str, ...],
        source: str,
        fake_tools: Callable[..., dict[str, str]],
    ) -> None:
        """A stand-in program on the PATH receives exactly those arguments."""
        env = fake_tools(argv[0])
        evidence = collector.collect(env=env)
        assert evidence.exit_code == 0, evidence.content
        assert tuple(evidence.content.splitlines()) == argv[1:]
        assert evidence.source == source

    @pytest.mark.parametrize(("collector", "argv", "source"), TOOLS, ids=TOOL_IDS)
    def test_tool_absent(
        self,
        collector: Collector,
        argv: tuple[str, ...],
        source: str,
        empty_path: dict[str, str],
    ) -> None:
        """With nothing on the PATH, the evidence says which tool is missing."""
        evidence = collector.collect(env=empty_path)
        assert evidence.missing_tool
        assert evidence.exit_code is None
        assert evidence.content == (
            f"tool not found: {argv[0]} (install it or collect this evidence by hand)"
        )
        assert evidence.source == source

    def test_inactive_unit_is_evidence(self, fake_tools: Callable[..., dict[str, str]]) -> None:
        """systemctl's exit code 3 (unit not running) is reported, not raised."""
        env = fake_tools("systemctl") | {"FAKE_EXIT": "3"}
        evidence = SystemctlStatus("nginx").collect(env=env)
        assert evidence.exit_code == 3
        assert " | exit 3 | " in evidence.header


OPTION_LIKE = ["-H", "--help", "-oProxyCommand=sh", "--all"]
BAD_NAMES = ["", "a\x00b", "two words", "tab\there", "line\nbreak", "x" * 201, 5, None]


class TestUserSuppliedNames:
    """Unit and container names cannot become options or smuggle anything in."""

    @pytest.mark.parametrize("name", OPTION_LIKE)
    def test_option_like_unit_names_are_refused(self, name: str) -> None:
        """A unit name starting with '-' would be read as an option: it is refused."""
        with pytest.raises(ValidationError, match="starts with '-'") as caught:
            SystemctlStatus(name)
        assert caught.value.field == "unit"
        with pytest.raises(ValidationError, match="starts with '-'"):
            Journalctl(name)

    @pytest.mark.parametrize("name", OPTION_LIKE)
    def test_option_like_container_names_are_refused(self, name: str) -> None:
        """A container name starting with '-' is refused."""
        with pytest.raises(ValidationError) as caught:
            DockerLogs(name)
        assert caught.value.field == "container"

    @pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
    def test_bad_names_are_refused(self, name: object) -> None:
        """Empty names, NUL, whitespace, non-strings and names over 200 characters are refused."""
        for build in (SystemctlStatus, DockerLogs, Journalctl):
            if build is Journalctl and name is None:
                continue  # no unit: the whole journal
            with pytest.raises(ValidationError):
                build(name)  # type: ignore[operator]

    def test_names_with_dots_dashes_and_at_signs_are_fine(self) -> None:
        """Real unit names pass: templates, dashes inside, dots."""
        assert SystemctlStatus("getty@tty1.service").unit == "getty@tty1.service"
        assert DockerLogs("my-app_web.1").container == "my-app_web.1"

    @pytest.mark.parametrize("tail", [0, -1, 100_001, "200", 1.0])
    def test_bad_line_counts(self, tail: object) -> None:
        """Line counts are whole numbers from 1 to 100,000."""
        with pytest.raises(ValidationError) as caught:
            DockerLogs("web", tail=tail)  # type: ignore[arg-type]
        assert caught.value.field == "tail"
        with pytest.raises(ValidationError) as caught:
            Journalctl(lines=tail)  # type: ignore[arg-type]
        assert caught.value.field == "lines"

    def test_docker_ps_all_is_a_bool(self) -> None:
        """DockerPs(all=...) takes True or False only."""
        with pytest.raises(TypeError):
            DockerPs(all="yes")  # type: ignore[arg-type]
