"""The examples in examples/ run to completion and write the files they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class TestExamples:
    @pytest.mark.parametrize(
        "name", ["full_incident.py", "p3_quick_fix.py", "security_incident.py"]
    )
    def test_example_runs_and_writes_its_files(self, name: str, tmp_path: Path) -> None:
        """Each example runs as a script and leaves an incident file and a KB gotcha."""
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / name), str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        incidents = list((tmp_path / "incidents").glob("INC-*.md"))
        gotchas = list((tmp_path / "knowledge" / "gotchas").glob("*.md"))
        assert len(incidents) == 1
        assert len(gotchas) == 1
        assert str(incidents[0]) in result.stdout
        assert "kb_updated" in result.stdout

    def test_full_incident_shows_a_refused_step_and_a_post_mortem(self, tmp_path: Path) -> None:
        """The main example shows a rejected step with its reasons and writes a post-mortem."""
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / "full_incident.py"), str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        assert "no containment action recorded" in result.stdout
        assert "watch window" in result.stdout
        assert "replay of the history matches the snapshot: True" in result.stdout
        (incident_file,) = (tmp_path / "incidents").glob("INC-*.md")
        text = incident_file.read_text(encoding="utf-8")
        assert "# Post-Mortem: Checkout returns 500 for every order" in text
        assert "| Fix deployed (v1.4.3) |" in text

    def test_p3_example_skips_the_post_mortem(self, tmp_path: Path) -> None:
        """The P3 example closes the incident without a post-mortem section."""
        subprocess.run(
            [sys.executable, str(EXAMPLES / "p3_quick_fix.py"), str(tmp_path)],
            capture_output=True,
            check=True,
            timeout=120,
        )
        (incident_file,) = (tmp_path / "incidents").glob("INC-*.md")
        assert "# Post-Mortem" not in incident_file.read_text(encoding="utf-8")

    def test_security_example_shows_its_policy_at_work(self, tmp_path: Path) -> None:
        """The security example is refused a label and a contain, then closes with a correction."""
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / "security_incident.py"), str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        assert "refused label: 'billing' is not allowed for service" in result.stdout
        assert "contain refused: roles.missing" in result.stdout
        assert "whys: 2 live, 3 recorded" in result.stdout
        assert "'communications_lead': 'erin'" in result.stdout
        assert "replay matches the snapshot: True" in result.stdout
