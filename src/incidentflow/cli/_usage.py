"""The command line's words for the library's commands, in hints and messages."""

from __future__ import annotations

import functools
import re

__all__ = ["EXAMPLES", "USAGE", "examples", "in_cli_terms", "usage"]

#: How to run each library command from the terminal; ``{id}`` is the incident's id.
#: Which command comes next is the core's to say (``_lifecycle.next_command``).
USAGE = {
    "declare": "incidentflow declare TITLE -s SEVERITY -c COMMANDER",
    "start_triage": "incidentflow triage start {id}",
    "answer_triage": "incidentflow triage answer {id} QUESTION ANSWER",
    "add_evidence": "incidentflow evidence add {id} CONTENT --source SOURCE",
    "record_containment": "incidentflow contain {id} ACTION",
    "contain": "incidentflow contain {id} --done",
    "start_rca": "incidentflow rca start {id}",
    "add_why": "incidentflow rca why {id} ANSWER",
    "set_root_cause": "incidentflow rca root-cause {id} STATEMENT --gap GAP",
    "record_fix": "incidentflow fix {id} DESCRIPTION --test TEST --staging-verified",
    "record_deploy": "incidentflow deploy {id} --ref REF",
    "mark_fixed": "incidentflow fix {id} --done",
    "confirm_by_user": "incidentflow confirm {id} --user NAME",
    "resolve": "incidentflow resolve {id}",
    "draft_postmortem": "incidentflow postmortem draft {id} --summary TEXT",
    "complete_postmortem": "incidentflow postmortem complete {id}",
    "add_action_item": "incidentflow action add {id} DESCRIPTION --owner NAME --due DATE",
    "complete_action_item": "incidentflow action done {id} NUMBER",
    "update_kb": "incidentflow kb {id} --symptom ... --early-signs ...",
    "reopen": "incidentflow reopen {id} --reason TEXT",
    "dismiss": "incidentflow dismiss {id} --reason TEXT",
    "reclassify": "incidentflow reclassify {id} SEVERITY --reason TEXT",
    "assign_commander": "incidentflow assign {id} NAME",
    "record_detection": "incidentflow detect {id} --method alert",
    "add_note": "incidentflow note {id} TEXT",
    "amend": "incidentflow amend {id} ITEM VALUE --reason TEXT",
    "retract": "incidentflow retract {id} ITEM --reason TEXT",
    "reassign_action_item": "incidentflow action reassign {id} NUMBER OWNER",
    "redate_action_item": "incidentflow action redate {id} NUMBER DATE",
    "decline_action_item": "incidentflow action decline {id} NUMBER --reason TEXT",
    "link_action_item": "incidentflow action link {id} NUMBER REF",
    "change_type": "incidentflow type {id} TYPE --reason TEXT",
    "set_labels": "incidentflow label {id} KEY=VALUE",
    "set_fields": "incidentflow field {id} NAME=VALUE",
    "add_reference": "incidentflow ref add {id} KIND VALUE",
    "remove_reference": "incidentflow ref remove {id} KIND VALUE",
    "assign_role": "incidentflow role assign {id} ROLE PERSON",
    "release_role": "incidentflow role release {id} ROLE",
    "post_update": "incidentflow update {id} internal|external TEXT --next 30m",
    "link": "incidentflow link {id} KIND OTHER",
    "unlink": "incidentflow unlink {id} KIND OTHER",
    "merge": "incidentflow merge {id} --into OTHER --reason TEXT",
    "restrict": "incidentflow restrict {id} alice group:security",
    "unrestrict": "incidentflow unrestrict {id}",
}


#: Examples of the commands that run no library command (reading, operations). A group's
#: help shows its commands' examples; the root's are ``_root.EXAMPLES``.
EXAMPLES = {
    "init": ("incidentflow init", "incidentflow init --path ops/incidentflow.toml --force"),
    "config show": ("incidentflow config show", "incidentflow config show --json"),
    "list": (
        "incidentflow list --open",
        "incidentflow list --severity P1 --since yesterday --json",
    ),
    "show": ("incidentflow show payments", "incidentflow show payments --markdown > incident.md"),
    "timeline": ("incidentflow timeline payments", "incidentflow timeline payments --json"),
    "similar": ("incidentflow similar payments --limit 3",),
    "use": ("incidentflow use payments", "incidentflow use", "incidentflow use --clear"),
    "evidence collect": (
        "incidentflow evidence collect {id} --git . --journalctl nginx",
        "incidentflow evidence collect {id} --run 'kubectl get pods -n shop'",
    ),
    "find": (
        "incidentflow find alert alertmanager:fp:3f9c0e2a",
        "incidentflow find ticket OPS-12 --json",
    ),
    "deadlines": ("incidentflow deadlines {id}",),
    "check-deadlines": ("incidentflow check-deadlines",),
    "metrics": ("incidentflow metrics --by severity", "incidentflow metrics --since -30d"),
    "deliver": ("incidentflow deliver",),
    "dispatch": ("incidentflow dispatch",),
    "diagram": ("incidentflow diagram", "incidentflow diagram {id}"),
    "export": ("incidentflow export -o incidents.jsonl", "incidentflow export {id}"),
    "import": ("incidentflow import incidents.jsonl",),
    "verify": ("incidentflow verify", "incidentflow verify {id}"),
    "serve": ("incidentflow serve",),
}


def examples(path: str) -> str:
    """The ``Examples:`` paragraph of ``incidentflow PATH --help``; empty when there are none.

    The library commands' lines come from :data:`USAGE`; ``ID`` may be left out
    after ``incidentflow use ID``. A group's paragraph holds its commands' lines.
    """
    lines = list(EXAMPLES.get(path, ()))
    prefix = f"incidentflow {path}"
    below = [key for key in EXAMPLES if key.startswith(path + " ")]  # a group's commands
    lines += [line for key in below for line in EXAMPLES[key]]
    lines += [u for u in USAGE.values() if u == prefix or u.startswith(prefix + " ")]
    if not lines:
        return ""
    shown = "\n".join("  " + line.format(id="payments") for line in lines)
    return f"\b\nExamples:\n{shown}"


@functools.cache
def _library_command() -> re.Pattern[str]:
    """A library command's name in a message, compiled on first use (``--help`` needs none).

    Only names with an underscore are matched, so plain words ("contain") stay as they are.
    """
    names = sorted((n for n in USAGE if "_" in n), key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(names) + r")\b")


def usage(command: str, incident_id: str = "ID") -> str:
    """How to run the library's ``command`` on ``incident_id`` from the terminal."""
    return USAGE.get(command, "incidentflow --help").format(id=incident_id)


def in_cli_terms(message: str) -> str:
    """A library message with each command name followed, once, by the command line's.

    The incident stays ``ID``: the line above the reasons names it, and the
    reasons stay short. Square brackets keep the library's own parentheses readable:

    >>> in_cli_terms("write it down with add_note, then add_note again")
    'write it down with add_note [incidentflow note ID TEXT], then add_note again'
    """
    seen: set[str] = set()

    def annotate(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in seen:
            return name
        seen.add(name)
        return f"{name} [{usage(name)}]"

    return _library_command().sub(annotate, message)
