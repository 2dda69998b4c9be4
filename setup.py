"""Build the optional compiled codec (``wscodec._codec`` from ``src/wscodec/_codec.pyx``)
and the compiled twins of the protocol modules (see ``TWINS``).

The extension is optional: with ``WSCODEC_NO_EXTENSIONS=1``, without Cython,
or when compiling fails (no C compiler), the package installs without it and
runs on its pure-Python twin. The build then prints one warning and records
why in ``wscodec/_build_note.txt`` inside the built package, which
``wscodec info`` reports. With ``WSCODEC_NO_EXTENSIONS=1`` no extension module
is declared at all, so the wheel is the pure ``py3-none-any`` one.

``WSCODEC_REQUIRE_EXTENSION=1`` turns the fallback into an error: release
wheels and CI set it so that a failed compile can never ship a wheel without
its compiled module.
"""

import glob
import os
import shutil
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

PACKAGE = "wscodec"
#: Protocol modules compiled from their own Python source, which stays their
#: pure-Python twin: the compiled module's name and that source. Each has a
#: ``.pxd`` under src/ (``src/wscodec/_connection_c.pxd``...) that makes its
#: classes extension types with typed attributes; the source module swaps its
#: class for the compiled one at import (``wscodec._backend.compiled_twin``).
TWINS = {
    "wscodec._connection_c": "wscodec/connection.py",
    "wscodec._receive_buffer_c": "wscodec/receive_buffer.py",
    "wscodec.asyncio._messages_c": "wscodec/asyncio/messages.py",
    "wscodec.asyncio._connection_c": "wscodec/asyncio/connection.py",
}
#: Where the twins' sources are copied under their compiled names, beside their .pxd.
TWIN_DIR = os.path.join("build", "twins")
#: Written into the built package when the compiled module is not in it.
BUILD_NOTE = "_build_note.txt"


def flag(name):
    return os.environ.get(name, "") not in ("", "0")


NO_EXTENSIONS = flag("WSCODEC_NO_EXTENSIONS")
REQUIRE_EXTENSION = flag("WSCODEC_REQUIRE_EXTENSION") and not NO_EXTENSIONS


def warn(reason):
    """The one warning a build without the compiled module prints."""
    sys.stderr.write(
        f"WARNING: wscodec: the compiled codec was not built: {reason}. Installing the"
        " pure-Python backend only (same behaviour, slower); `wscodec info` says why.\n"
    )


def write_note(build_lib, reason):
    """Record why the compiled module is missing, or remove a stale record."""
    path = os.path.join(build_lib, PACKAGE, BUILD_NOTE)
    if reason is None:
        if os.path.exists(path):
            os.remove(path)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as note:
        note.write(reason + "\n")


class BuildPy(build_py):
    """Copy the package; when no extension is declared, say so once and record why."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            if SKIPPED:
                warn(SKIPPED)
            return
        write_note(self.build_lib, SKIPPED)
        if SKIPPED:
            # A compiled module left in build/ by an earlier build must not
            # end up in a pure-Python wheel.
            patterns = [os.path.join(self.build_lib, PACKAGE, "_codec.*")]
            patterns += [os.path.join(self.build_lib, *name.split(".")) + ".*" for name in TWINS]
            for stale in (path for pattern in patterns for path in glob.glob(pattern)):
                if stale.endswith((".so", ".pyd")):
                    os.remove(stale)
            warn(SKIPPED)


class OptionalBuildExt(build_ext):
    """Compile if possible; otherwise warn once, record why and carry on."""

    failed = False

    def run(self):
        try:
            super().run()
        except Exception as error:  # a missing compiler surfaces as several error types
            if REQUIRE_EXTENSION:
                raise
            self.fall_back(f"the build failed ({error})")

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as error:
            if REQUIRE_EXTENSION:
                raise
            self.fall_back(
                f"compiling {ext.name} failed ({error}); building it needs a C compiler"
                " and the Python headers"
            )

    def fall_back(self, reason):
        if self.failed:
            return
        self.failed = True
        warn(reason)
        if not self.inplace:
            write_note(self.build_lib, reason)


def extensions():
    """The extension modules to build, and why there are none when there are none."""
    if NO_EXTENSIONS:
        return [], "WSCODEC_NO_EXTENSIONS was set when this package was built"
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError:
        if REQUIRE_EXTENSION:
            sys.exit("error: wscodec: WSCODEC_REQUIRE_EXTENSION is set but Cython is missing")
        return [], "Cython was not installed when this package was built"
    if sys.platform == "win32":
        compile_args = ["/O2"]
    else:
        # -O3 lets gcc/clang vectorise the word loops; never -march=native in
        # a distributed build: the baseline instruction set runs everywhere.
        compile_args = ["-O3"]
    compile_args += os.environ.get("WSCODEC_EXTRA_CFLAGS", "").split()
    link_args = os.environ.get("WSCODEC_EXTRA_LDFLAGS", "").split()
    extension = Extension(
        "wscodec._codec",
        sources=["src/wscodec/_codec.pyx"],
        include_dirs=["src"],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    annotate = os.environ.get("WSCODEC_ANNOTATE", "") not in ("", "0")
    modules = cythonize(
        [extension],
        include_path=["src"],
        compiler_directives={"language_level": "3"},
        annotate=annotate,
        quiet=True,
    )
    twins = [
        Extension(
            name,
            sources=[source],
            extra_compile_args=compile_args,
            extra_link_args=link_args,
        )
        for name, source in twin_sources().items()
    ]
    modules += cythonize(
        twins,
        include_path=[TWIN_DIR],
        compiler_directives={
            "language_level": "3",
            # The code is Python's: annotations stay hints (a ``float``
            # parameter must still take an int or None), and functions keep
            # their signatures for inspect and the docs.
            "annotation_typing": False,
            "binding": True,
            "freethreading_compatible": True,
        },
        annotate=annotate,
        quiet=True,
    )
    return modules, None


def twin_sources():
    """Copy each twin's source, under its compiled name, beside its .pxd in TWIN_DIR.

    Cython reads a module's ``.pxd`` from beside its source, and names the
    module after the packages it finds above it, hence the copies and the
    empty ``__init__`` files. Returns the copies' paths by module name.
    """
    copies = {}
    for name, source in TWINS.items():
        parts = name.split(".")
        for depth in range(1, len(parts)):
            package = os.path.join(TWIN_DIR, *parts[:depth])
            os.makedirs(package, exist_ok=True)
            for init in ("__init__.py", "__init__.pxd"):
                open(os.path.join(package, init), "a").close()
        copy = os.path.join(TWIN_DIR, *parts) + ".py"
        shutil.copyfile(source, copy)
        shutil.copyfile(os.path.join("src", *parts) + ".pxd", copy[:-3] + ".pxd")
        copies[name] = copy
    # The twins cimport the codec's types (the Connection's parser).
    codec_pxd = os.path.join("wscodec", "_codec.pxd")
    shutil.copyfile(os.path.join("src", codec_pxd), os.path.join(TWIN_DIR, codec_pxd))
    return copies


EXT_MODULES, SKIPPED = extensions()

setup(ext_modules=EXT_MODULES, cmdclass={"build_ext": OptionalBuildExt, "build_py": BuildPy})
