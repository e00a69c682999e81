"""Run directories: created with an exclusive mkdir, every file written whole, locked while training.

A run dir is `<runs_dir>/<name>-<YYYYmmdd-HHMMSS>-<hex>/`. Two processes never share one: the
mkdir fails if the name exists and we draw a new suffix. Readers (compare, eval) never see half a
file: each file is written to a temporary name in the same folder, then renamed over the target.
A training process holds `RunLock` on the run's `.lock`, so a reader can tell a live run from a
killed one. `read_run` reads what there is of a run for compare, never failing on a damaged one;
it needs no NumPy.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnctl.errors import ConfigError, NnctlError, RunDirError, TrainingFailed, printable
from nnctl.files import read_csv_rows, read_run_text, remove_temp_files, write_atomic, write_json, write_npz

if TYPE_CHECKING:
    import numpy as np

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME = 60
FINISHED = ("completed", "early_stopped", "stopped_at_loss")  # the statuses of a run that ended well


def safe_name(name: str) -> str:
    """A run name usable as one path component: no separators, no leading dots, bounded length."""
    cleaned = SAFE_NAME.sub("-", name).strip("-.")[:MAX_NAME].strip("-.")
    return cleaned or "run"


class MetricsTable:
    """A CSV kept as formatted lines, so rewriting the whole file each epoch costs a copy, not a
    re-format of every row (the file is always written whole, never appended)."""

    def __init__(self, columns: list[str]):
        self.columns = columns
        self.lines = [",".join(columns) + "\n"]

    def extend(self, rows: Iterable[dict]) -> MetricsTable:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        for row in rows:
            w.writerow([_cell(row.get(c)) for c in self.columns])
        if out.getvalue():
            self.lines.extend(out.getvalue().splitlines(keepends=True))
        return self

    def __len__(self) -> int:
        return len(self.lines) - 1

    def text(self) -> str:
        return "".join(self.lines)


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "nan" if math.isnan(v) else repr(v)
    return str(v)


# ------------------------------------------------------------------------------------ the run dir
class RunDir:
    """One run's folder and the files in it."""

    CONFIG, METRICS, SUMMARY = "config.yaml", "metrics.csv", "summary.json"
    WEIGHTS, PREPROCESS, SPLIT = "weights.npz", "preprocess.npz", "split.npz"
    DIAGNOSTICS, EVAL, STEPS = "diagnostics.csv", "eval.json", "steps.csv"

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def create(cls, runs_dir: Path, name: str) -> RunDir:
        """Make a new, unique run dir inside `runs_dir` (created if needed)."""
        runs_dir = Path(runs_dir)
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ConfigError(f"--runs-dir {runs_dir}: exists and is not a directory") from None
        except OSError as exc:
            raise ConfigError(f"--runs-dir {runs_dir}: cannot create it ({exc.strerror})") from None
        base = safe_name(name)
        for _ in range(100):
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = runs_dir / f"{base}-{stamp}-{os.urandom(3).hex()}"
            try:
                path.mkdir()  # exclusive: fails if another process took the name
                return cls(path)
            except FileExistsError:
                continue
            except OSError as exc:
                raise ConfigError(f"--runs-dir {runs_dir}: cannot create a run directory ({exc.strerror})") from None
        raise RunDirError(f"{runs_dir}: could not create a unique run directory")

    def file(self, name: str) -> Path:
        return self.path / name

    def write_text(self, name: str, text: str | bytes) -> None:
        write_atomic(self.file(name), text)

    def write_json(self, name: str, obj: Any) -> None:
        write_json(self.file(name), obj)

    def write_npz(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        write_npz(self.file(name), arrays)


_INT, _NUM, _STR = "an integer", "a number", "a string"
SUMMARY_KINDS = {  # what each key of summary.json holds when nnctl wrote it (None is allowed too)
    **dict.fromkeys(("status", "name", "run_dir", "loss", "started_at", "finished_at", "message", "host",
                     "resumed_at"), _STR),
    **dict.fromkeys(("n_features", "n_inputs", "n_outputs", "n_params", "seed", "epochs_planned", "epochs_run",
                     "threads", "pid", "weights_epoch"), _INT),
    **dict.fromkeys(("wall_time_s", "train_time_s"), _NUM),
    **dict.fromkeys(("best", "final", "n_rows"), "an object of numbers"),
    **dict.fromkeys(("versions", "data", "resumed_from", "tracking", "best_by"), "an object"),
    **dict.fromkeys(("classes", "command", "blas"), "a list"),
    "findings": "a list of objects", "extended": "a list of objects", "task": "classification or regression",
}


def _holds(value, kind: str) -> bool:
    number = (int, float)
    if value is None:
        return True
    if kind == _STR:
        return isinstance(value, str)
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _NUM:
        return isinstance(value, number) and not isinstance(value, bool)
    if kind == "an object of numbers":
        return isinstance(value, dict) and all(v is None or (isinstance(v, number) and not isinstance(v, bool))
                                               for v in value.values())
    if kind == "an object":
        return isinstance(value, dict)
    if kind == "a list":
        return isinstance(value, list)
    if kind == "a list of objects":
        return isinstance(value, list) and all(isinstance(f, dict) for f in value)
    return value in ("classification", "regression")


def summary_problems(summary: dict) -> list[str]:
    """What is wrong with a parsed summary.json: keys holding the wrong kind of value (a run directory
    is data; a hand-edited or foreign summary must not crash the commands that read it)."""
    problems = [f"{key!r} is not {kind}" for key, kind in SUMMARY_KINDS.items()
                if key in summary and not _holds(summary[key], kind)]
    if "status" not in summary:
        problems.append("no 'status'")
    return problems


def read_summary(run: RunDir) -> dict | None:
    """A run's summary.json, or None if it has none (killed during set-up); RunDirError if damaged."""
    try:
        summary = json.loads(read_run_text(run.file(RunDir.SUMMARY)))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RunDirError(f"{run.file(RunDir.SUMMARY)}: damaged ({str(exc)[:200]})") from None
    if not isinstance(summary, dict):
        raise RunDirError(f"{run.file(RunDir.SUMMARY)}: damaged (not a JSON object)")
    problems = summary_problems(summary)
    if problems:
        raise RunDirError(f"{run.file(RunDir.SUMMARY)}: damaged ({'; '.join(problems)[:200]})")
    return summary


def read_split(run: RunDir) -> dict[str, np.ndarray]:
    """split.npz, checked: `train`, `val`, `test` 1-d arrays of non-negative row numbers, and the data's
    `fingerprint` as text (or absent). RunDirError naming the key otherwise."""
    from nnctl.files import read_npz

    path = run.file(RunDir.SPLIT)
    split = read_npz(path, "split file")
    for key in ("train", "val", "test"):
        v = split.get(key)
        if v is None:
            raise RunDirError(f"{path}: damaged (no {key!r} row numbers)")
        if v.ndim != 1 or v.dtype.kind not in "iu" or (len(v) and int(v.min()) < 0):
            raise RunDirError(f"{path}: damaged ({key!r} is a {v.ndim}-d array of {v.dtype}; expected row numbers)")
    fp = split.get("fingerprint")
    if fp is not None and (fp.ndim != 0 or fp.dtype.kind != "U"):
        raise RunDirError(f"{path}: damaged ('fingerprint' is not text)")
    return split


def open_run(path: Path | str) -> tuple[RunDir, dict]:
    """An existing run directory and its summary.json; RunDirError if either is missing or damaged."""
    run = RunDir(Path(path))
    if not run.path.is_dir():
        raise RunDirError(f"{run.path}: no such run directory")
    summary = read_summary(run)
    if summary is None:
        raise RunDirError(f"{run.path}: not a run directory (no summary.json)")
    return run, summary


# ------------------------------------------------------------------------------------ the lock
class RunLock:
    """An exclusive flock on RUN_DIR/.lock, held while a process trains in the run dir.

    The kernel drops the lock when the holder dies (even by SIGKILL), so a stale lock cannot
    exist: a run marked "running" whose lock is free was killed. Only the holder writes in the run
    dir, so taking the lock is when the temp files of a killed writer are removed.
    """

    NAME = ".lock"

    def __init__(self, fd: int, pid: int, host: str):
        self.fd, self.pid, self.host = fd, pid, host

    @classmethod
    def acquire(cls, run: RunDir, wait: float = 0.5, clean_depth: int = 1) -> RunLock:
        """Take the lock, waiting up to `wait` seconds; TrainingFailed (exit 1) naming the holder if busy.
        Then remove stale temp files in the folder (and `clean_depth` levels below: a run's checkpoint/;
        0 for a sweep folder, whose subfolders are run dirs with locks of their own)."""
        import errno
        import fcntl
        import socket
        import stat

        path = run.file(cls.NAME)
        try:  # never through a symbolic link, never a FIFO or device (a shared run dir is data, not trusted)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise RunDirError(f"{run.path}: the run directory is read-only (cannot open {cls.NAME}: "
                                  f"{exc.strerror}); nnctl writes there while it works on the run: make it "
                                  f"writable, or copy the run directory elsewhere") from None
            raise RunDirError(f"{path}: cannot open the run's lock ({exc.strerror}); if it is a symbolic link or "
                              f"not a regular file, remove it") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise RunDirError(f"{path}: the run's lock is not a regular file; remove it")
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    holder = _read_holder(path)
                    os.close(fd)
                    raise TrainingFailed(f"{run.path}: in use by another nnctl process{holder}; wait for it "
                                         f"to finish or stop it") from None
                time.sleep(0.05)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        remove_temp_files(run.path, clean_depth)
        return cls(fd, me["pid"], me["host"])

    @classmethod
    def try_acquire(cls, run: RunDir, wait: float = 0.2) -> RunLock | None:
        """The lock for a short write (eval.json), or None if a trainer holds it or the folder is
        read-only: then the write goes ahead without it (and without removing temp files)."""
        try:
            return cls.acquire(run, wait)
        except NnctlError:
            return None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def lock_holder(path: Path) -> dict | None:
    """What the holder of a lock wrote into it: {"pid", "host", "since"}; None if unreadable."""
    try:
        info = json.loads(read_run_text(path, limit=4096))
        return info if isinstance(info, dict) and isinstance(info.get("pid"), int) else None
    except (OSError, ValueError, RecursionError):
        return None


