"""Fixtures for the collector tests: a real git repository and fake tools on a PATH."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

#: Commits in the test repository, oldest first.
SUBJECTS = [f"Change number {i}" for i in range(1, 25)] + [
    "Rotate credentials: password=hunter2-rotated",
]


def _git_env(home: Path) -> dict[str, str]:
    """A git environment that ignores the host's configuration and fixes names and dates."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Alice Example",
        "GIT_AUTHOR_EMAIL": "alice@example.com",
        "GIT_COMMITTER_NAME": "Alice Example",
        "GIT_COMMITTER_EMAIL": "alice@example.com",
        "GIT_AUTHOR_DATE": "2026-11-27T13:00:00+00:00",
        "GIT_COMMITTER_DATE": "2026-11-27T13:00:00+00:00",
    }


@pytest.fixture(scope="session")
def git_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real git repository with 25 commits, the last tagged v1.0 and holding a password."""
    root = tmp_path_factory.mktemp("repo")
    env = _git_env(root)

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
            cwd=root,
            env=env,
            check=True,
            capture_output=True,
            timeout=30,
        )

    git("init", "-q", "-b", "main")
    for subject in SUBJECTS:
        git("commit", "-q", "--allow-empty", "-m", subject)
    git("tag", "v1.0")
    return root


@pytest.fixture
def empty_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH holds nothing: no tool can be found."""
    nothing = tmp_path / "empty-bin"
    nothing.mkdir()
    return {"PATH": str(nothing)}


@pytest.fixture
def fake_tools(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """Install stand-in programs that print the arguments they got; returns the environment.

    ``fake_tools("docker", "systemctl")`` puts executables with those names on an
    otherwise empty PATH. Each prints its argv (after the program) one per line
    and exits with the status in ``FAKE_EXIT`` (0 by default).
    """

    def install(*names: str) -> dict[str, str]:
        bin_dir = tmp_path / "fake-bin"
        bin_dir.mkdir(exist_ok=True)
        for name in names:
            tool = bin_dir / name
            tool.write_text(
                f"#!{sys.executable}\n"
                "import os, sys\n"
                "print('\\n'.join(sys.argv[1:]))\n"
                "sys.exit(int(os.environ.get('FAKE_EXIT', '0')))\n",
                encoding="utf-8",
            )
            tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
        return {"PATH": str(bin_dir)}

    return install
