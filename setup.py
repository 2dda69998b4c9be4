"""Build the optional compiled codec (``wscodec._codec`` from ``src/wscodec/_codec.pyx``).

The extension is optional: with ``WSCODEC_NO_EXTENSIONS=1``, without Cython,
or when compiling fails (no C compiler), the package installs without it and
runs on its pure-Python twin; one warning says so.
"""

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

NO_EXTENSIONS = os.environ.get("WSCODEC_NO_EXTENSIONS", "") not in ("", "0")


def warn(message):
    sys.stderr.write(f"WARNING: wscodec: {message}; installing the pure-Python backend only.\n")


class OptionalBuildExt(build_ext):
    """Compile if possible; otherwise warn once and carry on."""

    def run(self):
        try:
            super().run()
        except Exception as error:  # a missing compiler surfaces as several error types
            warn(f"the compiled codec could not be built ({error})")

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as error:
            warn(f"compiling {ext.name} failed ({error})")


def extensions():
    if NO_EXTENSIONS:
        warn("WSCODEC_NO_EXTENSIONS is set")
        return []
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError:
        warn("Cython is not installed")
        return []
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
    return cythonize(
        [extension],
        include_path=["src"],
        compiler_directives={"language_level": "3"},
        annotate=os.environ.get("WSCODEC_ANNOTATE", "") not in ("", "0"),
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
