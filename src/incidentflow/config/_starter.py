"""The starter file ``incidentflow init`` writes: every default, each key with its help."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs

from .._process import ProcessOverride
from ..delivery import Route
from ._common import flat_lists
from ._config import Config, configuration_document
from ._delivery import DeliveryTable
from ._load import FileTable
from ._notifiers import EmailNotifierSpec, SlackNotifierSpec, WebhookNotifierSpec
from ._policy_table import POLICY_HELP
from ._routes import route_tables

__all__ = ["default_config_toml"]

_HEADER = """\
# incidentflow configuration.
#
# The command line and IncidentFlow.from_config() find this file by looking in the
# current folder and then each parent folder. Relative paths are relative to the
# folder this file is in. Precedence: command-line flags, then the environment
# (INCIDENTFLOW_URL), then this file, then the defaults. Every key is optional;
# the values below are the defaults.
"""

_NOTIFIERS_HELP = """\
# Notifiers: who hears about events, one [notifiers.NAME] table each; NAME is
# what routes refer to. type is one of email, log, slack, webhook. Secrets are
# never written here: a *_env key names the environment variable holding one.
# Without [[routes]], every notifier hears every event.
"""


def _example() -> Config:
    return Config(
        notifiers={
            "pager": WebhookNotifierSpec(
                url="https://pager.example.com/hooks/incidents",
                secret_env="PAGER_SIGNING_SECRET",
                incident_url="https://ops.example.com/incidents/{id}",
            ),
            "chat": SlackNotifierSpec(webhook_url_env="SLACK_WEBHOOK_URL"),
            "mail": EmailNotifierSpec(
                host="smtp.example.com",
                sender="incidents@example.com",
                recipients=("oncall@example.com",),
                username="incidents",
                password_env="SMTP_PASSWORD",
            ),
        },
        routes=(
            Route("pager", severities={"P1", "P2"}, events={"declared", "deadline_breached"}),
            Route("chat"),
            Route("mail", events={"resolved", "postmortem_completed"}),
        ),
    )


def _policy_examples() -> dict[str, tuple[str, dict[str, Any]]]:
    """Commented examples shown under the policy's empty tables, by dotted table."""
    lighter = ProcessOverride(
        response_target=timedelta(hours=4),
        staging_required=False,
        watch_window=timedelta(minutes=5),
        postmortem_required=False,
        min_action_items=0,
    )
    security = ProcessOverride(
        triage_questions=("attack_vector", "data_exposed"),
        required_roles={"contain": ("communications_lead",)},
        update_cadence=timedelta(minutes=30),
    )
    return {
        "policy.severity": (
            "For example, a lighter process for P3: no staging check, a 5-minute watch, "
            "no post-mortem and no action item required (P1 and P2 always need both).",
            {"policy": {"severity": {"P3": lighter.to_dict()}}},
        ),
        "policy.type": (
            "For example, security incidents ask two more triage questions, need a "
            "communications lead before contain, and an update every 30 minutes.",
            {"policy": {"type": {"security": security.to_dict()}}},
        ),
        "policy.fields": ("For example:", {"customer": "text", "affected_users": "int"}),
        "policy.labels": ("For example:", {"service": ["checkout", "search"], "team": []}),
    }


def _with_policy_examples(text: str) -> str:
    """``text`` with a commented example under each of the policy's empty tables."""
    import tomli_w

    examples = _policy_examples()
    out: list[str] = []
    for line in text.splitlines():
        out.append(line)
        header = re.fullmatch(r"\[([^\[\]]+)\]", line)
        if header and header[1] in examples:
            help, sample = examples[header[1]]
            out.extend(_wrap(help))
            written = flat_lists(tomli_w.dumps(sample)).rstrip("\n").splitlines()
            out.extend(f"# {item}" if item else "#" for item in written)
    return "\n".join(out) + "\n"


def _comments() -> dict[str, str]:
    """The help of every table and key, by dotted key."""
    found: dict[str, str] = dict(POLICY_HELP)
    for table, cl in (("", FileTable), ("delivery", DeliveryTable)):
        for field in attrs.fields(cl):
            key = f"{table}.{field.name}" if table else field.name
            found[key] = field.metadata["help"]
    return found


def _commented(text: str, comments: Mapping[str, str]) -> str:
    """``text`` (as tomli-w writes it) with each key's and table's help above it."""
    out: list[str] = []
    table = ""
    for line in text.splitlines():
        header = re.fullmatch(r"\[([^\[\]]+)\]", line)
        key = re.match(r"([A-Za-z0-9_-]+) = ", line)
        dotted = None
        if header:
            table = header[1]
            dotted = table
        elif key:
            dotted = f"{table}.{key[1]}" if table else key[1]
        if dotted is not None and dotted in comments:
            out.extend(_wrap(comments[dotted]))
        out.append(line)
    return "\n".join(out) + "\n"


def _wrap(text: str, width: int = 86) -> list[str]:
    return ["# " + line for line in textwrap.wrap(text, width - 2, break_on_hyphens=False)]


def default_config_toml() -> str:
    """A commented ``incidentflow.toml`` holding the defaults (``incidentflow init`` writes it).

    The values come from :class:`Config`'s defaults, so the file cannot drift
    from them; examples of settings with no default (the store, folders,
    notifiers and routes) are commented out.
    """
    import tomli_w

    comments = _comments()
    defaults = Config()
    parts = [_HEADER]
    examples: dict[str, Any] = {
        "store": "sqlite:///.agent/incidents/incidentflow.db",
        "incidents_dir": ".agent/incidents",
        "knowledge_dir": ".agent/knowledge/gotchas",
        "actor": "alice",
    }
    for key, value in examples.items():
        parts.append("\n".join([*_wrap(comments[key]), "# " + tomli_w.dumps({key: value})]))
    document = configuration_document(defaults, masked=False)
    body = {key: document[key] for key in ("policy", "delivery")}
    commented = _commented(flat_lists(tomli_w.dumps(body)), comments)
    parts.append(_with_policy_examples(commented).rstrip("\n") + "\n")
    example = configuration_document(_example(), masked=False)
    sample = flat_lists(tomli_w.dumps({"notifiers": example["notifiers"]}))
    sample += "\n" + route_tables(example["routes"])
    parts.append(
        _NOTIFIERS_HELP + "\n".join(f"# {line}" if line else "#" for line in sample.splitlines())
    )
    return "\n".join(parts).rstrip("\n") + "\n"
