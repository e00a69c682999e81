"""The `nnctl` Typer app and what its commands share: option aliases, choices, error handling.

The commands live in train.py (train, resume, sweep), runs.py (eval, predict, export, compare, plot,
inspect) and tools.py (explain, gradcheck, lr-find, trace, gd, schema, datasets, init); each parses its options,
calls one library function and hands the result to render.py. Exit codes: 0 success; 1 the work
ran but failed (diverged, interrupted); 2 bad usage or bad input. Messages go to stderr; stdout
carries only results (the run dir path, or one JSON document with --json), so scripts can rely
on it. Heavy modules are imported inside commands: sweeps start nnctl hundreds of times.
"""

from __future__ import annotations

import enum
import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from nnctl.errors import NnctlError

app = typer.Typer(
    name="nnctl",
    help="Train NumPy multilayer perceptrons from YAML experiment specs.\n\n"
    "Start with:  nnctl train configs/moons.yaml",
    no_args_is_help=True,
    add_completion=False,
    # plain help text and plain tracebacks (for bugs only: user errors never show one): typer's
    # rich help and rich tracebacks import markdown-it and friends, ~50 ms on every start-up
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# ------------------------------------------------------------------------------------ shared options
ConfigArg = Annotated[Path, typer.Argument(metavar="CONFIG", help="Experiment spec (YAML). See configs/ for "
                                           "examples.", show_default=False)]
RunDirArg = Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory written by nnctl train.",
                                           show_default=False)]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", "-s", metavar="KEY=VALUE",
    help="Override a config key (dotted path, YAML value); repeatable. "
         "Example: --set optimizer.lr=0.01 --set model.hidden=[64,32]")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, and nothing else there.")]
WidthOpt = Annotated[int | None, typer.Option(
    min=0, help="Fit tables to this many columns (0: no limit). Default: COLUMNS, else the terminal's width; "
                "piped output without COLUMNS is not limited.", show_default=False)]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary on stderr.")]


def output_option(help: str):
    """-o/--output FILE, with the command's own help."""
    return Annotated[Path | None, typer.Option("--output", "-o", help=help)]


def plot_option(help: str):
    """--plot FILE.png, with what the command draws."""
    return Annotated[Path | None, typer.Option("--plot", metavar="FILE.png", help=help)]


class Format(str, enum.Enum):
    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"


def handle_errors(fn):
    """Turn NnctlError into one message on stderr and its exit code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from nnctl.cli import render

        try:
            return fn(*args, **kwargs)
        except NnctlError as exc:
            render.error(str(exc))
            if exc.run_dir is not None:
                print(exc.run_dir)  # scripts still learn where the (failed) run is
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:  # Ctrl-C before training started (loading data, importing)
            render.error("interrupted")
            raise typer.Exit(1) from None

    return wrapper


def _version_callback(value: bool):
    if value:
        import nnctl

        print(f"nnctl {nnctl.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True,
                                          help="Print the version and exit.")] = False,
):
    """Train NumPy multilayer perceptrons from YAML experiment specs."""


def print_json(doc, indent: int | None = None) -> None:
    """One strict JSON document on stdout (NumPy values converted, non-finite numbers as null): every
    --json goes through here."""
    from nnctl.files import jsonable

    print(json.dumps(jsonable(doc), indent=indent))


def show(result: dict, json_out: bool, render, plot: Path | None = None, draw=None) -> None:
    """A command's result: drawn into --plot by `draw` if asked, then one JSON document on stdout
    with --json, else the `render` function's tables."""
    if plot is not None:
        from nnctl.cli.render import wrote

        draw(result, plot)
        wrote(plot)
    if json_out:
        print_json(result)
    else:
        render(result)


def write_output(output: Path, text: str) -> None:
    """Write a command's -o file whole; NnctlError (exit 2) if it cannot.

    `-` is stdout. An existing path that is not a regular file (a FIFO, /dev/stdout, a terminal) is
    written into, never replaced by a regular file; anything else is written atomically (a temp file
    renamed over it, which replaces a symbolic link rather than following it)."""
    import stat

    from nnctl.files import write_atomic

    if str(output) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        mode = os.stat(output).st_mode  # follows links: /dev/stdout -> /proc/self/fd/1
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise NnctlError(f"--output {output}: cannot write ({exc.strerror})") from None
    try:
        if mode is not None and stat.S_ISDIR(mode):
            raise NnctlError(f"--output {output}: is a directory; give a file name")
        if mode is not None and not stat.S_ISREG(mode):  # a pipe or a device: write into it
            try:  # without waiting forever for a reader that never comes
                fd = os.open(output, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                import errno

                if exc.errno == errno.ENXIO:
                    raise NnctlError(f"--output {output}: a FIFO that no process is reading; start the reader "
                                     f"first (e.g. `cat {output} &`)") from None
                raise
            os.set_blocking(fd, True)
            with open(fd, "w", encoding="utf-8") as f:
                f.write(text)
            return
        write_atomic(output, text)
    except OSError as exc:
        raise NnctlError(f"--output {output}: cannot write ({exc.strerror})") from None


def main() -> None:
    """Console-script entry point."""
    # text nnctl prints may come from a run dir or a config (names, messages quoting a value): a
    # character the terminal cannot take (a lone surrogate, or non-ASCII on an ASCII locale) is
    # printed as a backslash escape instead of ending the command with UnicodeEncodeError
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    app()
