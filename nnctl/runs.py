"""Run directories: created with an exclusive mkdir, every file written whole (temp file + rename).

A run dir is `<runs_dir>/<name>-<YYYYmmdd-HHMMSS>-<hex>/`. Two processes never share one: the
mkdir fails if the name exists and we draw a new suffix. Readers (compare, eval) never see half a
file: each file is written to a temporary name in the same folder, then renamed over the target.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.errors import ConfigError, RunDirError

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()
MAX_NAME = 60


def safe_name(name: str) -> str:
    """A run name usable as one path component: no separators, no leading dots, bounded length."""
    cleaned = SAFE_NAME.sub("-", name).strip("-.")[:MAX_NAME].strip("-.")
    return cleaned or "run"


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file whole: a temp file in the same folder, then rename over `path`.

    An OSError (disk full, permission) names `path` and leaves the previous file untouched.
    """
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            _inject_fault(path)
            f.write(raw)
            os.fchmod(f.fileno(), _FILE_MODE)  # mkstemp makes 0600; files should follow the umask
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


_fault_counts: dict[str, int] = {}


def _inject_fault(path: Path) -> None:
    """Test hook: NNCTL_FAULT_ENOSPC=NAME@K makes the K-th write of a file named NAME fail with ENOSPC
    (disk full), so tests can check that nothing is corrupted. Unset in normal use."""
    spec = os.environ.get("NNCTL_FAULT_ENOSPC")
    if not spec:
        return
    import errno

    name, _, k = spec.partition("@")
    if path.name != name:
        return
    _fault_counts[name] = _fault_counts.get(name, 0) + 1
    if _fault_counts[name] >= int(k or 1):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def write_json(path: Path, obj: Any) -> None:
    """Atomic, pretty JSON (NaN and inf written as null)."""
    write_atomic(path, json.dumps(jsonable(obj), indent=2) + "\n")


def jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if np.isfinite(f) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Atomic .npz of plain numeric/string arrays (never object arrays, so no pickles)."""
    buf = io.BytesIO()
    for key, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise ValueError(f"refusing to save object array {key!r}")
    np.savez(buf, **arrays)
    write_atomic(path, buf.getvalue())


def read_npz(path: Path, what: str = "file") -> dict[str, np.ndarray]:
    """Load an .npz without pickles; RunDirError naming the file if it is missing or damaged."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path}: no such {what}")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # every .npz is a zip archive; anything else is foreign
            raise RunDirError(f"{path}: not a readable .npz {what} (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as exc:  # object arrays need pickles, which we refuse
        raise RunDirError(f"{path}: cannot read {what} without pickles ({exc})") from None
    except Exception as exc:  # zipfile.BadZipFile, EOFError, OSError: a damaged or foreign file
        raise RunDirError(f"{path}: not a readable .npz {what} ({type(exc).__name__}: {exc})") from None


def open_run(path: Path | str) -> tuple[RunDir, dict]:
    """An existing run directory and its summary.json; RunDirError if either is missing or damaged."""
    import json

    run = RunDir(Path(path))
    if not run.path.is_dir():
        raise RunDirError(f"{run.path}: no such run directory")
    summary_path = run.file(RunDir.SUMMARY)
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{run.path}: not a run directory (no summary.json)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{summary_path}: damaged ({exc})") from None
    return run, summary


class RunDir:
    """One run's folder and the files in it."""

    CONFIG, METRICS, SUMMARY = "config.yaml", "metrics.csv", "summary.json"
    WEIGHTS, PREPROCESS, SPLIT = "weights.npz", "preprocess.npz", "split.npz"
    DIAGNOSTICS = "diagnostics.csv"

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
            path = runs_dir / f"{base}-{stamp}-{secrets.token_hex(3)}"
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

    def write_text(self, name: str, text: str) -> None:
        write_atomic(self.file(name), text)

    def write_json(self, name: str, obj: Any) -> None:
        write_json(self.file(name), obj)

    def write_npz(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        write_npz(self.file(name), arrays)


class MetricsTable:
    """metrics.csv kept as formatted lines, so rewriting the whole file each epoch costs a copy, not a
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
        return repr(v) if np.isfinite(v) else ("nan" if np.isnan(v) else repr(v))
    return str(v)
