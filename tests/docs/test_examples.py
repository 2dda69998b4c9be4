"""Every Python example of the documentation (docs/**/*.md) and of README.md runs.

A fenced ``python`` block is a script: it runs in a fresh interpreter, in an
empty directory, and must exit with 0 within a minute (servers in examples bind
port 0). A block whose first line starts with ``>>>`` is a doctest session and
its outputs are compared. Where a page says what a script prints,
``PRINTS`` holds it (keyed by a line of the script) and the output must match.
Blocks of other languages (``sh``, ``nginx``, ...) are shown, not run. The one
Python block that is not run is an ASGI example on Python 3.9, where uvicorn
0.50+ (what :mod:`wscodec.asgi.uvicorn` targets) cannot be installed.
"""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
from pathlib import Path
from typing import List, NamedTuple

import pytest

from tests.test_layout import NO_README, README

DOCS = README.parent / "docs"
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


class Example(NamedTuple):
    path: Path
    line: int
    code: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(README.parent)}:{self.line}"


def examples_in(path: Path) -> List[Example]:
    text = path.read_text(encoding="utf-8")
    return [
        Example(path, text.count("\n", 0, match.start()) + 1, match.group(1))
        for match in _FENCE.finditer(text)
    ]


def documented_files() -> List[Path]:
    files = sorted(DOCS.rglob("*.md")) if DOCS.is_dir() else []
    return [*files, README] if README.exists() else files


# What an example prints, line by line (regular expressions), keyed by a line of its code.
PRINTS = {
    'print(f"ping answered in {latency * 1000:.2f} ms")': [
        r"Hello",
        r"ping answered in \d+\.\d\d ms",
    ],
    "print(connection.ping().wait(5))  # True once the pong is back": [r"Hello", r"True"],
    'print("received", message)': [r"received Hello", r"closed with 1000"],
    "print(await first.recv(), await second.recv())": [r"to everyone to everyone"],
    "print(refused.response.status)  # 401": [r"401", r"in"],
    "print(received, broker.history": [r"\['hello'\] None"],
    'print(wscodec.BACKEND)  # "cython" or "python"': [r"cython|python", r"None|.+"],
    'await websocket.send("Hello from uvicorn")': [r"Hello from uvicorn"],
}

ALL = [example for path in documented_files() for example in examples_in(path)]


def test_the_docs_have_examples_to_run():
    if not README.exists():
        pytest.skip(NO_README)
    if not DOCS.is_dir():
        pytest.skip("no docs/ beside tests/ (an sdist's test run has the README alone)")
    assert len(ALL) >= 15
    assert {e.path for e in ALL} >= {README, DOCS / "getting-started.md"}


def test_the_fence_pattern_finds_python_blocks_only(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n```sh\nls\n```\n\n```python\nprint(1)\n```\n```pythonic\nx\n```\n")
    found = examples_in(page)
    assert [(e.line, e.code) for e in found] == [(6, "print(1)\n")]


@pytest.mark.parametrize("example", ALL, ids=lambda e: e.name)
def test_the_example_runs(example: Example, tmp_path: Path):
    if example.code.lstrip().startswith(">>>"):
        parser = doctest.DocTestParser()
        test = parser.get_doctest(example.code, {}, example.name, str(example.path), example.line)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        runner.run(test, out=lambda text: sys.stdout.write(text))
        assert runner.failures == 0, f"{example.name}: a doctest failed (output above)"
        return
    if "import uvicorn" in example.code and sys.version_info < (3, 10):
        pytest.skip("uvicorn 0.50+, which wscodec.asgi.uvicorn targets, needs Python 3.10")
    script = tmp_path / "example.py"
    script.write_text(example.code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, f"{example.name} failed:\n{result.stderr}"
    for key, lines in PRINTS.items():
        if key in example.code:
            printed = result.stdout.splitlines()
            assert len(printed) == len(lines), printed
            for pattern, line in zip(lines, printed):
                assert re.fullmatch(pattern, line), (pattern, line)


def test_every_expected_output_belongs_to_an_example():
    """A PRINTS key that no example contains any more is a check that silently stopped."""
    if not README.exists() or not DOCS.is_dir():
        pytest.skip(NO_README)
    for key in PRINTS:
        assert sum(key in e.code for e in ALL) >= 1, key
