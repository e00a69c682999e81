"""Error types. The library raises these; only the CLI (nnctl/cli/app.py) turns them into messages and
exit codes."""

from __future__ import annotations


class NnctlError(Exception):
    """Base class of every error nnctl reports to a user (never with a traceback)."""

    exit_code = 2

    def __init__(self, message: str, run_dir=None):
        super().__init__(message)
        self.run_dir = run_dir  # set when a run directory was written before the failure


class ConfigError(NnctlError, ValueError):
    """The experiment spec (YAML, --set, --name ...) is invalid. A ValueError, as Python code expects."""


class DataError(NnctlError, ValueError):
    """A data file, dataset or in-memory rows cannot be used (CSV problems, unknown dataset, bad split).
    A ValueError, as Python code expects."""


class RunDirError(NnctlError):
    """A run directory or weights file is missing, damaged or inconsistent."""


class TrainingFailed(NnctlError):
    """The work ran but did not succeed (diverged, interrupted, a trial failed)."""

    exit_code = 1


def did_you_mean(word: str, choices) -> str:
    """Return " (did you mean 'x'?)" for the closest of `choices`, or a list of them if none is close."""
    import difflib

    if ":" in str(word):  # YAML flow mappings need a space after the colon: {groups:8} is one key
        key, _, value = str(word).partition(":")
        return f" (YAML needs a space after ':': write {{{key}: {value}}})"
    choices = sorted(str(c) for c in choices)
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    if not choices:
        return ""
    shown = ", ".join(choices[:12]) + (", ..." if len(choices) > 12 else "")
    return f" (expected one of: {shown})"


def printable(text) -> str:
    """`text` with anything that cannot be written as UTF-8 (a lone surrogate such as "\\ud800", from a
    JSON or YAML escape or from undecodable bytes) spelled as a backslash escape, so that printing it,
    drawing it or writing it into a file cannot fail."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")
