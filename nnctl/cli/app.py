"""The `nnctl` Typer app and what its commands share: option aliases, choices, error handling.

The commands live in train.py (train, resume, sweep), runs.py (eval, predict, export, compare, plot,
inspect, report) and tools.py (explain, gradcheck, lr-find, trace, gd, schema, datasets, init); each
parses its options, calls one library function and hands the result to render.py.

Conventions every command keeps (README "Conventions"): exit 0 success, 1 the work ran but failed
(diverged, interrupted, a trial failed), 2 bad usage or bad input; a reader that closes the pipe
early (`| head`) ends the command quietly with exit 0. Messages go to stderr; stdout carries only
results (the run dir path, a table, or one strict JSON document with --json), so scripts can rely
on it. -o/--output names the file a command writes; -q hides progress and notes, -qq findings too.
Heavy modules are imported inside commands: sweeps start nnctl hundreds of times.
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
from typer.core import TyperArgument, TyperCommand, TyperOption

from nnctl.errors import NnctlError


def option_choices(param) -> tuple:
    """The fixed choices of an option (enum members or strings), () if it takes any value. Typer
    0.29 describes a parameter's type in `type_descriptor`; older releases keep click's Choice."""
    desc = getattr(param, "type_descriptor", None)
    if desc is not None:
        return tuple(getattr(desc, "choices", None) or ())
    return tuple(getattr(param.type, "choices", None) or ())


def is_path_option(param) -> bool:
    """Whether an option takes a path (see option_choices for the two Typer generations)."""
    desc = getattr(param, "type_descriptor", None)
    if desc is not None:
        return bool(getattr(desc, "is_path", False))
    return type(param.type).__name__ in ("TyperPath", "Path")


class _Argument(TyperArgument):
    """An argument shown by its metavar alone: `CONFIG`, not typer's `{CONFIG}` and `<path>`."""

    def display_type_rich(self, ctx) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.metavar or self.name.upper()
        dots = "..." if self.nargs != 1 and not name.endswith("...") else ""
        return f"{name}{dots}" if self.required else f"[{name}{dots}]"

    def get_usage_pieces(self, ctx) -> list[str]:  # Typer before 0.29 writes the usage line from here
        return [self._usage_display_name()]


class _Option(TyperOption):
    """An option shown with its metavar (`--runs-dir DIR`), else a plain word for its type, never `<int>`."""

    def display_type_rich(self, ctx) -> str | None:
        if self.metavar is not None:
            return self.metavar
        choices = option_choices(self)
        if choices:
            return "[" + "|".join(str(getattr(c, "value", c)) for c in choices) + "]"
        desc = getattr(self, "type_descriptor", None)  # typer's description of the parameter's type
        if desc is None:  # Typer before 0.29: click's type
            return {"INTEGER": "N", "FLOAT": "NUMBER", "INTEGER RANGE": "N", "FLOAT RANGE": "NUMBER"}.get(
                getattr(self.type, "name", "").upper(), "PATH" if is_path_option(self) else "TEXT")
        return {int: "N", float: "NUMBER", Path: "PATH"}.get(getattr(desc, "annotation", None), "TEXT")

    def make_metavar(self, ctx=None, **_) -> str:  # Typer before 0.29 names an option's value from here
        # (older click releases call it without ctx)
        return self.display_type_rich(ctx) or "TEXT"


