"""The pages in a real browser: Debian's Chromium under Playwright, against uvicorn."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pages_conftest import ACTOR, Site, chromium, site

from helpers import drive_to
from incidentflow import State
from incidentflow.testing import FrozenClock

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
from playwright.sync_api import Page, expect


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module's tests."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def served(tmp_path: Path, clock: FrozenClock) -> Iterator[Site]:
    """The pages of a fresh SQLite flow, on a real uvicorn."""
    with site(tmp_path, clock) as running_site:
        yield running_site


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    """A tab in a fresh browser context."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def run(page: Page, command: str, **fields: str) -> None:
    """Open a command's form on the incident page, fill it and submit it."""
    details = page.locator(f"#cmd-{command}")
    if details.get_attribute("open") is None:
        details.locator("summary").click()
    for name, value in fields.items():
        page.fill(f"#{command}-{name}", value)
    with page.expect_navigation():
        details.locator("button[type=submit]").click()


class TestBoard:
    def test_declare_from_the_board(self, served: Site, page: Page) -> None:
        """The board's form declares an incident and leads to its page."""
        page.goto(served.url + "/")
        expect(page.locator("#actor")).to_contain_text(ACTOR)
        page.fill("#declare-title", "Checkout returns 500")
        page.select_option("#declare-severity", "P1")
        with page.expect_navigation():
            page.click("#declare-form button[type=submit]")
        expect(page).to_have_url(re.compile(r"/incidents/INC-2026-11-27-checkout-returns-500$"))
        expect(page.locator("#title")).to_have_text("Checkout returns 500")
        expect(page.locator("#state")).to_have_text("declared")
        [incident] = served.flow.list()
        assert (incident.title, incident.commander, incident.declared_by) == (
            "Checkout returns 500",
            ACTOR,
            ACTOR,
        )

    def test_board_shows_each_open_incident_with_its_countdown(
        self, served: Site, page: Page
    ) -> None:
        """An open incident sits in its severity's lane with its response countdown."""
        incident = served.flow.declare(
            "Search is slow", severity="P3", commander="bob", actor="bob"
        )
        page.goto(served.url + "/")
        row = page.locator(f"#lane-P3 tr[data-incident='{incident.id}']")
        expect(row).to_contain_text("Search is slow")
        expect(row.locator("[data-countdown]").first).to_contain_text(re.compile(r"left$"))


class TestIncidentForms:
    def test_triage_to_containment_through_the_forms(self, served: Site, page: Page) -> None:
        """Triage to containment runs through the forms; a refused step shows its codes."""
        incident = served.flow.declare(
            "Checkout returns 500", severity="P1", commander=ACTOR, actor=ACTOR
        )
        page.goto(f"{served.url}/incidents/{incident.id}")
        expect(page.locator("#next-step")).to_contain_text("start_triage")

        served.clock.advance(minutes=3)
        run(page, "start_triage")
        expect(page.locator("#state")).to_have_text("triaging")

        run(page, "contain")
        problem = page.locator("#problem")
        expect(problem).to_contain_text("cannot contain yet")
        for code in ("evidence.missing", "triage.unanswered", "containment.missing"):
            expect(problem.locator("code", has_text=code)).to_have_count(1)
        expect(page.locator("#state")).to_have_text("triaging")

        served.clock.advance(minutes=4)
        run(page, "add_evidence", source="journalctl", content="POST /orders -> 500")
        for question, answer in (
            ("symptom", "every checkout returns 500"),
            ("started_at", "14:02 UTC"),
            ("scope", "all customers"),
        ):
            run(page, "answer_triage", question=question, answer=answer)
        served.clock.advance(minutes=5)
        run(page, "record_containment", description="rolled back to release 40")
        expect(page.locator("#next-step")).to_contain_text("contain is ready to run")
        served.clock.advance(minutes=2)
        run(page, "contain")

        expect(page.locator("#state")).to_have_text("contained")
        expect(page.locator("#evidence")).to_contain_text("POST /orders -> 500")
        expect(page.locator("#containment")).to_contain_text("rolled back to release 40")
        expect(page.locator("#timeline")).to_contain_text("contained by alice")
        assert served.flow.get(incident.id).state is State.CONTAINED

    def test_gantt_chart_renders_as_svg(self, served: Site, page: Page) -> None:
        """The incident's phases are drawn: bars, milestones and a time axis."""
        drive_to(served.flow, served.clock, State.CONTAINED)
        served.clock.advance(minutes=30)
        [incident] = served.flow.list()
        page.goto(f"{served.url}/incidents/{incident.id}")
        chart = page.locator("#gantt svg")
        expect(chart).to_be_visible()
        expect(chart.locator("g.task.bar rect")).to_have_count(3)  # acknowledge, triage, rca
        expect(chart.locator("g.task.milestone polygon")).to_have_count(1)  # the mitigation
        expect(chart.locator("text.section").first).to_have_text("Response")
        box = chart.locator("g.task.active rect").bounding_box()
        assert box is not None
        assert box["width"] > 10


class TestMetricsPage:
    def test_metrics_charts_render(self, served: Site, page: Page) -> None:
        """MTTA, MTTR and breach counts are charted over the weeks, as SVG bars."""
        for weeks in range(3):
            drive_to(served.flow, served.clock, State.RESOLVED)
            served.clock.advance(days=7 + weeks)
        served.flow.check_deadlines()
        page.goto(served.url + "/metrics")
        charts = page.locator("#charts figure")
        expect(charts).to_have_count(3)
        expect(charts.nth(0)).to_contain_text("MTTA")
        expect(charts.nth(1)).to_contain_text("MTTR")
        expect(charts.nth(2)).to_contain_text("breaches")
        for n in range(3):
            expect(charts.nth(n).locator("svg g.bar rect")).to_have_count(3)
        expect(page.locator("#metrics-table tbody tr")).to_have_count(3)


class TestLiveUpdates:
    def test_a_second_tab_follows_the_incident_without_a_reload(
        self, served: Site, browser: Any
    ) -> None:
        """A change made in one tab shows in another open tab; that tab never reloads."""
        incident = served.flow.declare("Queue stalls", severity="P2", commander=ACTOR, actor=ACTOR)
        context = browser.new_context()
        try:
            first, second = context.new_page(), context.new_page()
            first.goto(f"{served.url}/incidents/{incident.id}")
            second.goto(f"{served.url}/incidents/{incident.id}")
            second.evaluate("window.stayedLoaded = true")

            run(first, "start_triage")
            run(first, "add_note", text="paging the queue owners")

            expect(second.locator("#state")).to_have_text("triaging")
            expect(second.locator("#timeline")).to_contain_text("paging the queue owners")
            assert second.evaluate("window.stayedLoaded") is True
        finally:
            context.close()

    def test_the_board_shows_a_new_incident_without_a_reload(
        self, served: Site, page: Page
    ) -> None:
        """An incident declared elsewhere appears on an open board."""
        page.goto(served.url + "/")
        page.evaluate("window.stayedLoaded = true")
        served.flow.declare("Disk full on db-7", severity="P1", commander="bob", actor="bob")
        expect(page.locator("#lane-P1")).to_contain_text("Disk full on db-7")
        assert page.evaluate("window.stayedLoaded") is True
