"""The README's asyncio example runs as written."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.test_layout import NO_README, README


def test_the_asyncio_example_runs_as_written(tmp_path):
    if not README.exists():
        pytest.skip(NO_README)
    section = README.read_text(encoding="utf-8").split("### asyncio\n", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    script = tmp_path / "example.py"
    script.write_text(example)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Hello"
    assert re.fullmatch(r"ping answered in \d+\.\d\d ms", lines[1]), lines
