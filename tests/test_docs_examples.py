"""The code in the docs runs, and what the docs show is what the code does.

How it works:

* Every fenced ``python`` block in ``docs/**/*.md`` runs. There is no opt-in
  marker: text that is not meant to run is fenced as something else
  (``text``, ``toml``, ``bash``, ``markdown``).
* The blocks of one page run in order, in one namespace, like the cells of a
  notebook, so a tutorial step can use what an earlier step made. Each page
  runs in its own Python subprocess (``-W error``) whose working directory is a
  fresh temporary directory: files the examples write land there, and
  process-wide state (loguru handlers, ``logger.enable``) cannot leak into
  other tests. A failing block reports the page and line it sits on.
* A fence of another language titled with a file name (``title="incidentflow.toml"``)
  is written to the working directory, under that name, before the page runs,
  so a page can show a file and then load it.
* A fence whose info string has ``title="Output`` right after a python block
  (only blank lines between) holds that block's expected standard output; the
  two must match, ignoring trailing whitespace.
* Parts of pages generated from the code sit between
  ``<!-- generated: NAME -->`` and ``<!-- end: NAME -->`` and must equal what
  ``GENERATORS[NAME]`` builds now: the lifecycle diagram, the table of the
  states each command is allowed in, the event types with their fields, and
  the exception tree from ``incidentflow.exceptions``' docstring.
* python fences must start at column 0 (not inside an admonition or a tab);
  an indented python fence fails the test instead of being skipped silently.

After changing what the docs describe, refresh the generated parts and the
expected outputs with ``python tests/test_docs_examples.py --write`` and review
the diff.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,})(?P<info>[^`]*)$")
_GENERATED = re.compile(
    r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end: (?P=name) -->)", re.DOTALL
)
_FILE_TITLE = re.compile(r'title="([\w-]+(?:\.[\w-]+)+)"')
_SENTINEL = "\x00docs-block-{}\x00\n"

_DRIVER = """
import json, sys, traceback
page, sentinel, blocks = json.load(open(sys.argv[1], encoding="utf-8"))
namespace = {"__name__": "__main__"}
for i, (line, code) in enumerate(blocks):
    sys.stdout.write(sentinel.format(i))
    sys.stdout.flush()
    try:
        # Pad so tracebacks name the line of the page the code sits on.
        exec(compile("\\n" * line + code, page, "exec"), namespace)
    except BaseException:
        sys.stdout.flush()
        traceback.print_exc()
        sys.exit(1)
    sys.stdout.flush()
