"""Rendering incidents for people: Markdown files and Mermaid diagrams."""

from .._lifecycle import mermaid_diagram
from .markdown import render_gotcha, render_incident, timeline

__all__ = ["mermaid_diagram", "render_gotcha", "render_incident", "timeline"]