class Command(TyperCommand):
    """Every nnctl command: help that names arguments and options in plain words (see _Argument, _Option)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = _Argument
            elif type(param) is TyperOption:
                param.__class__ = _Option


class App(typer.Typer):
    """typer.Typer whose commands are `Command`s."""

    def command(self, *args, cls=None, **kwargs):
        return super().command(*args, cls=cls or Command, **kwargs)


app = App(
    name="nnctl",
    help="Train NumPy multilayer perceptrons from YAML experiment specs.\n\n"
    "Start with:  nnctl train configs/moons.yaml\n\n"
    "Every command explains itself with --help. Shell completion: nnctl --install-completion.",
    no_args_is_help=True,
    # --install-completion / --show-completion (bash, zsh, fish, PowerShell); typer imports its
    # completion module anyway, so this costs nothing at start-up
    add_completion=True,
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
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, and nothing else there "
                                       "(strict JSON: a missing or non-finite number is null).")]
WidthOpt = Annotated[int | None, typer.Option(
    min=0, metavar="N", help="Fit tables to N columns (0: no limit). Default: COLUMNS, else the terminal's width; "
                             "piped output without COLUMNS is not limited.", show_default=False)]
QuietOpt = Annotated[int, typer.Option(
    "--quiet", "-q", count=True, show_default=False,
    help="-q: no progress, notes or summaries on stderr (warnings, errors and findings still shown); "
         "-qq: no findings either.")]


def runs_dir_option(help: str):
    """--runs-dir DIR, default NNCTL_RUNS_DIR, else runs."""
    return Annotated[Path, typer.Option("--runs-dir", metavar="DIR", envvar="NNCTL_RUNS_DIR", show_envvar=True,
                                        help=help)]


def output_option(help: str, metavar: str = "FILE"):
    """-o/--output FILE: the file a command writes, with the command's own help."""
    return Annotated[Path | None, typer.Option("--output", "-o", metavar=metavar, help=help, show_default=False)]


def plot_option(help: str):
    """-o/--output FILE.png: the figure a command that prints text also draws. --plot is the same
    option under its earlier name, still accepted."""
    return Annotated[Path | None, typer.Option("--output", "-o", "--plot", metavar="FILE.png", help=help,
                                               show_default=False)]


class Format(str, enum.Enum):
    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"


class Tracker(str, enum.Enum):
    """train --log: the values of train.log (config.spec.TRACKERS; a test keeps them equal)."""

    none = "none"
    mlflow = "mlflow"


class Decimal(str, enum.Enum):
    point = "."
    comma = ","


QUIET_FINDINGS = 2  # -qq: findings hidden too


def handle_errors(fn):
    """Turn NnctlError into one message on stderr and its exit code; never a traceback. Also sets
    the command's -q level for render.py, and ends quietly (exit 0) when the reader of our output
    closed the pipe (`nnctl compare runs/* | head -1`)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from nnctl.cli import render

        render.QUIET = int(kwargs.get("quiet") or 0)
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
        except BrokenPipeError as exc:
            if not output_closed():  # a pipe of our own (to a subprocess) broke: a bug to see, not `| head`
                raise RuntimeError("a pipe to another process broke (not nnctl's output)") from exc
            closed_pipe()
            raise typer.Exit(0) from None
        finally:
            render.QUIET = 0

    return wrapper


def output_closed() -> bool:
    """Whether the reader of stdout or stderr has gone away: poll() reports an error on the write
    end of a pipe whose read end is closed (Linux, macOS). Where poll() is missing (Windows), a broken
    pipe is taken to be the output's."""
    import select

    if not hasattr(select, "poll"):
        return True
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):  # not a real file (a test's capture)
            continue
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        if any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0)):
            return True
    return False


def closed_pipe() -> None:
    """The reader of stdout (or stderr) went away, as `head` does once it has its lines: that is
    its choice, not a failure. Whatever is still buffered goes to /dev/null, so neither a later
    write nor the interpreter's last flush reports a broken pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):  # not a real file (a test's capture)
            continue
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            os.dup2(devnull, fd)
            continue
        if stream is sys.stdout:  # stdout was the closed one when stderr still works
            os.dup2(devnull, fd)
    os.close(devnull)


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
    --json goes through here. allow_nan=False: a NaN that slipped past `jsonable` is a bug to see,
    never a bare NaN token for the reader's parser to choke on."""
    from nnctl.files import jsonable

    print(json.dumps(jsonable(doc), indent=indent, allow_nan=False))


def show(result: dict, json_out: bool, render, plot: Path | None = None, draw=None) -> None:
    """A command's result: drawn into its -o figure by `draw` if asked, then one JSON document on
    stdout with --json, else the `render` function's tables."""
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
    try:
        app()
    except SystemExit as exc:
        # typer answers a broken pipe outside a command (printing --help into `| head`) with exit 1
        # and stdout wrapped in its PacifyFlushWrapper: that is a closed pipe, exit 0 like the rest
        if exc.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper" and output_closed():
            closed_pipe()
            raise SystemExit(0) from None
        raise
    finally:
        try:  # output still buffered meets a closed pipe here, not in the interpreter's last flush
            sys.stdout.flush()
        except BrokenPipeError:
            closed_pipe()
