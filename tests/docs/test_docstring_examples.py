"""Every example in wscodec's docstrings runs: the API reference shows them.

A literal block (a paragraph ending in ``::``, then an indented block) in a
module's, class's or function's docstring is either a doctest session
(``>>>``), run with doctest, or a Python program, run in a fresh interpreter
that must exit with 0 within 30 s (servers bind port 0). What is not
Python (a shell command, a diagram) is shown with ``.. code-block:: sh`` or
``.. code-block:: text`` instead, and is not run.
"""

from __future__ import annotations

import ast
import doctest
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator, List, NamedTuple

import pytest

import wscodec

# The installed package's sources (a wheel's test run has no source tree beside tests/).
PACKAGE = Path(wscodec.__file__).resolve().parent


class Block(NamedTuple):
    path: Path
    line: int  # of the docstring
    code: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(PACKAGE.parent)}:{self.line}"


def literal_blocks(docstring: str) -> Iterator[str]:
    lines = docstring.splitlines()
    index = 0
    while index < len(lines):
        if lines[index].rstrip().endswith("::") and not lines[index].lstrip().startswith(".."):
            index += 1
            body: List[str] = []
            while index < len(lines) and (not lines[index].strip() or lines[index][:1] == " "):
                body.append(lines[index])
                index += 1
            code = textwrap.dedent("\n".join(body)).strip("\n")
            if code:
                yield code + "\n"
        else:
            index += 1


def docstring_blocks(path: Path) -> List[Block]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    blocks = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            docstring = ast.get_docstring(node, clean=True)
            if docstring:
                line = 1 if isinstance(node, ast.Module) else node.lineno
                blocks += [Block(path, line, code) for code in literal_blocks(docstring)]
    return blocks


ALL = [
    block
    for path in sorted(PACKAGE.rglob("*.py"))
    for block in docstring_blocks(path)
    if not any(part.startswith(".") for part in path.parts)
]


def test_the_docstrings_have_examples():
    assert len(ALL) >= 10


def test_a_literal_block_is_found_after_a_double_colon():
    text = "Usage::\n\n    x = 1\n    y = 2\n\nAfter.\n\n.. code-block:: sh\n\n    ls\n"
    assert list(literal_blocks(text)) == ["x = 1\ny = 2\n"]


@pytest.mark.parametrize("block", ALL, ids=lambda b: b.name)
def test_the_docstring_example_runs(block: Block, tmp_path: Path):
    if "uvicorn" in block.code and sys.version_info < (3, 10):
        pytest.skip("uvicorn 0.50+, which wscodec.asgi.uvicorn targets, needs Python 3.10")
    if block.code.lstrip().startswith(">>>"):
        parser = doctest.DocTestParser()
        test = parser.get_doctest(block.code, {}, block.name, str(block.path), block.line)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        runner.run(test, out=sys.stdout.write)
        assert runner.failures == 0, f"{block.name}: a doctest failed (output above)"
        return
    script = tmp_path / "example.py"
    script.write_text(block.code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert result.returncode == 0, f"{block.name} failed:\n{result.stderr}"
