"""The terminal tutorial (docs/tutorial-cli.md) runs as written, in a real shell.

Every ``$ `` line of its ``console`` blocks runs, in order, in one bash session
in an empty folder, with the ``incidentflow`` of this environment first on the
PATH. A line ending in ``# exits N`` must exit with N; every other line with 0.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TUTORIAL = Path(__file__).parent.parent / "docs" / "tutorial-cli.md"
_BLOCK = re.compile(r"```console\n(.*?)```", re.DOTALL)
_EXPECTED = re.compile(r"\s+#\s*exits\s+(\d+)\s*$")


def tutorial_commands() -> list[tuple[str, int]]:
    """Each command of the tutorial with the exit code it must give."""
    commands = []
    for block in _BLOCK.findall(TUTORIAL.read_text(encoding="utf-8")):
        for line in block.splitlines():
            if not line.startswith("$ "):
                continue
            command = line[2:]
            expected = _EXPECTED.search(command)
            if expected is not None:
                command = command[: expected.start()]
            commands.append((command, int(expected.group(1)) if expected else 0))
    return commands


def script(commands: list[tuple[str, int]]) -> str:
    """A bash script running ``commands``, stopping at the first unexpected exit code."""
    lines = []
    for number, (command, expected) in enumerate(commands, start=1):
        lines.append(command)
        lines.append(
            f'rc=$?; if [ "$rc" -ne {expected} ]; then '
            f'echo "command {number} exited $rc, expected {expected}: {_quoted(command)}" >&2; '
            "exit 99; fi"
        )
    lines.append('incidentflow --json show "$ID" > final.json')
    # The walkthroughs that follow the main one keep their incidents in their own folders.
    lines.append('(cd search && incidentflow --json show "$P3") > p3.json')
    lines.append('(cd payments && incidentflow --json show "$P1") > p1.json')
    return "\n".join(lines) + "\n"


def _quoted(command: str) -> str:
    return command.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "'")


@pytest.fixture
def environment() -> dict[str, str]:
    """This environment's scripts first on the PATH; no store or config chosen by the host."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTFLOW_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


class TestTerminalTutorial:
    """docs/tutorial-cli.md, end to end."""

    def test_has_a_rejected_step(self) -> None:
        """The tutorial shows at least one refused command and its exit code 1."""
        assert any(expected == 1 for _, expected in tutorial_commands())
        assert len(tutorial_commands()) > 20

    def test_runs_as_written(self, tmp_path: Path, environment: dict[str, str]) -> None:
        """Every command exits as the page says, and the incident ends in kb_updated."""
        run = subprocess.run(
            ["bash", "-c", script(tutorial_commands())],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr
        final = json.loads((tmp_path / "final.json").read_text(encoding="utf-8"))
        incident = final["incident"]
        assert incident["state"] == "kb_updated"
        assert incident["postmortem"]["completed_at"] is not None
        assert incident["confirmation"]["user"] == "bob"
        assert incident["evidence"][0]["source"] == "grafana"
        assert "Traceback" not in run.stderr
        # The reason codes the page shows are the ones the command printed.
        assert "['evidence.missing', 'triage.unanswered', 'containment.missing']" in run.stdout
        files = list((tmp_path / ".agent" / "incidents").glob("INC-*.md"))
        assert len(files) == 1
        assert "# Post-Mortem: Checkout returns 500" in files[0].read_text(encoding="utf-8")
        assert list((tmp_path / ".agent" / "knowledge" / "gotchas").glob("*.md"))
        self.check_lighter_p3(json.loads((tmp_path / "p3.json").read_text(encoding="utf-8")))
        self.check_handoff_p1(json.loads((tmp_path / "p1.json").read_text(encoding="utf-8")))

    @staticmethod
    def check_lighter_p3(shown: dict[str, Any]) -> None:
        """The P3 closed without staging, a watch window, a post-mortem or an action item."""
        incident = shown["incident"]
        assert (incident["severity"], incident["state"]) == ("P3", "kb_updated")
        assert incident["type"] == "performance"
        assert incident["fix"]["staging_verified"] is False
        assert incident["postmortem"] is None
        assert incident["action_items"] == []
        assert incident["confirmation"]["user"] == "bob"

    @staticmethod
    def check_handoff_p1(shown: dict[str, Any]) -> None:
        """The P1's communications lead was handed over, and two updates were posted."""
        incident = shown["incident"]
        assert incident["roles"]["communications_lead"] == "dave"
        handoffs = [(h["role"], h["from_person"], h["to_person"]) for h in incident["handoffs"]]
        assert ("communications_lead", "carol", "dave") in handoffs
        assert [u["audience"] for u in incident["updates"]] == ["external", "internal"]
        assert incident["next_update_due"] == incident["updates"][-1]["next_update_at"]
        assert incident["labels"] == {"service": "payments"}


# -- installing ------------------------------------------------------------------------------------

ROOT = TUTORIAL.parent.parent
_BASH_BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)
_WHEEL_LINE = re.compile(r"`(pip wheel [^`]*)`")


