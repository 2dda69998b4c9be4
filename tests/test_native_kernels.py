"""The C kernels on their own: tests/native/kernel_check.c, compiled and run.

The suite runs on x86_64, so without this the aarch64 (NEON) paths of
simd_mask.h and simd_utf8.h, which our aarch64 wheels ship, would never be
compiled or run.
Here the harness is cross-compiled with Debian's aarch64-linux-gnu-gcc
(statically, so no aarch64 sysroot is needed at run time) and run under
qemu-aarch64; and compiled natively, which checks the x86_64 levels this CPU
has and the harness itself, and with -DWSCODEC_NO_SIMD the portable-only
path that MSVC, ppc64le, s390x and every other target without our SIMD take.
None of these needs the built extension.

The whole extension's C (_codec.pyx cythonized, with the headers) is also
compiled, syntax only, for aarch64 and for the portable-only path: paths no
machine of ours builds the extension for.

Without the cross compiler or qemu the aarch64 tests are skipped, or fail when
WSCODEC_REQUIRE_SYSTEM_DEPS is set (.ci/run installs both and sets it). They
need the source tree: cibuildwheel runs a copy of tests/ alone, so there they
are skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import system_program_missing
from tests.peers import peers_required

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"  # the include directory setup.py builds with
HARNESS = ROOT / "tests" / "native" / "kernel_check.c"
# -Werror: the headers must build cleanly for every architecture we ship.
CFLAGS = [
    "-std=c99",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Wno-unused-function",
    "-Werror",
    f"-I{SRC / 'wscodec'}",
]
CROSS_CC = "aarch64-linux-gnu-gcc"
QEMU = "qemu-aarch64"
SUMMARY = re.compile(r"^kernel_check: (\d+) cases passed, 0 failed \(levels:([ \w]*)\)$", re.M)
# The levels whose UTF-8 kernel was checked (none below AVX2 or on the portable path).
UTF8_LEVELS = re.compile(r"^kernel_check: utf8 levels:([ \w]*)$", re.M)

pytestmark = pytest.mark.skipif(
    not (SRC / "wscodec" / "_codec.pyx").is_file(),
    reason="needs the source tree (src/wscodec), not only tests/",
)


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    # .ci/sanitize preloads ASan/UBSan into the test process: not into the
    # compiler, qemu or an uninstrumented harness.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def _build_and_check(compile_cmd: list[str], run_cmd: list[str]) -> tuple[list[str], list[str]]:
    """Compile, run, assert a clean summary; the levels checked, and those with a UTF-8 kernel."""
    built = _run(compile_cmd, timeout=120)
    assert built.returncode == 0, f"{' '.join(compile_cmd)}\n{built.stderr}"
    result = _run(run_cmd, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    match = SUMMARY.search(result.stdout)
    assert match and int(match[1]) > 0, output
    utf8 = UTF8_LEVELS.search(result.stdout)
    assert utf8, output
    return match[2].split(), utf8[1].split()


def _cross_cc() -> str:
    cross_cc = shutil.which(CROSS_CC)
    if cross_cc is None:
        system_program_missing(f"no {CROSS_CC} (apt-get install gcc-aarch64-linux-gnu)")
    return cross_cc


def _native_cc() -> str:
    cc = next(filter(None, map(shutil.which, ("cc", "gcc", "clang"))), None)
    if cc is None:
        pytest.skip("no C compiler (cc, gcc or clang)")
    return cc


def test_kernels_aarch64_under_qemu(tmp_path: Path) -> None:
    cross_cc, qemu = _cross_cc(), shutil.which(QEMU)
    if qemu is None:
        system_program_missing(f"no {QEMU} (apt-get install qemu-user)")
    exe = tmp_path / "kernel_check"
    levels, utf8_levels = _build_and_check(
        [cross_cc, *CFLAGS, "-static", str(HARNESS), "-o", str(exe)], [qemu, str(exe)]
    )
    assert levels == ["portable", "neon"]
    assert utf8_levels == ["neon"]


@pytest.mark.parametrize("no_simd", [False, True], ids=["simd", "no_simd"])
def test_kernels_native(tmp_path: Path, no_simd: bool) -> None:
    cc = _native_cc()
    exe = tmp_path / "kernel_check"
    defines = ["-DWSCODEC_NO_SIMD"] if no_simd else []
    levels, utf8_levels = _build_and_check(
        [cc, *CFLAGS, *defines, str(HARNESS), "-o", str(exe)], [str(exe)]
    )
    if no_simd:
        assert levels == ["portable"]
        assert utf8_levels == []
    else:
        assert levels[0] == "portable"
        # Every level from AVX2 up has a UTF-8 kernel (x86_64; an aarch64
        # host would show neon for both).
        assert utf8_levels == [level for level in levels if level not in ("portable", "sse2")]


@pytest.fixture(scope="module")
def codec_c(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """src/wscodec/_codec.pyx cythonized as setup.py does (once for the module)."""
    try:
        import Cython  # noqa: F401
    except ImportError:
        # .ci/run's own venv has the dev extra (Cython); the other Pythons'
        # venvs (.ci/pythons) have only the test extra.
        if peers_required():
            pytest.fail("Cython is missing from the venv .ci/run installed with '.[dev]'")
        pytest.skip("Cython is not installed (pip install -e '.[dev]')")
    out = tmp_path_factory.mktemp("cythonized") / "_codec.c"
    pyx = SRC / "wscodec" / "_codec.pyx"
    command = [sys.executable, "-m", "cython", "-3", "-I", str(SRC)]
    command += ["--module-name", "wscodec._codec", str(pyx), "-o", str(out)]
    result = _run(command, timeout=120)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr}"
    return out


@pytest.mark.parametrize("target", ["no_simd", "aarch64"])
def test_extension_c_compiles(codec_c: Path, target: str) -> None:
    """The extension's C builds where it takes other paths than here.

    Syntax only, against this (x86_64) Python's headers: enough to catch a
    name that one preprocessor branch forgets to define (the portable-only
    path is the one MSVC, ppc64le, s390x... take).
    """
    if target == "aarch64":
        command = [_cross_cc()]
    else:
        command = [_native_cc(), "-DWSCODEC_NO_SIMD"]
    # gcc < 14 only warns about a call to an undeclared function.
    command += ["-fsyntax-only", "-Werror=implicit-function-declaration"]
    command += [f"-I{sysconfig.get_paths()['include']}", f"-I{SRC}", str(codec_c)]
    result = _run(command, timeout=60)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr}"
