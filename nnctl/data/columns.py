"""Columns: numeric or categorical (one-hot), missing values, and encoding new rows as training did."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from nnctl.errors import DataError

MISSING = {"", "na", "n/a", "nan", "null", "none", "?", "-"}


def is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING


def to_float(cell: str) -> float | None:
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def parse_column(path, name, cells, target=False):
    """Classify a column as numeric or categorical; error on missing values and stray junk."""
    numbers: list[float | None] = []
    for line, cell in cells:
        if is_missing(cell):
            raise DataError(f"{path}, line {line}, column {name!r}: missing value ({cell.strip() or 'empty'})"
                            + ("; every row needs a target" if target else "; fill or drop the row"))
        numbers.append(to_float(cell))
    n_numeric = sum(v is not None for v in numbers)
    if n_numeric == len(numbers):
        return "numeric", numbers, None
    if n_numeric * 2 > len(numbers):  # mostly numbers: the text cells are junk, not categories
        line, cell = next((ln, c) for (ln, c), v in zip(cells, numbers) if v is None)
        raise DataError(f"{path}, line {line}, column {name!r}: expected a number, found {cell.strip()!r}")
    values = [c.strip() for _, c in cells]
    return "categorical", values, sorted(set(values))


def fmt_number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def encode_csv(path: Path, columns: list[dict], target_name: str | None, class_names: list[str] | None,
               need_target: bool) -> tuple[np.ndarray, np.ndarray | None, list[str], list[list[str]]]:
    """Encode a CSV's rows exactly as the training data was encoded (same columns, same one-hot).

    Returns (X raw features (n, d), y (class indices or values) or None, header, rows).
    Missing feature columns, unexpected columns, unseen categories and unknown labels are
    DataErrors naming the column and line.
    """
    from nnctl.data.reading import read_csv_table

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
                if is_missing(cell):
                    raise DataError(f"{path}, line {ln}, column {col['name']!r}: missing value")
                v = to_float(cell)
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
                    v = to_float(label)
                    label = fmt_number(v) if v is not None else label
                if label not in index:
                    raise DataError(f"{path}, line {ln}, column {target_name!r}: label {cell.strip()!r} is not "
                                    f"one of the trained classes ({', '.join(class_names)})")
                y[r] = index[label]
        else:
            values = []
            for ln, cell in cells:
                v = to_float(cell)
                if v is None:
                    raise DataError(f"{path}, line {ln}, column {target_name!r}: expected a number, found "
                                    f"{cell.strip()!r}")
                values.append(v)
            y = np.asarray(values, dtype=np.float64)
    return X, y, header, [r for _, r in rows]

