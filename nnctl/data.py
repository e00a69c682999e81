"""Data: built-in datasets and CSV files, the train/val/test split, preprocessing fitted on train.

`load_dataset` returns a `Dataset` with float64 features X (n, d), targets y (class indices for
classification, values (n,) or (n, k) for regression), and the encoding needed to turn new CSV
rows into the same features (`columns`). Errors name the file, line and column.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.errors import ConfigError, DataError, did_you_mean

MISSING = {"", "na", "n/a", "nan", "null", "none", "?", "-"}
MAX_AUTO_CLASSES = 20  # integer targets with at most this many values are classes under task: auto


@dataclass
class Dataset:
    """Features, targets and everything needed to describe and re-encode them."""

    X: np.ndarray  # (n, d) float64, after one-hot encoding
    y: np.ndarray  # (n,) int class indices, or (n,) / (n, k) float targets
    task: str  # classification | regression
    feature_names: list[str]
    class_names: list[str] | None  # classification: name of class k (output unit k)
    source: str  # what the config's data.source says
    fingerprint: str  # sha256 of the file, or of the generated arrays
    columns: list[dict] = field(default_factory=list)  # CSV input columns: name, kind, categories
    target_name: str | None = None
    n_features: int = 0  # X's width, kept when training frees X

    @property
    def n_classes(self) -> int:
        return len(self.class_names) if self.class_names is not None else 0

    @property
    def n_targets(self) -> int:
        return 1 if self.y.ndim == 1 else self.y.shape[1]


# ------------------------------------------------------------------------------------ loading
def load_dataset(data_spec: dict, base_dir: Path, dtype=np.float64) -> Dataset:
    """Load the dataset a validated `data:` section describes (paths relative to `base_dir`)."""
    source = data_spec["source"]
    if source.startswith("sklearn:"):
        ds = load_builtin(source[len("sklearn:"):], data_spec.get("options") or {})
    else:
        ds = load_csv(resolve_path(source, base_dir), data_spec.get("target"), data_spec.get("features"),
                      data_spec.get("task", "auto"), dtype)
        ds.source = source
    return finish_task(ds, data_spec.get("task", "auto"))


def resolve_path(source: str, base_dir: Path) -> Path:
    """A CSV path relative to the config file's folder (absolute paths unchanged)."""
    p = Path(source).expanduser()
    return p if p.is_absolute() else (base_dir / p)


def load_builtin(name: str, options: dict) -> Dataset:
    """Make a built-in dataset with validated options."""
    from nnctl.datasets import BUILTINS

    entry = BUILTINS[name]
    opts = {**entry.options, **options}
    cached = _cache_read(name, opts) if entry.uses_sklearn else None
    if cached is not None:
        X, y, feature_names, class_names = cached
    else:
        try:
            X, y, feature_names, class_names = entry.make(**opts)
        except (ValueError, TypeError) as exc:  # scikit-learn's InvalidParameterError is both
            raise ConfigError(f"data.options: sklearn:{name} rejected the options: {exc}") from None
        if entry.uses_sklearn:
            _cache_write(name, opts, X, y, feature_names, class_names)
    X = np.asarray(X, dtype=np.float64)
    if entry.task == "classification":
        labels, y = np.unique(y, return_inverse=True)
        if class_names is None:
            class_names = [str(v) for v in labels]
        else:
            class_names = [class_names[int(v)] for v in labels]
    else:
        y = np.asarray(y, dtype=np.float64)
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(X).tobytes())
    h.update(np.ascontiguousarray(y).tobytes())
    columns = [{"name": n, "kind": "numeric"} for n in feature_names]
    return Dataset(X, y, entry.task, list(feature_names), class_names, f"sklearn:{name}",
                   h.hexdigest(), columns, "target")


