"""The Python API (DESIGN §7): `train` a config into a run directory, open one as a `Run`, and
predict or evaluate on rows held in memory. The CLI's train and eval are clients of it.

Rows are a pandas DataFrame, a dict of columns, or a 2-D array: with as many columns as the
training data had, in its layout (the target where it was, for evaluate), else the model's
features in order (`Run.features`, then the target for evaluate). They go through the run's own
data policy, as `nnctl predict` applies it to a file: the stored category levels, imputation
values and scaling, missing values handled as `data.missing` says, unknown levels counted.
Notes about the rows (columns ignored, unknown levels) are issued as `NnctlNote` warnings.

Nothing here prints or exits; errors are `ConfigError` and `DataError` (both ValueErrors),
`RunDirError` and `TrainingFailed` (its `run_dir` says where the failed run is).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.errors import DataError, RunDirError

MEMORY = "the rows given"  # how in-memory training rows are named in messages


class NnctlNote(UserWarning):
    """Something about the rows given that the user should know (predict's notes on stderr)."""


# ------------------------------------------------------------------------------------ training
def train(config: str | os.PathLike | dict | None = None, overrides: dict | list[str] | None = None, *,
          data: Any = None, runs_dir: str | os.PathLike = "runs", name: str | None = None, seed: int | None = None,
          progress: bool | Callable[[dict], None] = False, on_finding: Callable[[dict], None] | None = None,
          on_start: Callable[[dict], None] | None = None, command: list[str] | None = None,
          log: str | None = None, on_notice: Callable[[str], None] | None = None) -> Run:
    """Train the experiment a config describes and return its run (a new folder in `runs_dir`).

    config: a YAML file's path, or the config as a dict (data files in it are relative to the
        current directory); None with `data=` means every default.
    overrides: {"optimizer.lr": 0.01, "model.hidden": [32, 16]} (Python values), or a list of
        "key=yaml" strings as the CLI's --set takes.
    data: rows in memory (a DataFrame, a dict of columns, or a 2-D array whose last column is the
        target unless data.target says otherwise) in place of data.source. The run keeps them as
        data.parquet, so it can be evaluated, resumed and re-trained like any other.
    progress: False (default) reports nothing; True prints a line per second of training to
        stderr; a function is called with each epoch's metrics row (a dict, as in metrics.csv).
    on_finding(finding) is called for each diagnostic finding; on_start(info) once training starts.
    log: "mlflow" tracks the run in MLflow (train.log); on_notice(message) hears what tracking has
    to say (a store that failed mid-run), default: a warning.

    Raises ConfigError/DataError before anything is written, TrainingFailed if training diverged
    or was interrupted (its run directory is kept: `err.run_dir`).

    >>> run = nnctl.train("configs/moons.yaml", overrides={"optimizer.lr": 0.05}, runs_dir="runs")
    >>> run.summary["best"]["val_accuracy"]
    """
    from nnctl.training.session import train_run

    spec, rows = load(config, overrides, data=data, name=name, seed=seed, log=log)
    on_epoch = _progress(progress, spec.train.epochs)
    if on_notice is None:
        def on_notice(message: str) -> None:
            warnings.warn(message, NnctlNote, stacklevel=2)
    result = train_run(spec, Path(runs_dir), command=command if command is not None else _command(),
                       on_start=on_start, on_epoch=on_epoch, on_finding=on_finding, on_notice=on_notice, rows=rows)
    return Run(result.run.path)


def load(config, overrides=None, *, data=None, name=None, seed=None, log=None):
    """(the loaded Spec, the in-memory rows as an Arrow table or None) for `train`."""
    from nnctl.config.load import load_spec

    if isinstance(overrides, str):  # one "key=value" string
        overrides = [overrides]
    rows = None
    if data is not None:
        from nnctl.data.frames import to_arrow

        rows = to_arrow(data, label=MEMORY)
    memory = MEMORY if rows is not None else None
    if config is None:
        config = {}
    if isinstance(config, dict):
        spec = load_spec(None, overrides, data=config, name=name, seed=seed, log=log, base_dir=Path.cwd(),
                         memory=memory)
    else:
        spec = load_spec(Path(config), overrides, name=name, seed=seed, log=log, memory=memory)
    return spec, rows


def _command() -> list[str]:
    argv0 = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return [argv0, "(nnctl.train)"]


def _progress(progress, epochs: int) -> Callable[[dict], None] | None:
    if callable(progress):
        return progress
    if not progress:
        return None
    last = [0.0]

    def show(row: dict) -> None:  # at most one line a second, plain text: no rich, no tqdm
        now = time.monotonic()
        if now - last[0] < 1.0 and row["epoch"] != epochs:
            return
        last[0] = now
        parts = [f"epoch {row['epoch']}"] + [f"{k} {v:.4g}" for k, v in row.items()
                                              if k not in ("epoch", "lr", "epoch_time_s") and isinstance(v, float)]
        print("  ".join(parts), file=sys.stderr, flush=True)

    return show


# ------------------------------------------------------------------------------------ a run
class Run:
    """A run directory written by `nnctl train` or `nnctl.train`.

    >>> run = nnctl.Run("runs/moons-20261201-101500-ab12cd")
    >>> run.summary["status"], run.classes
    >>> run.predict({"x0": [0.5, -1.0], "x1": [0.2, 0.8]})
    """

    def __init__(self, path: str | os.PathLike):
        from nnctl.runs import open_run

        run, _ = open_run(path)  # RunDirError if it is not a run directory
        self.path = run.path
        self._loaded = None
        self._loaded_key = None

    def __repr__(self) -> str:
        s = self.summary
        return f"Run({str(self.path)!r}, status={s.get('status')!r}, epochs_run={s.get('epochs_run')})"

    def __fspath__(self) -> str:
        return str(self.path)

    # -- what it holds
    @property
    def summary(self) -> dict:
        """summary.json (read afresh each time: a run may still be training)."""
        from nnctl.runs import open_run

        return open_run(self.path)[1]

    @property
    def config(self) -> dict:
        """The resolved config (config.yaml) as a dict."""
        from nnctl.config.yamlio import load_yaml
        from nnctl.files import read_run_text
        from nnctl.runs import RunDir

        path = self.path / RunDir.CONFIG
        try:
            data, _ = load_yaml(read_run_text(path), str(path))
        except (OSError, ValueError) as exc:
            raise RunDirError(f"{path}: cannot read it ({exc})") from None
        return data

    @property
    def metrics(self) -> list[dict]:
        """metrics.csv: one dict per epoch, numbers as floats (epoch as int), a missing value as None."""
        from nnctl.files import read_csv_rows
        from nnctl.runs import RunDir

        path = self.path / RunDir.METRICS
        try:
            rows = read_csv_rows(path)
        except FileNotFoundError:
            return []
        except ValueError as exc:
            raise RunDirError(f"{path}: damaged ({exc})") from None
        return [{k: int(v) if k == "epoch" and isinstance(v, float) and v.is_integer() else
                 (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in rows]

    def metrics_frame(self):
        """metrics.csv as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.metrics)

    @property
    def task(self) -> str:
        return self._model().task

    @property
    def classes(self) -> list[str] | None:
        """Class names in output order (probability column k is class k); None for regression."""
        return self._model().classes

    @property
    def features(self) -> list[str]:
        """The input columns the model uses, in order: the columns of a 2-D array given to predict."""
        return [c["name"] for c in self._model().columns]

    @property
    def findings(self) -> list[dict]:
        return list(self.summary.get("findings") or [])

    def _model(self):
        from nnctl.evaluate import load_run
        from nnctl.runs import RunDir

        try:
            st = os.stat(self.path / RunDir.WEIGHTS)
            key = (st.st_mtime_ns, st.st_size)
        except OSError:
            key = None
        if self._loaded is None or key != self._loaded_key:  # a resumed run has new weights
            self._loaded, self._loaded_key = load_run(self.path), key
        return self._loaded

    # -- using it
    def predict(self, rows) -> np.ndarray:
        """Predictions for `rows`: class names (str) for classification, values in the original
        units for regression ((n,), or (n, k) for k targets). Rows the run's data.missing: drop policy
        skips get None (classification) or NaN."""
        return predict(self._model(), rows)

    def predict_proba(self, rows) -> np.ndarray:
        """Class probabilities (n, k), columns in `classes` order."""
        return predict_proba(self._model(), rows)

    def evaluate(self, data=None) -> dict:
        """What `nnctl eval --json` prints: on the run's test split (data=None, written to
        eval.json), on a data file (a path), or on rows in memory that include the target column."""
        from nnctl.evaluate import evaluate_run, score_rows

        if data is None or isinstance(data, (str, os.PathLike)):
            return evaluate_run(self.path, data)
        loaded = self._model()
        inp = encode_rows(loaded, data, need_target=True)
        return {"run_dir": str(self.path), "name": loaded.spec.name, "task": loaded.task, "split": "rows",
                "source": MEMORY, "metrics": score_rows(loaded, inp.X, inp.y), "notes": inp.notes}


# ------------------------------------------------------------------------------------ rows in, predictions out
def encode_rows(loaded, rows, need_target: bool = False):
    """In-memory rows encoded as the run's training data was (roles.encode_input); notes are warned."""
    from nnctl.data.frames import to_arrow
    from nnctl.data.roles import encode_input

    names = None
    if not _named(rows):  # a 2-D array: the training file's layout, or the model's features in order
        names = array_columns(loaded, rows, need_target)
    arrow = to_arrow(rows, names, label=MEMORY)
    inp = encode_input(Path(MEMORY), loaded.spec.data, loaded.columns, loaded.target_name, loaded.classes,
                       need_target, loaded.id_name, loaded.file_columns, rows=arrow)
    for note in inp.notes:
        warnings.warn(note, NnctlNote, stacklevel=_caller_level())
    return inp


def _caller_level() -> int:
    """The stacklevel that points a warning at the first frame outside nnctl (the user's line)."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def array_columns(loaded, rows, need_target: bool) -> list[str]:
    """The column names of a 2-D array given to predict/evaluate: the training data's own layout
    (every column, the target where it was) when the array has that many columns, else the model's
    features in order, plus the target last for evaluate."""
    features = [c["name"] for c in loaded.columns]
    width = np.shape(rows)[1] if np.ndim(rows) == 2 else None
    layout = list(loaded.file_columns or [])
    target = loaded.target_name
    if layout and width == len(layout):
        return layout
    if layout and not need_target and target in layout and width == len(layout) - 1:
        return [c for c in layout if c != target]
    return [*features, target] if need_target and target else features


def _named(rows) -> bool:
    from collections.abc import Mapping

    from nnctl.data.frames import is_frame

    return is_frame(rows) or isinstance(rows, Mapping)


def logits(loaded, rows):
    """(logits of the kept rows, the kept row numbers, the number of rows given)."""
    inp = encode_rows(loaded, rows)
    Z = loaded.logits(inp.X, lambda r: f"{MEMORY}, row {int(inp.rows[r]) + 1}")
    return Z, inp.rows, inp.table.n_rows


def predict(loaded, rows) -> np.ndarray:
    Z, kept, n = logits(loaded, rows)
    if loaded.task == "classification":
        labels = np.array(loaded.classes, dtype=object)[loaded.model.loss.predict(Z)]
        return _spread(labels, kept, n, None)
    values = loaded.values(Z)
    out = _spread(values, kept, n, np.nan)
    return out[:, 0] if out.shape[1] == 1 else out


def predict_proba(loaded, rows) -> np.ndarray:
    if loaded.task != "classification":
        raise DataError("predict_proba applies to classification runs; this run is a regression (use predict)")
    if not loaded.model.loss.has_proba:
        raise DataError(f"probabilities are not available for this run: its loss ({loaded.spec.train.loss}) gives "
                        f"a score and a class, not a probability (train with bce or cross_entropy)")
    Z, kept, n = logits(loaded, rows)
    P = loaded.model.loss.output(Z).astype(np.float64)
    if P.shape[1] == 1:  # one sigmoid unit: the probability of the second class
        P = np.hstack([1.0 - P, P])
    return _spread(P, kept, n, np.nan)


def _spread(values: np.ndarray, kept: np.ndarray, n: int, fill) -> np.ndarray:
    """`values` for the kept rows placed among `n` rows, `fill` for the rows skipped."""
    if len(kept) == n:
        return values
    out = np.empty((n, *values.shape[1:]), dtype=values.dtype)
    out[...] = fill
    out[kept] = values
    return out