def _read_holder(path: Path) -> str:
    info = lock_holder(path)
    return f" (pid {info['pid']} on {info.get('host')}, since {info.get('since')})" if info else ""


def lock_is_held(run_dir: Path) -> bool:
    """Is some live process training in this run dir? (Probes the flock without keeping it.)"""
    import fcntl
    import stat

    path = Path(run_dir) / RunLock.NAME
    try:  # never a FIFO (opening one would wait for a writer) nor through a symbolic link
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------ reading runs
@dataclass
class RunInfo:
    """What there is of one run directory, for compare, plot and sweeps."""

    path: Path
    name: str
    status: str
    params: dict[str, object] = field(default_factory=dict)  # flattened resolved config
    summary: dict = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)  # metrics.csv
    eval: dict | None = None
    problem: str = ""  # why a run is damaged

    @property
    def task(self) -> str:
        return self.summary.get("task") or ("regression" if any("val_r2" in r for r in self.rows) else
                                            "classification")

    @property
    def metric(self) -> str:
        from nnctl.metrics import task_metric

        return task_metric(self.task)


def is_run_dir(path: Path) -> bool:
    """A run dir has a summary.json or a config.yaml."""
    return path.is_dir() and ((path / RunDir.SUMMARY).exists() or (path / RunDir.CONFIG).exists())


