"""`nnctl init DATA_FILE`: look at a data file and write a starting config, every decision commented.

Each column gets a role: the target; the id (a column naming each row: all values distinct, text
or integers in row order); ignored (a constant, free text or another id-like column); or a
feature (numeric, categorical, date). Missing values choose `missing: impute`; the task is
decided as `task: auto` would decide it, and written down with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl.config.spec import CategoricalSpec, config_fields
from nnctl.data.columns import fmt_number, infer_kind, likely_row_id
from nnctl.data.reading import read_table
from nnctl.data.table import RawColumn, Table
from nnctl.errors import DataError

MAX_LEVELS = config_fields(CategoricalSpec)["max_levels"].default


@dataclass
class ColumnRole:
    name: str
    role: str  # target | id | ignore | numeric | categorical | date
    why: str


def _quote(name: str) -> str:
    import json

    plain = name.replace("_", "").replace("-", "").replace(".", "").isalnum() and not name[0].isdigit()
    return name if plain and name.lower() not in ("yes", "no", "true", "false", "on", "off", "null") \
        else json.dumps(name)


def _describe(col: RawColumn) -> tuple[str, str]:
    """(kind, a few words about the values)."""
    n = len(col.values)
    missing = int(col.missing.sum())
    tail = f", {missing:,} missing" if missing else ""
    if col.kind == "number":
        v = col.values[~np.isnan(col.values)]
        if len(v) == 0:
            return "empty", "no values"
        return "numeric", f"{fmt_number(v.min())} to {fmt_number(v.max())}{tail}"
    if col.kind == "date":
        v = col.values[~np.isnat(col.values)]
        return "date", f"{str(v.min())[:10]} to {str(v.max())[:10]}{tail}" if len(v) else "no values"
    if col.kind == "text":
        present = col.values[col.values >= 0]
        return "categorical", f"{len(np.unique(present)):,} distinct of {n:,}{tail}"
    return "empty", "no values"


def decide_roles(table: Table, target: str, decimal: str) -> tuple[list[ColumnRole], dict[str, RawColumn]]:
    """A role for every column of `table`, with the reason."""
    roles, typed = [], {}
    id_taken = False
    for name in table.names:
        try:
            col = infer_kind(table.columns[name], table, decimal)
        except DataError as exc:  # mostly numbers with stray text: ignored, and the message says how to use it
            if name == target:
                raise
            typed[name] = table.columns[name]
            roles.append(ColumnRole(name, "ignore", str(exc).split(": ", 1)[-1].replace(f"column {name!r}: ", "")))
            continue
        typed[name] = col
        kind, about = _describe(col)
        if name == target:
            roles.append(ColumnRole(name, "target", about))
            continue
        present = ~col.missing
        distinct = len(np.unique(col.values[present])) if present.any() else 0
        if distinct <= 1:
            roles.append(ColumnRole(name, "ignore", "the same value in every row" if distinct else "no values"))
            continue
        all_distinct = distinct == table.n_rows
        if (col.kind == "text" and all_distinct) or likely_row_id(col):
            why = "distinct integers in row order (a row number)" if col.kind == "number" else \
                "a different value in every row (a name or key)"
            roles.append(ColumnRole(name, "ignore" if id_taken else "id", why))
            id_taken = True
            continue
        if col.kind == "text" and distinct > MAX_LEVELS:
            roles.append(ColumnRole(name, "ignore", f"text with {distinct:,} distinct values (free text, or too "
                                                    f"many levels for one-hot encoding)"))
            continue
        roles.append(ColumnRole(name, kind if kind != "empty" else "ignore", about))
    return roles, typed


def _task(col: RawColumn) -> tuple[str, str]:
    from nnctl.data.sources import MAX_AUTO_CLASSES, MIN_AUTO_CLASS_ROWS

    if col.kind == "text":
        present = col.values[col.values >= 0]
        if len(present) == 0:
            raise DataError(f"the target column {col.name!r} has no value in any row; choose another with --target")
        codes, counts = np.unique(present, return_counts=True)
        top = sorted(zip(counts, codes), reverse=True)
        shown = ", ".join(f"{col.levels[c]} {n}" for n, c in top[:5])
        return "classification", f"{len(codes)} text labels ({shown}{', ...' if len(top) > 5 else ''})"
    if col.kind != "number":
        raise DataError(f"the target column {col.name!r} holds {col.kind} values; choose another with --target")
    v = col.values[~np.isnan(col.values)]
    if len(v) == 0:
        raise DataError(f"the target column {col.name!r} has no value in any row; choose another with --target")
    distinct, counts = np.unique(v, return_counts=True)
    if np.all(np.mod(distinct, 1) == 0) and (len(distinct) == 2 or (len(distinct) <= MAX_AUTO_CLASSES
                                                                   and counts.min() >= MIN_AUTO_CLASS_ROWS)):
        shown = ", ".join(f"{fmt_number(d)}: {c}" for d, c in zip(distinct, counts))
        return "classification", f"{len(distinct)} integer labels ({shown})"
    return "regression", f"{len(distinct):,} distinct numbers, {fmt_number(v.min())} to {fmt_number(v.max())}"


def train_check(text: str, data_path: Path) -> str | None:
    """What `nnctl train` would stop with on the config `text` (its data at `data_path`), or None:
    the same loading, split and checks as training, so that a config `nnctl init` writes for data
    that cannot be trained as it stands (a class with one row, a split part left empty, a target
    with one value) says so when it is written, not at the first train."""
    from nnctl.build import load_and_split
    from nnctl.config.load import load_spec
    from nnctl.config.yamlio import load_yaml
    from nnctl.errors import NnctlError

    config = load_yaml(text, "the config")[0]
    config["data"]["source"] = str(Path(data_path).resolve())
    try:
        load_and_split(load_spec(data=config))
    except NnctlError as exc:
        return str(exc)
    return None


WORDS = ("None", "none", "null", "NULL", "-", "?")  # in data.na_values: auto, but sometimes real values


def _word_missing(path: Path, delimiter: str, decimal: str, header: bool, names: list[str]):
    """(column, word, count) for columns whose missing values include a word-like marker ('None',
    '-', ...): Cars93's AirBags column says 'None' for no airbags, not for unknown."""
    if not names:
        return []
    text = read_table(path, delimiter, decimal, header, text=True)
    out = []
    for name in names:
        cells = [c.strip() for c in text.columns[name] if c is not None]
        for word in WORDS:
            count = cells.count(word)
            if count:
                out.append((name, word, count))
    return out