"""


class Fence:
    """One fenced block of a page: where it starts, its info string and body."""

    def __init__(self, line: int, indent: str, info: str, body: str, end: int) -> None:
        self.line = line  # 1-based line of the opening fence: 0-based of the first body line
        self.indent = indent
        self.info = info.strip()
        self.body = body
        self.end = end  # 0-based line of the closing fence

    @property
    def language(self) -> str:
        return self.info.split(" ", 1)[0] if self.info else ""

    @property
    def is_output(self) -> bool:
        return 'title="Output' in self.info

    @property
    def file_name(self) -> str | None:
        """The file a non-python fence titled with a file name stands for."""
        match = _FILE_TITLE.search(self.info)
        if match is None or self.language == "python":
            return None
        return match[1]


def fences(text: str) -> list[Fence]:
    """Every fenced block of a Markdown page, in order (nested fences are body)."""
    lines = text.split("\n")
    found = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        ticks, indent = match["ticks"], match["indent"]
        closing = re.compile(rf"^{re.escape(indent)}`{{{len(ticks)},}}\s*$")
        j = i + 1
        while j < len(lines) and not closing.match(lines[j]):
            j += 1
        body = "\n".join(line[len(indent) :] for line in lines[i + 1 : j])
        found.append(Fence(i + 1, indent, match["info"], body + "\n", j))
        i = j + 1
    return found


def examples(text: str) -> list[tuple[Fence, Fence | None]]:
    """Each python fence with the output fence that follows it, if any."""
    all_fences = fences(text)
    lines = text.split("\n")
    pairs = []
    for n, fence in enumerate(all_fences):
        if fence.language != "python":
            continue
        output = None
        if n + 1 < len(all_fences):
            nxt = all_fences[n + 1]
            between = lines[fence.end + 1 : nxt.line - 1]
            if nxt.is_output and all(not line.strip() for line in between):
                output = nxt
        pairs.append((fence, output))
    return pairs


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def pages_with_python() -> list[Path]:
    return [p for p in pages() if examples(p.read_text(encoding="utf-8"))]


def run_page(page: Path, cwd: Path) -> list[str]:
    """Run a page's python blocks in a fresh interpreter; return each block's stdout."""
    text = page.read_text(encoding="utf-8")
    rel = page.relative_to(ROOT).as_posix()
    blocks = [(fence.line, fence.body) for fence, _ in examples(text)]
    for fence in fences(text):
        if fence.file_name is not None:
            (cwd / fence.file_name).write_text(fence.body, encoding="utf-8")
    spec = cwd / ".docs-blocks.json"
    spec.write_text(json.dumps([rel, _SENTINEL, blocks]), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", _DRIVER, str(spec)],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )
    spec.unlink()
    if proc.returncode != 0:
        pytest.fail(
            f"a python block of {rel} failed:\n{proc.stderr}\n--- stdout ---\n{proc.stdout}",
            pytrace=False,
        )
    chunks = proc.stdout.split("\x00")
    outputs = [""] * len(blocks)
    # chunks: "", "docs-block-0", "\n<output>", "docs-block-1", ...
    for marker, body in zip(chunks[1::2], chunks[2::2], strict=True):
        outputs[int(marker.rsplit("-", 1)[1])] = body[1:]
    return outputs


def _normal(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n"))


# -- generated parts ------------------------------------------------------------


def gen_lifecycle_diagram() -> str:
    from incidentflow.render import mermaid_diagram

    return "```mermaid\n" + mermaid_diagram() + "```\n"


def gen_allowed_states() -> str:
    from incidentflow.commands import DEFINITIONS

    rows = [
        "| Command | Allowed when the incident is | Leads to |",
        "|---|---|---|",
    ]
    for name, command in DEFINITIONS.items():
        if not command.moves:
            rows.append(f"| `{name}` | — (creates the incident) | declared |")
            continue
        targets: list[str] = []
        for move in command.moves:
            target = "stays in its state" if move.dest is None else move.dest.value
            if target not in targets:
                targets.append(target)
        allowed = ", ".join(s.value for s in command.runs_in)
        rows.append(f"| `{name}` | {allowed} | {' or '.join(targets)} |")
    return "\n".join(rows) + "\n"


def gen_reason_codes() -> str:
    from incidentflow.commands import DEFINITIONS, reason_codes

    used_by: dict[str, list[str]] = {}
    for name, command in DEFINITIONS.items():
        for guard in command.guards:
            used_by.setdefault(guard.code, []).append(f"`{name}`")
    rows = ["| Code | Requires | Checked by |", "|---|---|---|"]
    for code, summary in reason_codes().items():
        default = "`flow.can`" if code == "state.not_allowed" else "any command with a custom guard"
        commands = ", ".join(used_by.get(code, [default]))
        rows.append(f"| `{code}` | {summary} | {commands} |")
    return "\n".join(rows) + "\n"


def gen_command_reference() -> str:
    from incidentflow.commands import DEFINITIONS

    parts: list[str] = []
    for name, command in DEFINITIONS.items():
        parts.append(f"### `{name}`\n")
        parts.append(command.summary + "\n")
        if command.moves:
            runs = ", ".join(s.value for s in command.runs_in)
            dests = sorted({m.dest.value for m in command.moves if m.dest is not None})
            leads = " or ".join(dests) if dests else "stays in its state"
            parts.append(f"- **Runs in:** {runs}; **leads to:** {leads}")
        parts.append(f"- **Records:** `{command.event.TYPE}`")
        if command.system:
            parts.append("- Run by the library itself (`check_deadlines`), not a facade method.")
        if command.guards:
            codes = ", ".join(f"`{g.code}`" for g in command.guards)
            parts.append(f"- **Guards:** {codes}")
        if command.arguments:
            parts.append("\n| Argument | Required | Meaning |\n|---|---|---|")
            for argument in command.arguments:
                required = "yes" if argument.required else "no"
                parts.append(f"| `{argument.name}` | {required} | {argument.doc} |")
        parts.append("")
    return "\n".join(parts)


def gen_event_types() -> str:
    import attrs

    from incidentflow._events import event_types

    rows = [
        "| Type (`event.type`) | Payload class | Fields of `event.data` | Meaning |",
        "|---|---|---|---|",
    ]
    for name, cls in event_types().items():
        fields = "<br>".join(
            # __annotations__ keeps the source text even after attrs.resolve_types
            f"`{f.name}: {cls.__annotations__[f.name]}`"
            for f in attrs.fields(cls)
        )
        doc = " ".join((cls.__doc__ or "").split()).replace("``", "`").replace("|", "\\|")
        rows.append(f"| `{name}` | `{cls.__name__}` | {fields or '—'} | {doc} |")
    return "\n".join(rows) + "\n"


def gen_exception_tree() -> str:
    import textwrap

    from incidentflow import exceptions

    doc = exceptions.__doc__ or ""
    tree = doc.split("The tree::", 1)[1].split("\n\n", 2)[1]
    return "```text\n" + textwrap.dedent(tree).replace("``", "") + "\n```\n"


def gen_webhook_schema() -> str:
    from incidentflow.notifiers import WEBHOOK_SCHEMA

    return "```json\n" + json.dumps(WEBHOOK_SCHEMA, indent=2, ensure_ascii=False) + "\n```\n"


GENERATORS: dict[str, Callable[[], str]] = {
    "exception-tree": gen_exception_tree,
    "webhook-schema": gen_webhook_schema,
    "lifecycle-diagram": gen_lifecycle_diagram,
    "allowed-states": gen_allowed_states,
    "event-types": gen_event_types,
    "reason-codes": gen_reason_codes,
    "command-reference": gen_command_reference,
}


def generated(name: str) -> str:
    """A generated part as it sits between its markers: blank lines around it.

    The blank lines keep Markdown from reading the part as the HTML comment's body.
    """
    return "\n" + GENERATORS[name]() + "\n"


# -- tests ----------------------------------------------------------------------


class TestDocsExamples:
    """Every example in the docs runs and prints what the docs say it prints."""

    @pytest.mark.parametrize(
        "page", pages_with_python(), ids=lambda p: p.relative_to(DOCS).as_posix()
    )
    def test_page_examples_run(self, page: Path, tmp_path: Path) -> None:
        """The page's python blocks run in order and match their shown output."""
        text = page.read_text(encoding="utf-8")
        outputs = run_page(page, tmp_path)
        for (fence, expected), actual in zip(examples(text), outputs, strict=True):
            if expected is not None:
                assert _normal(actual) == _normal(expected.body), (
                    f"{page.relative_to(ROOT)}:{fence.line}: the output shown at line "
                    f"{expected.line} is not what the block prints"
                )

    def test_there_are_examples(self) -> None:
        """The extractor finds the tutorial and how-to examples (guards against a broken parser)."""
        found = {p.relative_to(DOCS).as_posix() for p in pages_with_python()}
        assert {"tutorial.md", "how-to/policy.md", "how-to/concurrency.md"} <= found

    @pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(DOCS).as_posix())
    def test_no_indented_python_fences(self, page: Path) -> None:
        """No python block hides inside an indented block, where it would not run."""
        for fence in fences(page.read_text(encoding="utf-8")):
            assert not (fence.language == "python" and fence.indent), (
                f"{page.relative_to(ROOT)}:{fence.line}: indented python fence; "
                "move it to column 0 so the docs test runs it"
            )


