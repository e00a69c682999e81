"""The command line: app.py (the Typer commands) over the library; render.py (rich output)."""

from nnctl.cli.app import app, main

__all__ = ["app", "main"]
