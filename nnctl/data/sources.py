"""Where data comes from: the built-in datasets (cached on disk) and data files, as a `Dataset`.

`load_dataset` returns a `Dataset` with targets y (class indices for classification, values (n,)
or (n, k) for regression). A built-in dataset has its features X (n, d) at once; a data file's
features stay raw typed columns until `Dataset.encode` fits the encoding (`columns`) on the
training rows and makes X. Errors name the file, line and column.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnctl.config.spec import DataSpec
from nnctl.data.columns import fmt_number
from nnctl.errors import ConfigError

if TYPE_CHECKING:
    from nnctl.data.table import Table

MAX_AUTO_CLASSES = 10  # task: auto takes integer targets with at most this many values as classes ...
MIN_AUTO_CLASS_ROWS = 5  # ... if every value has at least this many rows


@dataclass
class Dataset:
    """Features, targets and everything needed to describe and re-encode them.

    A data file's features stay raw columns (`table`) until `encode` fits the column encoders on
    the training rows and makes X; a built-in dataset has X from the start."""

    X: np.ndarray | None  # (n, d) after encoding (one-hot, dates, imputation): float64 or the training dtype
    y: np.ndarray  # (n,) int class indices, or (n,) / (n, k) float targets
    task: str  # classification | regression
    feature_names: list[str]
    class_names: list[str] | None  # classification: name of class k (output unit k)
    source: str  # what the config's data.source says
    fingerprint: Any  # sha256 of the file (str(), see reading.PendingDigest), or of the generated arrays
    columns: list[dict] = field(default_factory=list)  # the input encoding (columns.ColumnEncoder.to_json)
    target_name: str | None = None
    n_features: int = 0  # X's width, kept when training frees X
    table: Table | None = None  # a data file's feature columns (typed), until encode
    feature_columns: list[str] = field(default_factory=list)
    id_name: str | None = None
    notes: list[str] = field(default_factory=list)  # what loading decided and the user should know
    dropped: dict[str, int] = field(default_factory=dict)  # rows dropped, by reason
    task_reason: str = ""
    decimal: str = "."
    file_columns: list[str] = field(default_factory=list)  # every column of the data file, in order

    @property
    def n_classes(self) -> int:
        return len(self.class_names) if self.class_names is not None else 0

    @property
    def n_targets(self) -> int:
        return 1 if self.y.ndim == 1 else self.y.shape[1]

    def encode(self, data: DataSpec, train: np.ndarray, dtype=np.float64) -> None:
        """Fit the column encoders on the training rows and make X for every row (frees the table)."""
        if self.table is None:
            return
        from nnctl.data.columns import Encoding, fit_encoders

        encoders = fit_encoders(self.table, self.feature_columns, train, data.missing, data.impute,
                                data.categorical)
        enc = Encoding(encoders, self.decimal)
        t = self.table
        if t.matrix is not None and all(e.kind == "numeric" and e.fill is None and not e.indicator
                                        for e in encoders) and all(n in t.matrix_columns for n in self.feature_columns):
            # plain numbers: X is the parsed matrix's feature columns (in the training dtype), a view
            # when they are adjacent (no copy; training writes its rows over that memory)
            idx = [t.matrix_columns.index(n) for n in self.feature_columns]
            contiguous = idx == list(range(idx[0], idx[-1] + 1))
            self.X = t.matrix[:, idx[0]:idx[-1] + 1] if contiguous else t.matrix[:, idx]
            if any(t.columns[n].has_missing() for n in self.feature_columns):
                enc.transform(t)  # names the missing value (drop and error policies leave none)
        else:  # float64 if a feature was read in float64 because float32 could not resolve it
            wide = any(n in t.coarse for n in self.feature_columns)
            self.X = enc.transform(t, np.float64 if wide else dtype, fill_room=True)  # (the table goes below)
        self.columns = enc.to_json()
        self.feature_names = enc.feature_names()
        rare = [e for e in encoders if e.other]
        for e in rare:
            self.notes.append(f"column {e.name!r}: {len(e.other)} level{'s' * (len(e.other) != 1)} rarer than "
                              f"data.categorical.min_frequency share the column {e.name}=(other)")
        self.table = None

    def features_of(self, rows: np.ndarray, columns: list[dict], report: dict | None = None) -> np.ndarray:
        """Raw features of `rows`, encoded as `columns` (a run's stored encoding) says."""
        if self.table is None:
            return self.X[rows]
        from nnctl.data.columns import encoding_from_json

        return encoding_from_json(columns, self.decimal).transform(self.table.take(rows), np.float64, report)


# ------------------------------------------------------------------------------------ loading
def load_dataset(data: DataSpec, dtype=np.float64, rows=None) -> Dataset:
    """Load the dataset a loaded spec's `data:` section describes (its file path is absolute).

    A data file's features come back as raw typed columns (`Dataset.table`); `Dataset.encode`
    fits their encoding on the training rows. `dtype` is kept for the encoded matrix. `rows`: an
    Arrow table held in memory (the Python API), used in place of the file."""
    if data.builtin is not None and rows is None:
        return finish_task(load_builtin(data.builtin, dict(data.options)), data.task)
    from nnctl.data.roles import load_file

    return load_file(data, dtype, rows)


def load_builtin(name: str, options: dict) -> Dataset:
    """Make a built-in dataset with validated options."""
    from nnctl.data.builtins import BUILTINS

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
    from nnctl.files import read_npz

    try:
        z = read_npz(path, "cached dataset", follow=True)
        classes = json.loads(str(z["class_names"]))
        return z["X"], z["y"], [str(f) for f in z["feature_names"]], classes
    except Exception:  # a damaged cache entry (RunDirError, a missing key) is regenerated, never trusted
        return None


def _cache_write(name, opts, X, y, feature_names, class_names) -> None:
    import json

    from nnctl.files import write_npz

    path = _cache_path(name, opts)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_npz(path, {"X": np.asarray(X), "y": np.asarray(y), "feature_names": np.array(feature_names, dtype=str),
                         "class_names": np.array(json.dumps(class_names))})
    except (OSError, ValueError):
        pass  # a read-only home or full disk only costs the next run a second



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
        ds.class_names = [fmt_number(v) for v in labels]
    if ds.task == "classification":
        ds.y = ds.y.astype(np.int64)
    return ds
