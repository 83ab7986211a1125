"""The ``entrosum`` command line (``main``) and the demo it runs (``demo``)."""

from .main import build_parser, console, main

__all__ = ["build_parser", "console", "main"]