# scikit-learn takes about a second to import; sweeps start hundreds of processes that all want
# the same toy data. So its datasets are cached on disk, keyed by generator, options and the
# scikit-learn version; nnctl's own generators (xor, spiral, sine) are cheap and never cached.
def cache_dir() -> Path:
    """NNCTL_CACHE_DIR, else $XDG_CACHE_HOME/nnctl, else ~/.cache/nnctl."""
    import os

    if os.environ.get("NNCTL_CACHE_DIR"):
        return Path(os.environ["NNCTL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nnctl"


def _cache_path(name: str, opts: dict) -> Path | None:
    import json
    import os
    from importlib import metadata

    if os.environ.get("NNCTL_NO_CACHE"):
        return None
    try:
        version = metadata.version("scikit-learn")
    except metadata.PackageNotFoundError:
        return None
    key = json.dumps([name, sorted(opts.items()), version], default=str)
    return cache_dir() / "datasets" / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"


def _cache_read(name: str, opts: dict):
    import json

    path = _cache_path(name, opts)
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            classes = json.loads(str(z["class_names"]))
            return z["X"], z["y"], [str(f) for f in z["feature_names"]], classes
    except Exception:  # a damaged cache entry is regenerated, never trusted
        return None


def _cache_write(name, opts, X, y, feature_names, class_names) -> None:
    import json

    from nnctl.runs import write_npz

    path = _cache_path(name, opts)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_npz(path, {"X": np.asarray(X), "y": np.asarray(y), "feature_names": np.array(feature_names, dtype=str),
                         "class_names": np.array(json.dumps(class_names))})
    except (OSError, ValueError):
        pass  # a read-only home or full disk only costs the next run a second


def file_fingerprint(path: Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING


def _to_float(cell: str) -> float | None:
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def read_csv_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file; DataError for unreadable files, bad headers, ragged rows."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a CSV file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise DataError(f"{path}: the file is empty; expected a header row naming the columns")
        header = [h.strip() for h in header]
        for i, h in enumerate(header):
            if not h:
                raise DataError(f"{path}, line 1: column {i + 1} has an empty name in the header")
        seen: dict[str, int] = {}
        for i, h in enumerate(header):
            if h in seen:
                raise DataError(f"{path}, line 1: duplicate column name {h!r} (columns {seen[h] + 1} and {i + 1})")
            seen[h] = i
        rows = []
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if len(row) != len(header):
                raise DataError(
                    f"{path}, line {reader.line_num}: expected {len(header)} column{'s' * (len(header) != 1)} "
                    f"(as in the header), "
                    f"found {len(row)}"
                )
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise DataError(f"{path}, line {reader.line_num}: {exc}") from None
    return header, rows


def _column_index(path, header, key, what) -> int:
    if isinstance(key, bool):
        raise ConfigError(f"data.{what}: expected a column name or index; got {key!r}")
    if isinstance(key, int):
        i = key if key >= 0 else len(header) + key
        if not 0 <= i < len(header):
            raise DataError(f"{path}: data.{what} index {key} is out of range; the file has {len(header)} columns")
        return i
    if key not in header:
        raise DataError(f"{path}: no column {key!r} for data.{what}{did_you_mean(key, header)}")
    return header.index(key)


def load_csv(path: Path, target: Any, features: Any, task: str, dtype=np.float64) -> Dataset:
    """Read a CSV: header row, numeric or string columns, one target column.

    `dtype` is what an all-numeric file is parsed to: float32 for float32 training halves the
    memory of a large file (the model sees float32 values either way)."""
    fast = _read_numeric_csv(path, dtype)
    if fast is not None:  # all numbers, nothing missing: parsed in whole arrays, no per-cell objects
        header, M, fingerprint = fast
        rows = []
    else:
        header, rows = read_csv_table(path)
        M = fingerprint = None
    t = _column_index(path, header, -1 if target is None else target, "target")
    if features is None:
        f_idx = [i for i in range(len(header)) if i != t]
    else:
        f_idx = [_column_index(path, header, k, "features") for k in features]
        if t in f_idx:
            raise ConfigError(f"data.features: includes the target column {header[t]!r}")
        if len(set(f_idx)) != len(f_idx):
            raise ConfigError("data.features: lists a column twice")
    if not f_idx:
        raise DataError(f"{path}: no feature columns (only the target {header[t]!r})")
    if M is not None:
        return _numeric_dataset(path, header, M, t, f_idx, task, fingerprint or file_fingerprint(path))
    if not rows:
        raise DataError(f"{path}: no data rows after the header")

    columns, blocks, names = [], [], []
    for i in f_idx:
        kind, values, cats = _parse_column(path, header[i], [(ln, r[i]) for ln, r in rows])
        if kind == "numeric":
            blocks.append(np.asarray(values, dtype=np.float64)[:, None])
            names.append(header[i])
            columns.append({"name": header[i], "kind": "numeric"})
        else:
            codes = np.searchsorted(np.asarray(cats), np.asarray(values))
            blocks.append(np.eye(len(cats))[codes])
            names.extend(f"{header[i]}={c}" for c in cats)
            columns.append({"name": header[i], "kind": "categorical", "categories": cats})
    X = np.hstack(blocks)

    y_name = header[t]
    kind, values, cats = _parse_column(path, y_name, [(ln, r[t]) for ln, r in rows], target=True)
    ds = Dataset(X, np.empty(0), task, names, None, str(path), file_fingerprint(path), columns, y_name)
    if kind == "categorical":
        if task == "regression":
            raise DataError(f"{path}: target column {y_name!r} holds text, but data.task is regression")
        ds.y = np.searchsorted(np.asarray(cats), np.asarray(values)).astype(np.int64)
        ds.class_names = cats
        ds.task = "classification"
    else:
        ds.y = np.asarray(values, dtype=np.float64)
        ds.task = task
    if len(np.unique(ds.y)) < 2:
        only = ds.class_names[0] if ds.class_names else _fmt_number(ds.y[0])
        raise DataError(f"{path}: target column {y_name!r} has the same value ({only}) in every row: nothing to learn")
    return ds


def _read_numeric_csv(path: Path, dtype=np.float64) -> tuple[list[str], np.ndarray, str | None] | None:
    """(header, matrix, sha256 of the file or None) if every data cell is a finite number; None
    sends the file to the careful reader, which names the line and column of whatever is wrong."""
    from nnctl.fastcsv import read_numeric

    try:
        M, fingerprint = None, None
        with open(path, "rb") as f:
            first = f.readline()
            if b"\r" not in first.rstrip(b"\r\n"):  # \n or \r\n line ends (old Mac \r-only: loadtxt below)
                header = _numeric_header(first.decode("utf-8-sig"))
                if header is None:
                    return None
                hasher = hashlib.sha256(first)  # the reader hashes the rest while its threads parse
                try:  # plain decimal numbers: vectorized, two threads, 4x loadtxt
                    M = read_numeric(f, len(header), dtype, hasher=hasher)
                except (IndexError, MemoryError):  # not expected (the fuzz tests look for it): loadtxt decides
                    M = None
                fingerprint = hasher.hexdigest() if M is not None else None
        if M is None:  # anything else (nan, spaces, quotes, 16+ digits...): NumPy's C parser
            with open(path, encoding="utf-8-sig", newline="") as f:
                header = _numeric_header(f.readline())
                if header is None:
                    return None
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "input contained no data": the careful reader says it better
                    M = np.loadtxt(f, delimiter=",", dtype=dtype, ndmin=2, comments=None)
    except (OSError, ValueError, UnicodeDecodeError, csv.Error):
        return None
    if M.shape[0] == 0 or M.shape[1] != len(header) or not np.isfinite(M).all():
        return None
    return header, M, fingerprint


def _numeric_header(line: str) -> list[str] | None:
    """The stripped column names of a header line, or None if one is empty or repeated."""
    header = next(csv.reader([line]), None)
    if not header or any(not h.strip() for h in header) or len({h.strip() for h in header}) != len(header):
        return None
    return [h.strip() for h in header]


def _numeric_dataset(path, header, M, t, f_idx, task, fingerprint: str) -> Dataset:
    y = M[:, t].astype(np.float64)
    contiguous = f_idx == list(range(f_idx[0], f_idx[-1] + 1))
    X = M[:, f_idx[0]:f_idx[-1] + 1] if contiguous else M[:, f_idx]  # a view when it can be: no copy
    names = [header[i] for i in f_idx]
    columns = [{"name": n, "kind": "numeric"} for n in names]
    ds = Dataset(X, y, task, names, None, str(path), fingerprint, columns, header[t])
    if len(np.unique(y)) < 2:
        raise DataError(f"{path}: target column {header[t]!r} has the same value ({_fmt_number(y[0])}) in every "
                        f"row: nothing to learn")
    return ds


def _parse_column(path, name, cells, target=False):
    """Classify a column as numeric or categorical; error on missing values and stray junk."""
    numbers: list[float | None] = []
    for line, cell in cells:
        if _is_missing(cell):
            raise DataError(f"{path}, line {line}, column {name!r}: missing value ({cell.strip() or 'empty'})"
                            + ("; every row needs a target" if target else "; fill or drop the row"))
        numbers.append(_to_float(cell))
    n_numeric = sum(v is not None for v in numbers)
    if n_numeric == len(numbers):
        return "numeric", numbers, None
    if n_numeric * 2 > len(numbers):  # mostly numbers: the text cells are junk, not categories
        line, cell = next((ln, c) for (ln, c), v in zip(cells, numbers) if v is None)
        raise DataError(f"{path}, line {line}, column {name!r}: expected a number, found {cell.strip()!r}")
    values = [c.strip() for _, c in cells]
    return "categorical", values, sorted(set(values))


def _fmt_number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def finish_task(ds: Dataset, task: str) -> Dataset:
    """Resolve `task: auto` and turn numeric class labels into indices with class names."""
    if ds.task == "auto":
        y = ds.y
        integral = y.ndim == 1 and np.all(np.equal(np.mod(y, 1), 0))
        ds.task = "classification" if integral and len(np.unique(y)) <= MAX_AUTO_CLASSES else "regression"
    if task != "auto" and task != ds.task:
        if task == "classification" and ds.y.ndim == 1 and np.all(np.mod(ds.y, 1) == 0):
            ds.task = "classification"  # integer-valued targets read as class labels
        else:
            raise ConfigError(f"data.task is {task}, but {ds.source} is a {ds.task} dataset")
    if ds.task == "classification" and ds.class_names is None:
        labels, ds.y = np.unique(ds.y, return_inverse=True)
        ds.class_names = [_fmt_number(v) for v in labels]
    if ds.task == "classification":
        ds.y = ds.y.astype(np.int64)
    return ds


# ------------------------------------------------------------------------------------ splitting
def split_indices(n: int, y: np.ndarray | None, val: float, test: float, stratify: bool,
                  rng: np.random.Generator, source: str = "data") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/val/test row indices (each sorted). Sizes: ceil(fraction * n) for val and test.

    Stratified (y given): each class contributes its share to val and test (largest remainder),
    keeping at least one row of every class in train.
    """
    n_test, n_val = math.ceil(test * n), math.ceil(val * n)
    if n - n_test - n_val < 2:
        raise DataError(
            f"{source}: {n} rows are too few for data.split (val {val}, test {test}): "
            f"training would get {max(n - n_test - n_val, 0)} rows; need at least 2"
        )
    perm = rng.permutation(n)
    if y is None:
        return np.sort(perm[n_val + n_test:]), np.sort(perm[:n_val]), np.sort(perm[n_val:n_val + n_test])
    labels = y[perm]
    groups = [perm[labels == k] for k in np.unique(labels)]
    counts = np.array([len(g) for g in groups])
    t_k = _allocate(n_test, counts * test, counts - 1)
    v_k = _allocate(n_val, counts * val, counts - 1 - t_k)
    train, valid, tst = [], [], []
    for g, t, v in zip(groups, t_k, v_k):
        tst.append(g[:t])
        valid.append(g[t:t + v])
        train.append(g[t + v:])
    return tuple(np.sort(np.concatenate(part)) for part in (train, valid, tst))


def _allocate(total: int, shares: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Integers summing to (at most) `total`, close to `shares`, each within [0, caps]."""
    base = np.minimum(np.floor(shares).astype(np.int64), caps)
    rest = total - base.sum()
    order = np.argsort(-(shares - np.floor(shares)), kind="stable")
    while rest > 0:
        moved = False
        for k in order:
            if rest > 0 and base[k] < caps[k]:
                base[k] += 1
                rest -= 1
                moved = True
        if not moved:
            break
    return base


# ------------------------------------------------------------------------------------ preprocessing
PREPROCESS = ("none", "center", "standardize", "minmax", "pca", "whiten")


@dataclass
class Preprocessor:
    """X' = ((X - shift) / scale) @ projection / post_scale; fitted on the training split only."""

    method: str
    shift: np.ndarray
    scale: np.ndarray
    projection: np.ndarray | None = None  # (d, k) for pca / whiten
    post_scale: np.ndarray | None = None  # (k,) for whiten
    explained_variance_ratio: np.ndarray | None = None

    @property
    def n_outputs(self) -> int:
        return self.projection.shape[1] if self.projection is not None else self.shift.shape[0]

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Apply the fitted transform to raw features (n, d) -> (n, n_outputs)."""
        out = (X - self.shift) / self.scale
        if self.projection is not None:
            out = out @ self.projection
        if self.post_scale is not None:
            out /= self.post_scale
        return out

    def transform_rows(self, X: np.ndarray, idx: np.ndarray, dtype, chunk: int = 16384,
                       consume: bool = False) -> np.ndarray:
        """transform(X[idx]) cast to `dtype`, computed in chunks of rows into one output array, so a
        large data set never has several full-size float64 temporaries alive at once.

        consume=True allows writing the result over X's own memory when that is safe (see
        `_compaction_buffer`): X's contents are then destroyed, and the training matrix of a large
        CSV needs no second copy of the data."""
        out = _compaction_buffer(X, idx, self.n_outputs, dtype) if consume else None
        if out is None:
            out = np.empty((len(idx), self.n_outputs), dtype=dtype)
        for start in range(0, len(idx), chunk):
            # the chunk's source rows are gathered (copied) before its output rows are written
            out[start:start + chunk] = self.transform(X[idx[start:start + chunk]])
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays for preprocess.npz."""
        out = {"method": np.array(self.method), "shift": self.shift, "scale": self.scale}
        if self.projection is not None:
            out["projection"] = self.projection
        if self.post_scale is not None:
            out["post_scale"] = self.post_scale
        if self.explained_variance_ratio is not None:
            out["explained_variance_ratio"] = self.explained_variance_ratio
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Preprocessor:
        return cls(str(arrays["method"]), arrays["shift"], arrays["scale"], arrays.get("projection"),
                   arrays.get("post_scale"), arrays.get("explained_variance_ratio"))


def _compaction_buffer(X: np.ndarray, idx: np.ndarray, width: int, dtype) -> np.ndarray | None:
    """A C-contiguous (len(idx), width) array over the start of the memory that X's rows live in,
    or None when writing X[idx]'s transformed rows there in order could clobber a row before it is read.

    Writing output row i (bytes [i w e, (i+1) w e) from the buffer start) is safe when every row read
    later starts beyond it: with idx strictly increasing, a later row is X[idx[j]] with
    idx[j] >= j > i, which starts at least j * X.strides[0] bytes in, so row strides of at least
    w e bytes suffice (w = width, e = itemsize). The memory must belong to a plain array (no memmap,
    no foreign buffer) of the same dtype.
    """
    dtype = np.dtype(dtype)
    owner = X
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    if (owner.base is not None or not owner.flags.owndata or not owner.flags.c_contiguous
            or not owner.flags.writeable or owner.dtype != dtype or X.dtype != dtype or X.ndim != 2
            or min(X.strides) <= 0 or X.strides[0] < width * dtype.itemsize
            or owner.size < len(idx) * width or len(idx) == 0):
        return None
    if len(idx) > 1 and not bool(np.all(idx[1:] > idx[:-1])):
        return None
    return owner.reshape(-1)[:len(idx) * width].reshape(len(idx), width)


def fit_preprocessor(method: str, X: np.ndarray, pca_components: int | float | None,
                     rows: np.ndarray | None = None) -> Preprocessor:
    """Fit a preprocessing method on training features X (n, d), or on X[rows].

    With `rows`, the per-column statistics of none/center/standardize/minmax are accumulated in
    chunks, so a large data set is never copied whole; pca/whiten need the rows together.
    """
    if rows is not None:
        if method in ("none", "center", "standardize", "minmax"):
            return _fit_columnwise(method, X, rows)
        X = X[rows]
    n, d = X.shape
    zero, one = np.zeros(d), np.ones(d)
    if method == "none":
        return Preprocessor(method, zero, one)
    mean = X.mean(axis=0)
    if method == "center":
        return Preprocessor(method, mean, one)
    if method == "standardize":
        std = X.std(axis=0)  # ddof=0, as sklearn's StandardScaler
        return Preprocessor(method, mean, np.where(std > 0, std, 1.0))
    if method == "minmax":
        lo, hi = X.min(axis=0), X.max(axis=0)
        return Preprocessor(method, lo, np.where(hi > lo, hi - lo, 1.0))
    # pca / whiten: principal axes of the centred training data (SVD), as sklearn's PCA
    _, s, Vt = np.linalg.svd(X - mean, full_matrices=False)
    var = s**2 / max(n - 1, 1)
    ratio = var / var.sum() if var.sum() > 0 else np.zeros_like(var)
    k = _n_components(pca_components, ratio, min(n, d))
    Vt = _flip_signs(Vt[:k])
    post = np.sqrt(np.where(var[:k] > 0, var[:k], 1.0)) if method == "whiten" else None
    return Preprocessor(method, mean, one, Vt.T.copy(), post, ratio[:k])


def _fit_columnwise(method: str, X: np.ndarray, rows: np.ndarray, chunk: int = 16384) -> Preprocessor:
    d = X.shape[1]
    zero, one = np.zeros(d), np.ones(d)
    if method == "none":
        return Preprocessor(method, zero, one)
    def parts():  # one chunk of rows at a time, never the whole training matrix
        for i in range(0, len(rows), chunk):
            yield X[rows[i:i + chunk]].astype(np.float64, copy=False)

    if method == "minmax":
        lo = np.min([p.min(axis=0) for p in parts()], axis=0)
        hi = np.max([p.max(axis=0) for p in parts()], axis=0)
        return Preprocessor(method, lo, np.where(hi > lo, hi - lo, 1.0))
    mean = np.sum([p.sum(axis=0) for p in parts()], axis=0) / len(rows)
    if method == "center":
        return Preprocessor(method, mean, one)
    # two passes (mean, then squared deviations): as exact as np.std, and never a full-size temporary
    var = np.sum([((p - mean) ** 2).sum(axis=0) for p in parts()], axis=0) / len(rows)
    std = np.sqrt(var)  # ddof=0, as sklearn's StandardScaler
    return Preprocessor(method, mean, np.where(std > 0, std, 1.0))


def _n_components(spec, ratio, max_k) -> int:
    if spec is None:
        return max_k
    if isinstance(spec, int):
        if spec > max_k:
            raise ConfigError(f"data.pca_components is {spec}, but the training data has only {max_k} components")
        return spec
    return int(min(np.searchsorted(np.cumsum(ratio), spec - 1e-12) + 1, max_k))  # variance fraction


def _flip_signs(Vt):
    # deterministic signs: the largest-magnitude entry of each axis is positive
    signs = np.sign(Vt[np.arange(len(Vt)), np.argmax(np.abs(Vt), axis=1)])
    return Vt * np.where(signs == 0, 1, signs)[:, None]


# ------------------------------------------------------------------------------------ new rows
def encode_csv(path: Path, columns: list[dict], target_name: str | None, class_names: list[str] | None,
               need_target: bool) -> tuple[np.ndarray, np.ndarray | None, list[str], list[list[str]]]:
    """Encode a CSV's rows exactly as the training data was encoded (same columns, same one-hot).

    Returns (X raw features (n, d), y (class indices or values) or None, header, rows).
    Missing feature columns, unexpected columns, unseen categories and unknown labels are
    DataErrors naming the column and line.
    """
    header, rows = read_csv_table(path)
    if not rows:
        raise DataError(f"{path}: no data rows after the header")
    names = [c["name"] for c in columns]
    missing = [n for n in names if n not in header]
    if missing:
        raise DataError(f"{path}: missing column{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(repr(m) for m in missing)} (the model was trained on: {', '.join(names)})")
    has_target = bool(target_name) and target_name in header
    if need_target and not has_target:
        raise DataError(f"{path}: no target column {target_name!r}; evaluation needs the true values")
    extra = [h for h in header if h not in names and h != target_name]
    if extra:
        raise DataError(f"{path}: unexpected column{'s' if len(extra) > 1 else ''} "
                        f"{', '.join(repr(e) for e in extra)} (the model was trained on: {', '.join(names)}"
                        f"{'; target ' + repr(target_name) if target_name else ''})")
    blocks = []
    for col in columns:
        i = header.index(col["name"])
        cells = [(ln, r[i]) for ln, r in rows]
        if col["kind"] == "numeric":
            values = []
            for ln, cell in cells:
                if _is_missing(cell):
                    raise DataError(f"{path}, line {ln}, column {col['name']!r}: missing value")
                v = _to_float(cell)
                if v is None:
                    raise DataError(f"{path}, line {ln}, column {col['name']!r}: expected a number, found "
                                    f"{cell.strip()!r}")
                values.append(v)
            blocks.append(np.asarray(values, dtype=np.float64)[:, None])
        else:
            cats = col["categories"]
            index = {c: k for k, c in enumerate(cats)}
            block = np.zeros((len(rows), len(cats)))
            for r, (ln, cell) in enumerate(cells):
                k = index.get(cell.strip())
                if k is None:
                    raise DataError(f"{path}, line {ln}, column {col['name']!r}: category {cell.strip()!r} was "
                                    f"not seen in training (known: {', '.join(cats)})")
                block[r, k] = 1.0
            blocks.append(block)
    X = np.hstack(blocks) if blocks else np.zeros((len(rows), 0))
    y = None
    if has_target and need_target:  # predict ignores a target column: new rows often have no label yet
        t = header.index(target_name)
        cells = [(ln, r[t]) for ln, r in rows]
        if class_names is not None:
            index = {c: k for k, c in enumerate(class_names)}
            y = np.empty(len(rows), dtype=np.int64)
            for r, (ln, cell) in enumerate(cells):
                label = cell.strip()
                if label not in index:  # numeric labels: "1.0" is class "1"
                    v = _to_float(label)
                    label = _fmt_number(v) if v is not None else label
                if label not in index:
                    raise DataError(f"{path}, line {ln}, column {target_name!r}: label {cell.strip()!r} is not "
                                    f"one of the trained classes ({', '.join(class_names)})")
                y[r] = index[label]
        else:
            values = []
            for ln, cell in cells:
                v = _to_float(cell)
                if v is None:
                    raise DataError(f"{path}, line {ln}, column {target_name!r}: expected a number, found "
                                    f"{cell.strip()!r}")
                values.append(v)
            y = np.asarray(values, dtype=np.float64)
    return X, y, header, [r for _, r in rows]
