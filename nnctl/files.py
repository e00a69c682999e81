"""Files written whole and read safely: atomic writes, strict JSON, NumPy archives without pickles.

Every file nnctl writes goes to a temporary name in the same folder and is renamed over the target,
so a reader or a crash never sees half a file. NumPy is imported only by the functions that need it.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import stat
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnctl.errors import RunDirError

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO

    import numpy as np


def write_atomic(path: Path, data: bytes | str | Callable[[BinaryIO], None]) -> None:
    """Write a file whole: a temp file in the same folder, then rename over `path`. `data` may be
    a function that writes to the open temp file (large contents are not held in memory first).

    The temp file is created with mode 0666, so the process umask at the time of writing decides
    the permissions, as for any file a program creates. An OSError (disk full, permission) names
    `path` and leaves the previous file untouched.
    """
    import errno
    import stat

    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    write = raw if callable(raw) else None
    try:  # a FIFO, device or folder in its place is not ours to replace (a link is replaced, never followed)
        mode = os.lstat(path).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            raise OSError(errno.EEXIST, "exists and is not a regular file", str(path))
    except FileNotFoundError:
        pass
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
            write(f) if write is not None else f.write(raw)
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


INPUT_LIMIT = 16 << 20  # bytes: the largest config or other small input file nnctl reads whole


def read_bytes(path: Path, what: str, error: type[Exception], limit: int = INPUT_LIMIT) -> bytes:
    """The bytes of an input file the user named (a config): `error` (ConfigError, ...) naming the
    file and the problem if it is missing, a directory, a FIFO or device (which would hang or never
    end), unreadable or larger than `limit`. A symbolic link the user gave is followed."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise error(f"{path}: is a directory, not a {what}")
        raise error(f"{path}: not a regular file (a pipe or a device?); give a {what} on disk")
    with os.fdopen(fd, "rb") as f:
        try:
            raw = f.read(limit + 1)
        except OSError as exc:
            raise error(f"{path}: cannot read ({exc.strerror})") from None
    if len(raw) > limit:
        raise error(f"{path}: larger than {limit >> 20} MB; not a {what}")
    return raw


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

    for key, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise ValueError(f"refusing to save object array {key!r}")
    write_atomic(path, lambda f: np.savez(f, **arrays))  # straight to the file: no copy of it in memory


def read_npz(path: Path, what: str = "file", follow: bool = False) -> dict[str, np.ndarray]:
    """Load an .npz of a run directory: no pickles, no symbolic links (unless `follow`: a path the user
    named) or special files, no member that lies about its size. RunDirError naming the file if it is
    missing or damaged."""
    import numpy as np

    path = Path(path)
    try:
        f = open_run_file(path, follow)
    except FileNotFoundError:
        raise RunDirError(f"{path}: no such {what}") from None
    except ValueError as exc:
        raise RunDirError(f"{path}: cannot read the {what}: {exc}") from None
    with f:
        if f.read(4) != b"PK\x03\x04":  # every .npz is a zip archive; anything else is foreign
            raise RunDirError(f"{path}: not a readable .npz {what} (not a zip archive)")
        f.seek(0)
        _check_npz_members(f, path, what)
        f.seek(0)
        try:
            with np.load(f, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except ValueError as exc:  # object arrays need pickles, which we refuse
            raise RunDirError(f"{path}: cannot read {what} without pickles ({str(exc)[:200]})") from None
        except Exception as exc:  # zipfile.BadZipFile, EOFError, OSError: a damaged or foreign file
            raise RunDirError(f"{path}: not a readable .npz {what} ({type(exc).__name__}: {str(exc)[:200]})") from None


NPZ_RATIO_LIMIT = 200  # an array member unpacking to this many times its stored size is a zip bomb


def _check_npz_members(f, path: Path, what: str) -> None:
    """RunDirError before any array is unpacked if a member would unpack to far more than it stores
    (a 4 MB file that would fill 4 GB: nnctl writes its arrays uncompressed), if an array's header
    declares more (or less) data than the member holds (a 16-byte member claiming 8 TB would be
    allocated first), or if it holds Python objects (a pickle)."""
    import zipfile

    import numpy as np

    def damaged(name: str, why: str) -> RunDirError:
        return RunDirError(f"{path}: member {name[:60]!r} of the {what} {why}; not an array nnctl wrote")

    try:
        with zipfile.ZipFile(f) as z:
            for info in z.infolist():
                if info.file_size > (64 << 20) and info.file_size > NPZ_RATIO_LIMIT * max(info.compress_size, 1):
                    raise damaged(info.filename, f"would unpack to {info.file_size >> 20} MB from "
                                                 f"{info.compress_size >> 10} KB")
                if not info.filename.endswith(".npy"):
                    continue
                with z.open(info) as m:
                    try:
                        version = np.lib.format.read_magic(m)
                        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                       else np.lib.format.read_array_header_2_0)
                        shape, _, dtype = read_header(m)
                    except (ValueError, TypeError, SyntaxError, EOFError) as exc:
                        raise damaged(info.filename, f"has no valid array header ({str(exc)[:80]})") from None
                    if dtype.hasobject:
                        raise damaged(info.filename, "holds Python objects, which cannot be read without pickles "
                                                     "(nnctl never loads pickles)")
                    declared = dtype.itemsize
                    for n in shape:
                        declared *= n
                    held = info.file_size - m.tell()
                    if declared != held:
                        raise damaged(info.filename, f"declares {declared:,} bytes of data but holds {held:,}")
    except zipfile.BadZipFile as exc:
        raise RunDirError(f"{path}: not a readable .npz {what} ({exc})") from None
    except (OSError, EOFError, ValueError, NotImplementedError) as exc:  # NotImplementedError: zipfile on a
        # damaged member header (an unsupported "zip file version" or compression method)
        raise RunDirError(f"{path}: not a readable .npz {what} ({type(exc).__name__}: {str(exc)[:200]})") from None


