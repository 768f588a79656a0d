"""Rendering incidents for people: Markdown files and Mermaid diagrams."""

from .._lifecycle import mermaid_diagram
from .gantt import incident_gantt
from .markdown import render_gotcha, render_incident, timeline

__all__ = ["incident_gantt", "mermaid_diagram", "render_gotcha", "render_incident", "timeline"]
