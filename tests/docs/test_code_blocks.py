"""Every ``python`` block of the README and of the documentation pages runs and prints what the
text says.

The convention, for README.md and docs/**/*.md (not docs/generated/, docs/node_modules/,
docs/_build/ or anything under a ``build`` folder):

- each fenced block tagged ``python`` (``` or ~~~ fences) is executed as written, in a fresh
  namespace and in an empty temporary working directory, so it must be complete: imports,
  inputs and seeds included;
- a ``text`` block directly after it (only blank lines between) is the exact stdout it prints,
  compared line by line with trailing whitespace and trailing blank lines ignored;
- a ``python`` block without such a ``text`` block must print nothing;
- the line ``<!-- not run: REASON -->`` directly before a block (only blank lines between)
  skips it, reported as skipped with REASON; for what cannot run inside a test (several
  processes, torchrun);
- blocks in other languages (``bash``, ``console``, no tag) are not run.

Each block is one test, named ``FILE:L<line of its opening fence>``.
"""

from __future__ import annotations

import contextlib
import io
import linecache
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXCLUDED_DOCS = ("docs/generated", "docs/node_modules", "docs/_build")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(?P<reason>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One ``python`` block: where it is, its code, what it must print and whether to skip it."""

    where: str  # "README.md:L42", the line of the opening fence
    source: str
    expected: str | None  # the text block after it; None when there is none
    expected_where: str | None
    skip_reason: str | None


@dataclass(frozen=True)
class _Fence:
    start: int  # index of the opening fence line
    end: int  # index of the closing fence line (len(lines) when unclosed)
    lang: str
    body: str


def _fences(lines: list[str]) -> list[_Fence]:
    """The fenced code blocks of a Markdown text, in order (CommonMark's fence rules, with the
    opening fence's indentation removed from the body; nested fences are body text)."""
    found = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None or (m["fence"][0] == "`" and "`" in m["info"]):
            i += 1
            continue
        fence, indent, info = m["fence"], len(m["indent"]), m["info"].strip()
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        j = i + 1
        while j < len(lines) and not closing.match(lines[j]):
            j += 1
        body = []
        for line in lines[i + 1 : j]:
            stripped = line.lstrip(" \t")
            body.append(line[min(indent, len(line) - len(stripped)) :])
        lang = info.split()[0] if info else ""
        found.append(_Fence(i, j, lang, "".join(f"{b}\n" for b in body)))
        i = j + 1
    return found


def _next_nonblank(lines: list[str], i: int, step: int) -> int | None:
    while 0 <= i < len(lines):
        if lines[i].strip():
            return i
        i += step
    return None


def parse_blocks(text: str, name: str) -> list[Block]:
    """The ``python`` blocks of the Markdown ``text`` of file ``name``, each with the ``text``
    block that follows it and the not-run marker that precedes it, if any."""
    lines = text.splitlines()
    fences = _fences(lines)
    by_start = {f.start: f for f in fences}
    blocks = []
    for f in fences:
        if f.lang != "python":
            continue
        expected = expected_where = None
        after = _next_nonblank(lines, f.end + 1, 1)
        if after is not None and after in by_start and by_start[after].lang == "text":
            expected = by_start[after].body
            expected_where = f"{name}:L{after + 1}"
        skip_reason = None
        before = _next_nonblank(lines, f.start - 1, -1)
        if before is not None:
            m = _NOT_RUN.match(lines[before])
            if m is not None:
                skip_reason = m["reason"] or "no reason given"
        blocks.append(Block(f"{name}:L{f.start + 1}", f.body, expected, expected_where, skip_reason))
    return blocks


def markdown_files(root: Path = ROOT) -> list[Path]:
    """README.md and the hand-written pages under docs/."""
    files = [root / "README.md"] if (root / "README.md").is_file() else []
    docs = root / "docs"
    if docs.is_dir():
        for path in sorted(docs.rglob("*.md")):
            rel = path.relative_to(root)
            if rel.as_posix().startswith(tuple(f"{d}/" for d in EXCLUDED_DOCS)) or "build" in rel.parts:
                continue
            files.append(path)
    return files


def collect(root: Path = ROOT) -> list[Block]:
    blocks = []
    for path in markdown_files(root):
        blocks += parse_blocks(path.read_text(encoding="utf-8"), path.relative_to(root).as_posix())
    return blocks


def _normalise(out: str) -> str:
    lines = [line.rstrip() for line in out.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


@contextlib.contextmanager
def _jax_defaults():
    # the suite's conftest turns on JAX's float64; a reader running the block has float32
    jax = sys.modules.get("jax")
    if jax is None:
        yield
        return
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


def run_block(block: Block) -> str:
    """Execute the block in a fresh namespace (in the current directory) and return its stdout."""
    namespace = {"__name__": "__main__"}
    out = io.StringIO()
    code = compile(block.source, block.where, "exec")
    # so that a traceback shows the block's lines
    linecache.cache[block.where] = (len(block.source), None, block.source.splitlines(True), block.where)
    try:
        with _jax_defaults(), contextlib.redirect_stdout(out):
            exec(code, namespace)
    except Exception as exc:  # name the block in the report
        exc.add_note(f"raised by the python block at {block.where} (line numbers count from its first line)")
        if out.getvalue():
            exc.add_note(f"it had printed:\n{out.getvalue()}")
        raise
    return out.getvalue()


def check_block(block: Block) -> None:
    """Run the block and compare its stdout with its ``text`` block (or with nothing)."""
    actual = _normalise(run_block(block))
    expected = _normalise(block.expected or "")
    if actual == expected:
        return
    if block.expected is None:
        pytest.fail(
            f"the python block at {block.where} prints, but no ```text block follows it with the "
            f"output; it printed:\n{actual}",
            pytrace=False,
        )
    pytest.fail(
        f"the python block at {block.where} does not print what the ```text block at "
        f"{block.expected_where} says\n--- expected\n{expected}\n--- actual\n{actual}",
        pytrace=False,
    )


BLOCKS = collect()


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_block(block, tmp_path, monkeypatch):
    if block.skip_reason is not None:
        pytest.skip(f"{block.where}: not run: {block.skip_reason}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    check_block(block)


# ---- the runner itself ----

SAMPLE = """\
# Title

```python
print("hello")
```

```text
hello
```

~~~ python title="quiet"
x = 1
~~~

<!-- not run: needs two processes -->

```python
raise RuntimeError("never run")
```

```bash
echo not python
```

````markdown
```python
print("inside another fence: not a block")
```
````
"""


def test_parser_finds_python_blocks_with_their_output_and_markers():
    blocks = parse_blocks(SAMPLE, "page.md")
    assert [b.where for b in blocks] == ["page.md:L3", "page.md:L11", "page.md:L17"]
    hello, quiet, skipped = blocks
    assert hello.source == 'print("hello")\n'
    assert hello.expected == "hello\n" and hello.expected_where == "page.md:L7"
    assert hello.skip_reason is None
    assert quiet.source == "x = 1\n" and quiet.expected is None and quiet.skip_reason is None
    assert skipped.skip_reason == "needs two processes" and skipped.expected is None


def test_text_block_must_follow_directly():
    text = '```python\nprint(1)\n```\nSome prose.\n\n```text\n1\n```\n'
    (block,) = parse_blocks(text, "p.md")
    assert block.expected is None
    with pytest.raises(pytest.fail.Exception, match="no ```text block"):
        check_block(block)


def test_marker_must_be_directly_before():
    text = "<!-- not run: far away -->\n\nProse.\n\n```python\npass\n```\n"
    (block,) = parse_blocks(text, "p.md")
    assert block.skip_reason is None


def test_tilde_fence_closes_only_on_tildes_and_keeps_indentation():
    text = "  ~~~~python\n  if True:\n      print('a ``` b')\n  ```\n  ~~~~\n"
    (block,) = parse_blocks(text, "p.md")
    assert block.source == "if True:\n    print('a ``` b')\n```\n"


def test_matching_output_passes():
    (block,) = parse_blocks('```python\nprint("a  ")\nprint("b")\n```\n\n```text\na\nb\n\n```\n', "p.md")
    check_block(block)


def test_different_output_fails_with_both_shown():
    (block,) = parse_blocks('```python\nprint(2 + 2)\n```\n```text\n5\n```\n', "p.md")
    with pytest.raises(pytest.fail.Exception) as info:
        check_block(block)
    message = str(info.value)
    assert "p.md:L1" in message and "p.md:L4" in message
    assert "--- expected\n5\n--- actual\n4" in message


def test_expected_output_must_be_printed():
    (block,) = parse_blocks("```python\nx = 4\n```\n```text\n4\n```\n", "p.md")
    with pytest.raises(pytest.fail.Exception, match="--- actual\n$"):
        check_block(block)


def test_leading_blank_lines_are_not_ignored():
    (block,) = parse_blocks('```python\nprint()\nprint("x")\n```\n```text\nx\n```\n', "p.md")
    with pytest.raises(pytest.fail.Exception):
        check_block(block)


def test_each_block_has_a_fresh_namespace():
    first, second = parse_blocks("```python\nv = 1\n```\n```python\nprint(v)\n```\n```text\n1\n```\n", "p.md")
    check_block(first)
    with pytest.raises(NameError) as info:
        check_block(second)
    assert any("p.md:L4" in note for note in info.value.__notes__)


def test_excluded_folders_are_not_collected(tmp_path):
    for rel in ["README.md", "docs/index.md", "docs/guide/a.md", "docs/generated/api.md",
                "docs/node_modules/pkg/README.md", "docs/_build/html/x.md", "docs/build/y.md"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("```python\npass\n```\n")
    found = [p.relative_to(tmp_path).as_posix() for p in markdown_files(tmp_path)]
    assert found == ["README.md", "docs/guide/a.md", "docs/index.md"]


def test_a_fence_closes_only_on_as_many_backticks_or_more():
    text = "````text\n```\n````\n```python\npass\n```\n"
    (block,) = parse_blocks(text, "p.md")
    assert block.where == "p.md:L4" and block.source == "pass\n"


def test_a_backtick_in_the_info_string_is_no_fence():
    # CommonMark: that line is inline code, so the fence opens at the next ``` line
    assert parse_blocks("```python `x`\nprint(1)\n```\n", "p.md") == []
