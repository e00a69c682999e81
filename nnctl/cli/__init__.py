"""The command line: app.py (the Typer app and shared options), the commands in train.py, runs.py
and tools.py, and render.py (rich output)."""

# importing a command module registers its commands; --help lists them in this order
from nnctl.cli import train  # noqa: F401, I001
from nnctl.cli import runs  # noqa: F401
from nnctl.cli import tools  # noqa: F401
from nnctl.cli.app import app, main

__all__ = ["app", "main"]
