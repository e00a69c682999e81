"""Reading data files: CSV text into a `Dataset`, all-numeric files by a fast path.

An all-numeric file is parsed straight to the training dtype (the vectorized reader in
fastcsv.py, else NumPy's loadtxt); anything else goes through the csv module, cell by cell, so
that every problem is reported with its file, line and column.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.data.columns import fmt_number, parse_column
from nnctl.data.sources import Dataset
from nnctl.errors import ConfigError, DataError, did_you_mean
from nnctl.files import read_bytes


def file_fingerprint(path: Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()



def read_csv_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file; DataError for unreadable files, bad headers, ragged rows."""
    raw = read_bytes(path, "CSV file", DataError)
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
        kind, values, cats = parse_column(path, header[i], [(ln, r[i]) for ln, r in rows])
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
    kind, values, cats = parse_column(path, y_name, [(ln, r[t]) for ln, r in rows], target=True)
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
        only = ds.class_names[0] if ds.class_names else fmt_number(ds.y[0])
        raise DataError(f"{path}: target column {y_name!r} has the same value ({only}) in every row: nothing to learn")
    return ds


def _read_numeric_csv(path: Path, dtype=np.float64) -> tuple[list[str], np.ndarray, str | None] | None:
    """(header, matrix, sha256 of the file or None) if every data cell is a finite number; None
    sends the file to the careful reader, which names the line and column of whatever is wrong."""
    from nnctl.data.fastcsv import read_numeric

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
        raise DataError(f"{path}: target column {header[t]!r} has the same value ({fmt_number(y[0])}) in every "
                        f"row: nothing to learn")
    return ds