def collect_runs(paths: list[Path]) -> tuple[list[RunInfo], list[str]]:
    """RunInfos for the given paths (run dirs, or folders holding run dirs), and notes on skipped ones."""
    runs, notes, seen = [], [], set()
    for p in paths:
        p = Path(p)
        if not p.exists():
            notes.append(f"{p}: no such file or directory; skipped")
            continue
        if is_run_dir(p):
            candidates = [p]
        elif p.is_dir():
            candidates = sorted(c for c in p.iterdir() if c.is_dir() and not c.name.startswith("."))
            runs_here = [c for c in candidates if is_run_dir(c)]
            if not runs_here:
                notes.append(f"{p}: not a run directory and holds none; skipped")
            for c in candidates:
                if not is_run_dir(c):
                    notes.append(f"{c}: not a run directory; skipped")
            candidates = runs_here
        else:
            notes.append(f"{p}: not a run directory; skipped")
            continue
        for c in candidates:
            key = c.resolve()
            if key not in seen:
                seen.add(key)
                runs.append(read_run(c))
    return runs, notes


def read_run(path: Path, again: bool = True) -> RunInfo:
    """Read what there is of a run; anything unreadable makes it 'damaged' with the reason.

    A run that says "running" (or has no summary.json yet) is live if its lock is held. If the lock
    is free, the trainer may have finished (or written its first summary.json) since we read it:
    it writes its last files before it releases the lock, so one more read (`again`) settles it."""
    from nnctl.config.yamlio import load_yaml

    info = RunInfo(path=path, name=path.name, status="damaged")
    problems = []
    try:
        info.summary = json.loads(read_run_text(path / RunDir.SUMMARY))
        if not isinstance(info.summary, dict):
            raise ValueError("not a JSON object")
        bad = summary_problems(info.summary)
        if bad:  # keep what is usable, drop the keys of the wrong kind
            info.summary = {k: v for k, v in info.summary.items()
                            if k not in SUMMARY_KINDS or _holds(v, SUMMARY_KINDS[k])}
            raise ValueError("; ".join(bad))
        info.status = str(info.summary.get("status", "unknown"))
        info.name = str(info.summary.get("name", path.name))
    except FileNotFoundError:
        problems.append("no summary.json")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        if not isinstance(info.summary, dict):
            info.summary = {}
        problems.append(f"summary.json unreadable ({str(exc)[:200]})")
    try:  # nnctl's own YAML loader: bounded (no alias bombs), no tags
        config, _ = load_yaml(read_run_text(path / RunDir.CONFIG), str(path / RunDir.CONFIG), fast=True)
        if isinstance(config, dict):
            info.params = flatten(config)
            info.name = info.summary.get("name") or str(config.get("name") or path.name)
    except FileNotFoundError:
        problems.append("no config.yaml")
    except (ConfigError, ValueError, UnicodeDecodeError) as exc:
        problems.append(f"config.yaml unreadable ({str(exc)[:200]})")
    try:
        info.rows = read_csv_rows(path / RunDir.METRICS)
    except FileNotFoundError:
        pass
    except (csv.Error, ValueError, UnicodeDecodeError) as exc:
        problems.append(f"metrics.csv unreadable ({str(exc)[:200]})")
    try:
        info.eval = json.loads(read_run_text(path / RunDir.EVAL))
        if not isinstance(info.eval, dict):
            info.eval = None
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        pass
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        problems.append(f"eval.json unreadable ({str(exc)[:100]})")
    no_summary = "no summary.json" in problems
    unfinished = info.status == "running" or no_summary
    if unfinished and lock_is_held(path):
        if no_summary:  # being set up: summary.json comes right after config.yaml
            info.status = "running"
            problems.remove("no summary.json")
    elif unfinished and again:
        return read_run(path, again=False)
    elif info.status == "running":  # the process that wrote "running" is gone
        info.status = "interrupted"
        problems.append("stale 'running' status: the training process ended without recording how (killed, or "
                        "it could not write); nnctl resume continues it")
    info.name = printable(info.name)  # a name that cannot be printed (a lone surrogate) is shown escaped
    if problems:
        info.problem = "; ".join(problems)
        if info.status not in ("damaged",) and any("summary" in p for p in problems):
            info.status = "damaged"
    return info


def flatten(d: dict, prefix: str = "") -> dict[str, object]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists stay values (shown compactly)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
