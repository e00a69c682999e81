"""Files written whole and read safely: atomic writes, strict JSON, NumPy archives without pickles.

Every file nnctl writes goes to a temporary name in the same folder and is renamed over the target,
so a reader or a crash never sees half a file. NumPy is imported only by the functions that need it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnctl.errors import RunDirError

if TYPE_CHECKING:
    import numpy as np


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file whole: a temp file in the same folder, then rename over `path`.

    The temp file is created with mode 0666, so the process umask at the time of writing decides
    the permissions, as for any file a program creates. An OSError (disk full, permission) names
    `path` and leaves the previous file untouched.
    """
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")  # TEMP_NAME
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
    else:
        raise OSError(17, "could not create a temporary file", str(path))
    try:
        with os.fdopen(fd, "wb") as f:
            _inject_fault(path)
            f.write(raw)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{8}\.tmp")  # write_atomic's temporary files


def remove_temp_files(folder: Path, depth: int = 1) -> None:
    """Delete the temp files a killed writer left in `folder` (and its subfolders, `depth` levels).

    Only for a caller that knows no live process writes there (the run's lock holder). Only regular
    files whose names match TEMP_NAME go: lstat does not follow a symbolic link, and a link (or a
    FIFO) with such a name is not something nnctl made, so it is left alone; subfolders reached by a
    link are not entered. A leftover that cannot be removed (read-only folder) does no harm."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                if depth > 0:
                    remove_temp_files(Path(entry.path), depth - 1)
            elif TEMP_NAME.fullmatch(entry.name) and stat.S_ISREG(os.lstat(entry.path).st_mode):
                os.unlink(entry.path)
        except OSError:
            pass


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


def read_bytes(path: Path, what: str, error: type[Exception]) -> bytes:
    """The bytes of an input file; `error` (ConfigError, DataError, ...) naming the file and the
    problem if it is missing, a directory or unreadable."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a {what}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None


def write_json(path: Path, obj: Any) -> None:
    """Atomic, pretty JSON (NaN and inf written as null)."""
    write_atomic(path, json.dumps(jsonable(obj), indent=2) + "\n")


def jsonable(obj):
    """Plain JSON data: NumPy numbers and arrays converted, non-finite floats as None (null)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    np = sys.modules.get("numpy")  # NumPy values exist only if NumPy was imported
    if np is not None:
        if isinstance(obj, np.floating):
            return jsonable(float(obj))
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.ndarray):
            return jsonable(obj.tolist())
    return obj


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Atomic .npz of plain numeric/string arrays (never object arrays, so no pickles)."""
    import numpy as np

    buf = io.BytesIO()
    for key, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise ValueError(f"refusing to save object array {key!r}")
    np.savez(buf, **arrays)
    write_atomic(path, buf.getvalue())


def read_npz(path: Path, what: str = "file") -> dict[str, np.ndarray]:
    """Load an .npz without pickles; RunDirError naming the file if it is missing or damaged."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path}: no such {what}")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:  # e.g. no read permission
        raise RunDirError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if magic != b"PK\x03\x04":  # every .npz is a zip archive; anything else is foreign
        raise RunDirError(f"{path}: not a readable .npz {what} (not a zip archive)")
    _check_npz_sizes(path, what)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as exc:  # object arrays need pickles, which we refuse
        raise RunDirError(f"{path}: cannot read {what} without pickles ({exc})") from None
    except Exception as exc:  # zipfile.BadZipFile, EOFError, OSError: a damaged or foreign file
        raise RunDirError(f"{path}: not a readable .npz {what} ({type(exc).__name__}: {exc})") from None


NPZ_RATIO_LIMIT = 200  # an array member unpacking to this many times its stored size is a zip bomb


def _check_npz_sizes(path: Path, what: str) -> None:
    """RunDirError before anything is unpacked if a member would unpack to far more than it stores
    (a 4 MB file that would fill 4 GB): nnctl writes its arrays uncompressed or lightly compressed."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if info.file_size > (64 << 20) and info.file_size > NPZ_RATIO_LIMIT * max(info.compress_size, 1):
                    raise RunDirError(f"{path}: member {info.filename[:60]!r} of the {what} would unpack to "
                                      f"{info.file_size >> 20} MB from {info.compress_size >> 10} KB; not an array "
                                      f"nnctl wrote")
    except zipfile.BadZipFile as exc:
        raise RunDirError(f"{path}: not a readable .npz {what} ({exc})") from None


RUN_FILE_LIMIT = 64 << 20  # bytes: the largest text file nnctl reads from a run directory


def read_run_text(path: Path, limit: int = RUN_FILE_LIMIT) -> str:
    """A text file of a run directory, read without following a symbolic link, only if it is a
    regular file, and at most `limit` bytes: a run directory is data, and `summary.json -> /dev/zero`
    or a FIFO must not hang or exhaust memory. FileNotFoundError if absent; ValueError otherwise."""
    import errno

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:  # O_NOFOLLOW: a symbolic link fails with ELOOP
        link = "; a symbolic link is not followed" if exc.errno == errno.ELOOP else ""
        raise ValueError(f"cannot open it: {exc.strerror}{link}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a directory, a FIFO, a device
        os.close(fd)
        raise ValueError("not a regular file")
    with os.fdopen(fd, "rb") as f:
        raw = f.read(limit + 1)
    if len(raw) > limit:
        raise ValueError(f"larger than {limit >> 20} MB")
    return raw.decode("utf-8")


def read_csv_rows(path: Path, strict: bool = False) -> list[dict]:
    """The rows of a CSV nnctl wrote (metrics.csv, diagnostics.csv), numbers parsed, empty cells None.

    A cell that is not a number stays a string, or raises ValueError when `strict`."""
    import io

    text = read_run_text(path)
    return [{k: _number(v, strict) for k, v in r.items() if k is not None}
            for r in csv.DictReader(io.StringIO(text, newline=""))]


def _number(v: str | None, strict: bool):
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except ValueError:
        if strict:
            raise
        return v
    return int(f) if f.is_integer() and not any(c in v.lower() for c in ".en") else f
