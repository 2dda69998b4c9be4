"""The version of wscodec, in one place (the package, the CLI and the Server header read it)."""

__version__ = "0.1.0"