class TestGeneratedParts:
    """The parts of pages generated from the code are what the code generates now."""

    @pytest.mark.parametrize("name", sorted(GENERATORS))
    def test_generated_part_is_current(self, name: str) -> None:
        """Each generated part appears in some page and equals the generator's output."""
        found = []
        for page in pages():
            for match in _GENERATED.finditer(page.read_text(encoding="utf-8")):
                if match["name"] == name:
                    found.append(page)
                    assert match["body"] == generated(name), (
                        f"{page.relative_to(ROOT)}: generated part {name!r} is stale; "
                        "run python tests/test_docs_examples.py --write"
                    )
        assert found, f"no page holds the generated part {name!r}"

    def test_index_diagram_is_the_renderer_output(self) -> None:
        """The home page's Mermaid diagram is exactly mermaid_diagram()'s output."""
        from incidentflow.render import mermaid_diagram

        text = (DOCS / "index.md").read_text(encoding="utf-8")
        bodies = [f.body for f in fences(text) if f.language == "mermaid"]
        assert bodies == [mermaid_diagram()]


# -- refreshing -------------------------------------------------------------------


def write() -> None:
    """Rewrite generated parts and expected outputs from the current code."""
    import tempfile

    for page in pages():
        original = text = page.read_text(encoding="utf-8")
        text = _GENERATED.sub(lambda m: m[1] + generated(m["name"]) + m[4], text)
        pairs = examples(text)
        if any(output is not None for _, output in pairs):
            page.write_text(text, encoding="utf-8")
            with tempfile.TemporaryDirectory() as tmp:
                outputs = run_page(page, Path(tmp))
            lines = text.split("\n")
            for (_, output), actual in reversed(list(zip(pairs, outputs, strict=True))):
                if output is not None:
                    body = [
                        output.indent + line if line else line
                        for line in _normal(actual).split("\n")
                    ]
                    lines[output.line : output.end] = body
            text = "\n".join(lines)
        page.write_text(text, encoding="utf-8")
        if text != original:
            print(f"refreshed {page.relative_to(ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_docs_examples.py --write")
    write()
