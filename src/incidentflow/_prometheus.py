"""Metrics in the Prometheus text exposition format: :func:`to_prometheus`."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta

from ._metrics import METRICS, Stats, Summary
from .exceptions import ValidationError

__all__ = ["to_prometheus"]

_HELP = {
    "time_to_detect": "Time from the issue first occurring to its detection.",
    "time_to_declare": "Time from detection to the incident's declaration.",
    "time_to_acknowledge": "Time from declaration to acknowledgement (triage started).",
    "time_to_contain": "Time from declaration to containment.",
    "time_to_fix": "Time from declaration to the fix (marked fixed).",
    "time_to_resolve": "Time from declaration to resolution.",
    "time_to_postmortem": "Time from resolution to the completed post-mortem.",
}

#: The quantiles each summary reports, as Prometheus ``quantile`` labels.
_QUANTILES = ((0.5, "0.5"), (0.9, "0.9"))

# -- Prometheus text exposition ---------------------------------------------------

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
#: Labels the exposition sets itself; a constant label may not reuse them.
_RESERVED_LABELS = frozenset({"severity", "type", "state", "period", "quantile", "le"})


def to_prometheus(summaries: Iterable[Summary], *, labels: Mapping[str, str] | None = None) -> str:
    """The summaries in the Prometheus text exposition format (version 0.0.4).

    Each duration becomes a summary-type metric in seconds with ``quantile``
    0.5 and 0.9 samples (``NaN`` when no incident has the duration) plus
    ``_sum`` and ``_count``; MTTA and MTTR become gauges; the incidents in each
    severity and state become the ``incidentflow_incidents`` gauge (a gauge,
    not a ``_total`` counter: the count of a state goes down as incidents move
    on). A summary's group becomes a ``severity`` or ``period`` label. Serve
    the text with the content type ``text/plain; version=0.0.4``.

    Args:
        summaries: What :func:`summarize` returned; summaries of different
            groupings may be mixed, but no two may have the same group.
        labels: Constant labels added to every sample, e.g.
            ``{"service": "checkout"}``. Values may hold any text; they are
            escaped.

    Returns:
        The exposition text, ending with a newline.

    Raises:
        ValidationError: A label name is not a valid Prometheus label name or
            is one the exposition sets itself, or two summaries share a group.

    """
    constant = _constant_labels(labels or {})
    groups: list[tuple[Summary, str]] = []
    seen: set[str] = set()
    for summary in summaries:
        group = _labels(constant, _group_labels(summary))
        if group in seen:
            raise ValidationError(
                "summaries",
                f"two summaries share the labels {{{group}}}; pass one summarize() result "
                "or summaries of different groupings",
            )
        seen.add(group)
        groups.append((summary, group))

    out: list[str] = []
    name = "incidentflow_incidents"
    _family(out, name, "gauge", "Incidents by current severity and state.")
    written: set[str] = set()
    for summary, _ in groups:
        base = {**constant, **_group_labels(summary)}
        for (severity, state), n in summary.counts.items():
            sample = _labels({**base, "severity": severity.value, "state": state.value})
            # The whole and its by-severity parts count the same incidents: one series each.
            if sample not in written:
                written.add(sample)
                out.append(f"{name}{{{sample}}} {n}")

    for metric in METRICS:
        name = f"incidentflow_{metric}_seconds"
        _family(out, name, "summary", _HELP[metric])
        for summary, group in groups:
            stats: Stats = getattr(summary, metric)
            for q, q_label in _QUANTILES:
                value = getattr(stats, "median" if q == 0.5 else "p90")
                quantile = _labels({"quantile": q_label})
                sample_labels = f"{group},{quantile}" if group else quantile
                out.append(f"{name}{{{sample_labels}}} {_seconds(value)}")
            suffix = f"{{{group}}}" if group else ""
            out.append(f"{name}_sum{suffix} {_number(stats.total.total_seconds())}")
            out.append(f"{name}_count{suffix} {stats.count}")

    for name, help_text, attribute in (
        ("incidentflow_mtta_seconds", "Mean time to acknowledge.", "mtta"),
        ("incidentflow_mttr_seconds", "Mean time to resolve.", "mttr"),
    ):
        _family(out, name, "gauge", help_text)
        for summary, group in groups:
            suffix = f"{{{group}}}" if group else ""
            out.append(f"{name}{suffix} {_seconds(getattr(summary, attribute))}")
    return "\n".join(out) + "\n"


def _constant_labels(labels: Mapping[str, str]) -> dict[str, str]:
    checked = {}
    for name, value in labels.items():
        if not isinstance(name, str) or not _LABEL_NAME.match(name) or name.startswith("__"):
            raise ValidationError(
                "labels",
                f"{name!r} is not a Prometheus label name; use letters, digits and underscores, "
                "not starting with a digit or '__'",
            )
        if name in _RESERVED_LABELS:
            raise ValidationError(
                "labels", f"{name!r} is set by the exposition itself; choose another label name"
            )
        if not isinstance(value, str):
            raise ValidationError("labels", f"the value of {name!r} must be text (str)")
        checked[name] = value
    return checked


def _group_labels(summary: Summary) -> dict[str, str]:
    labels = {} if summary.severity is None else {"severity": summary.severity.value}
    if summary.type is not None:
        labels["type"] = summary.type
    if summary.period is not None:
        labels["period"] = summary.period
    return labels


def _family(out: list[str], name: str, kind: str, help_text: str) -> None:
    help_text = help_text.replace("\\", "\\\\").replace("\n", "\\n")
    out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _labels(*label_sets: Mapping[str, str]) -> str:
    merged = {name: value for label_set in label_sets for name, value in label_set.items()}
    return ",".join(f'{name}="{_escape_label_value(value)}"' for name, value in merged.items())


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _seconds(span: timedelta | None) -> str:
    return "NaN" if span is None else _number(span.total_seconds())


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)
