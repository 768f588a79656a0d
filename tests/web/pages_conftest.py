"""What the page tests share: the served pages, and Debian's Chromium driven by Playwright.

Imported by ``test_pages*.py`` (the fixtures stay in those modules, so the API
tests' ``conftest.py`` is untouched). Chromium is the system's
``/usr/bin/chromium`` (``.ci/run`` installs Debian's package); Playwright never
downloads a browser. Without it the browser tests skip, or fail under CI.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from served import running

from helpers import store_flow
from incidentflow import IncidentFlow
from incidentflow.testing import FrozenClock

__all__ = ["CHROMIUM", "Site", "chromium", "site"]

#: Debian's Chromium; the tests never use a browser Playwright downloaded.
CHROMIUM = Path("/usr/bin/chromium")
#: Who form posts are recorded as (the pages' configured actor).
ACTOR = "alice"


@attrs.frozen
class Site:
    """The pages of a flow served by uvicorn on 127.0.0.1."""

    flow: IncidentFlow
    clock: FrozenClock
    url: str


@contextlib.contextmanager
def site(tmp_path: Path, clock: FrozenClock, **options: Any) -> Iterator[Site]:
    """``incidentflow.web.app`` on a fresh SQLite flow, pages acting as :data:`ACTOR`."""
    from incidentflow.web import app

    options = {"actor": ACTOR, "poll_interval": 0.2, **options}
    with store_flow("sqlite", tmp_path, clock) as flow, running(app(flow, **options)) as url:
        yield Site(flow, clock, url)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium under Playwright; skips (fails under CI) without it."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            yield browser
        finally:
            browser.close()