RUN_FILE_LIMIT = 64 << 20  # bytes: the largest text file nnctl reads from a run directory


def open_run_file(path: Path, follow: bool = False):
    """A file of a run directory opened for binary reading, without following a symbolic link (unless
    `follow`) and only if it is a regular file: a run directory is data, and `summary.json -> /dev/zero`
    or a FIFO must not hang or exhaust memory. FileNotFoundError if absent; ValueError saying why otherwise."""
    import errno
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | (0 if follow else getattr(os, "O_NOFOLLOW", 0)))
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError("a symbolic link; links in a run directory are not followed") from None
        raise ValueError(f"cannot open ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a directory, a FIFO, a device
        os.close(fd)
        raise ValueError("not a regular file")
    return os.fdopen(fd, "rb")


def read_run_text(path: Path, limit: int = RUN_FILE_LIMIT) -> str:
    """A text file of a run directory (see `open_run_file`), at most `limit` bytes, as UTF-8.
    FileNotFoundError if absent; ValueError otherwise (UnicodeDecodeError is one)."""
    with open_run_file(path) as f:
        try:
            raw = f.read(limit + 1)
        except OSError as exc:
            raise ValueError(f"cannot read ({exc.strerror})") from None
    if len(raw) > limit:
        raise ValueError(f"larger than {limit >> 20} MB")
    return raw.decode("utf-8")


def read_csv_rows(path: Path, strict: bool = False) -> list[dict]:
    """The rows of a CSV nnctl wrote (metrics.csv, diagnostics.csv), numbers parsed, empty cells None.

    A cell that is not a number stays a string, or raises ValueError when `strict`; a file that is
    not CSV at all raises ValueError too."""
    import io

    text = read_run_text(path)
    try:
        return [{k: _number(v, strict) for k, v in r.items() if k is not None}
                for r in csv.DictReader(io.StringIO(text, newline=""))]
    except csv.Error as exc:  # a field over csv's size limit, a NUL byte: not a CSV nnctl wrote
        raise ValueError(f"not a readable CSV ({exc})") from None


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


# ------------------------------------------------------------------------------------ local copies
# A Dask worker trains with the client's config, whose data.source and model.init_from name files on
# the client; the worker reads them from copies it received (sweep_dask.py). The run it writes names
# the client's paths, as if trained there, so its config digest, split and config.yaml are the same.
_LOCAL_COPIES: ContextVar[dict[str, str] | None] = ContextVar("nnctl_local_copies", default=None)


def local_path(path: Path | str) -> Path:
    """Where to read the file `path` from: its local copy while `local_copies` maps it, else itself."""
    return Path((_LOCAL_COPIES.get() or {}).get(str(path), path))


@contextmanager
def local_copies(copies: dict[str, Path]):
    """Within this context (this thread), read each file the keys name (absolute paths) from its copy."""
    token = _LOCAL_COPIES.set({str(k): str(v) for k, v in copies.items()})
    try:
        yield
    finally:
        _LOCAL_COPIES.reset(token)