def init_config(path: Path, target: str | int | None = None, delimiter: str = "auto", decimal: str = ".",
                header: bool = True, config_path: Path | None = None) -> str:
    """The text of a starting config (YAML with comments) for the data file `path`."""
    path = Path(path)
    table = read_table(path, delimiter, decimal, header)
    if table.n_rows == 0:
        raise DataError(f"{path}: no data rows")
    names = table.names
    if target is None:
        target_name = names[-1]
    elif isinstance(target, int) or (isinstance(target, str) and target.lstrip("-").isdigit() and target not in names):
        i = int(target)
        if not -len(names) <= i < len(names):
            raise DataError(f"--target {target}: the file has {len(names)} columns")
        target_name = names[i]
    elif target in names:
        target_name = target
    else:
        from nnctl.errors import did_you_mean

        raise DataError(f"--target {target}: no such column in {path}{did_you_mean(str(target), names)}; the "
                        f"columns are {', '.join(names)}")
    roles, typed = decide_roles(table, target_name, decimal)
    task, task_why = _task(typed[target_name])
    features = [r for r in roles if r.role in ("numeric", "categorical", "date")]
    if not features:
        raise DataError(f"{path}: no column is usable as a feature (every one is the target, an id or ignored)")
    missing_cols = [(r.name, int(typed[r.name].missing.sum())) for r in features if typed[r.name].missing.any()]
    y_missing = int(typed[target_name].missing.sum())
    ids = [r.name for r in roles if r.role == "id"]
    ignored = [r.name for r in roles if r.role == "ignore"]
    source = path
    if config_path is not None:  # data.source is relative to the config file
        import os

        try:
            source = Path(os.path.relpath(path.resolve(), config_path.parent.resolve()))
        except ValueError:  # another drive
            source = path.resolve()
    sep = getattr(table, "_reader", None)
    lines = [
        f"# A starting config for {path.name}, written by `nnctl init`: {table.n_rows:,} rows, "
        f"{len(names)} columns.",
        "# Every role below was decided from the data, with the reason in a comment; check them, then",
        f"#   nnctl train {config_path if config_path is not None else 'THIS_FILE.yaml'}",
        f"name: {_quote(path.name.split('.')[0])}",
        "seed: 0",
        "data:",
        f"  source: {_quote(str(source))}",
    ]
    if sep and sep[0] != ",":
        lines.append(f"  delimiter: {_quote(sep[0]) if sep[0] != chr(9) else 'tab'}")
    if decimal != ".":
        lines.append(f"  decimal: \"{decimal}\"")
    if not header:
        lines.append("  header: false")
    lines.append(f"  target: {_quote(target_name)}")
    lines.append(f"  task: {task}  # {task_why}")
    if ids:
        why = next(r.why for r in roles if r.role == "id")
        lines.append(f"  id: {_quote(ids[0])}  # {why}: never a feature; predict repeats it")
    if ignored:
        lines.append(f"  ignore: [{', '.join(_quote(n) for n in ignored)}]")
        for r in roles:
            if r.role == "ignore":
                lines.append(f"    # {r.name}: {r.why}")
    if missing_cols or y_missing:
        cells = ", ".join(f"{n} {c}" for n, c in missing_cols[:6]) + (", ..." if len(missing_cols) > 6 else "")
        lines.append("  missing: impute  # missing values: "
                     + (cells if cells else "none in the features")
                     + (f"; {y_missing} rows without a target are dropped" if y_missing else ""))
        lines.append("  impute: {numeric: median, categorical: most_frequent, indicator: false}")
        for name, word, count in _word_missing(path, delimiter, decimal, header, [n for n, _ in missing_cols]):
            lines.append(f"  # {name}: {count} of its missing values are the word {word!r}; if that is a real "
                         f"value, list na_values without it")
    else:
        lines.append("  missing: error  # no missing values in this file")
    lines.append("  # features (numeric columns are standardized; text ones one-hot encoded, levels from the "
                 "training rows;")
    lines.append("  # dates expanded to year, month, day, weekday, day of year):")
    width = max(len(r.name) for r in features)
    for r in features:
        lines.append(f"  #   {r.name:<{width}}  {r.role:<11}  {r.why}")
    if task == "regression":
        lines.append("  target_scale: auto        # the target is standardized on the training rows; metrics and")
        lines.append("                            # predictions stay in its units")
    split = "{val: 0.2, test: 0.2, stratify: true}" if task == "classification" else "{val: 0.2, test: 0.2}"
    lines += [
        f"  split: {split}",
        "  preprocess: standardize",
        "model:",
        "  hidden: [64, 32]",
        "  activation: relu",
        "  dropout: 0.0",
        "optimizer:",
        "  name: adam",
        "  lr: 0.001",
        "  weight_decay: 0.0001",
        "train:",
        "  epochs: 500",
        "  batch_size: 32",
        "  early_stopping: {monitor: val_loss, patience: 30, restore_best: true}   # keeps the best epoch",
    ]
    if task == "classification":
        counts = np.unique(typed[target_name].values[~typed[target_name].missing], return_counts=True)[1]
        if counts.min() * 5 < counts.max():
            lines.append(f"  # the classes are imbalanced ({counts.min()} vs {counts.max()} rows): class_weight: "
                         f"balanced weighs the rare ones up")
        lines.append("  class_weight: none")
    return "\n".join(lines) + "\n"