def install_lines() -> tuple[list[str], str]:
    """The tutorial's install block (its lines as written), and its wheel line."""
    text = TUTORIAL.read_text(encoding="utf-8")
    block = next(b for b in _BASH_BLOCK.findall(text) if "pip install" in b)
    wheel = _WHEEL_LINE.search(text)
    assert wheel is not None, "the tutorial no longer shows how to build a wheel"
    return [line for line in block.splitlines() if line.strip()], wheel.group(1)


def clone_of_the_checkout(target: Path) -> Path:
    """What a clone holds that pip needs: the project file, the README and the sources."""
    import shutil

    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, target / name)
    shutil.copytree(
        ROOT / "src", target / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return target


class TestInstall:
    """The install lines of the docs work from a clone, in a fresh virtualenv."""

    def test_every_page_installs_the_way_the_tutorial_does(self) -> None:
        """README and the CLI reference install with the line the next test runs."""
        lines, _ = install_lines()
        assert any("pip install -e '.[cli]'" in line for line in lines)
        for page in (ROOT / "README.md", ROOT / "docs" / "reference" / "cli.md"):
            assert "pip install -e '.[cli]'" in page.read_text(encoding="utf-8"), page

    def test_install_lines_run_as_written(
        self, tmp_path: Path, environment: dict[str, str]
    ) -> None:
        """The install block, then its wheel line, each give a working ``incidentflow --help``.

        One virtualenv: the block's editable install, then the wheel built
        from the checkout installed over it. pip reaches the index (hatchling
        builds the wheel; click comes with the ``cli`` extra), through the
        pip cache of the host.
        """
        lines, wheel = install_lines()
        (tmp_path / "clone").mkdir()
        clone = clone_of_the_checkout(tmp_path / "clone")
        home = tmp_path / "home"
        home.mkdir()
        cache = subprocess.run(
            [sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True
        ).stdout.strip()
        env = {**environment, "HOME": str(home), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        env.pop("VIRTUAL_ENV", None)
        if cache and "PIP_CACHE_DIR" not in env:
            env["PIP_CACHE_DIR"] = cache
        steps = [
            *lines,
            'incidentflow --help > "$HOME/help-editable.txt"',
            f"cd {clone} && {wheel}",
            'incidentflow --help > "$HOME/help-wheel.txt"',
            "python -c 'import incidentflow; print(incidentflow.__file__)' > \"$HOME/where.txt\"",
        ]
        run = subprocess.run(
            ["bash", "-c", "set -e\n" + "\n".join(steps) + "\n"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        for shown in ("help-editable.txt", "help-wheel.txt"):
            out = (home / shown).read_text(encoding="utf-8")
            assert "Usage: incidentflow" in out
            assert "declare" in out
        assert (home / "checkout-outage").is_dir()
        where = (home / "where.txt").read_text(encoding="utf-8")
        assert where.startswith(str(clone / ".venv")), where
        assert "site-packages" in where
        assert list((clone / "dist").glob("incidentflow-*.whl"))
