"""Inference on 100k in-memory rows: nnctl's own compute path against the exported ONNX graph.

For each table it trains a small run (5 epochs on 3,000 rows), exports it with `nnctl export`, then
times on the same 100k rows, interleaved round by round:

  (a) nnctl: the in-memory columns as the Python API takes them (nnctl.api.logits: Arrow, the
      run's encoding with its missing-value policy: imputation, one-hot, date parts; then
      LoadedRun.logits: preprocessing and network) and the output function: labels and
      probabilities, what predict computes, without reading or writing files;
  (b) onnxruntime: session.run on the same columns (float32 numbers, strings) fetching `label` and
      `probabilities`: the graph does all of it. (Creating the session, once, is not timed.)

Tables: `mixed`: 3 numeric columns (5% missing), a categorical one (a rare level), a date (2%
missing), imputed with indicators, network 64-32 relu, 3 classes; `wide`: 64 numeric columns
(digits-like), network 64-32 relu, 10 classes. For each thread setting (1: one BLAS and one
onnxruntime thread; 0: both libraries' defaults) it prints the median and the best time of each,
their ratio, and the largest probability difference.

    python -m benchmarks.onnx_inference [--rows 100000] [--rounds 9] [--threads 1,0] [--tables mixed,wide]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

COLORS = ["red", "green", "blue", "black", "white"]


def mixed_columns(n: int, seed: int) -> dict[str, np.ndarray]:
    """n rows: three numbers (5% missing), a color (one rare level), a date (2% missing)."""
    rng = np.random.default_rng(seed)
    cols = {}
    for name, scale in (("width", 1.0), ("height", 10.0), ("weight", 100.0)):
        v = rng.normal(0, scale, n).astype(np.float32)
        v[rng.random(n) < 0.05] = np.nan
        cols[name] = v
    color = np.array(COLORS, dtype=object)[rng.integers(0, len(COLORS), n)]
    color[rng.random(n) < 0.002] = "violet"  # rare: shares the "other" column
    cols["color"] = color
    days = np.datetime64("2018-01-01") + rng.integers(0, 5 * 365, n)
    dates = np.datetime_as_string(days).astype(object)
    dates[rng.random(n) < 0.02] = ""
    cols["date"] = dates
    return cols


def mixed_labels(cols: dict[str, np.ndarray]) -> np.ndarray:
    score = np.nan_to_num(cols["width"]) + np.nan_to_num(cols["height"]) / 10 + (cols["color"] == "red")
    return np.where(score > 0.5, "yes", np.where(score > -0.5, "maybe", "no"))


def wide_columns(n: int, seed: int) -> dict[str, np.ndarray]:
    """n rows of 64 pixel-like numbers, 0-16."""
    rng = np.random.default_rng(seed)
    return {f"p{j}": rng.integers(0, 17, n).astype(np.float32) for j in range(64)}


def wide_labels(cols: dict[str, np.ndarray]) -> np.ndarray:
    pixels = np.column_stack(list(cols.values()))
    return pixels[:, :10].argmax(axis=1).astype(str)


TABLES = {"mixed": (mixed_columns, mixed_labels, {"missing": "impute", "impute": {"indicator": True},
                                                  "categorical": {"min_frequency": 10}}),
          "wide": (wide_columns, wide_labels, {})}


def train(folder: Path, table: str = "mixed") -> Path:
    """Write a 3,000-row CSV of the table and train a 2-hidden-layer classifier on it; returns the run dir."""
    import csv

    from nnctl.config.load import load_spec
    from nnctl.training.session import train_run

    make, labels, data = TABLES[table]
    cols = make(3000, 0)
    y = labels(cols)
    path = folder / f"{table}.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*cols, "label"])
        for i in range(len(y)):
            w.writerow([*("" if isinstance(v, float) and np.isnan(v) else v
                          for v in (c[i].item() if isinstance(c[i], np.generic) else c[i] for c in cols.values())),
                        y[i]])
    config = {"data": {"source": str(path), "target": "label", **data},
              "model": {"hidden": [64, 32], "activation": "relu"},
              "optimizer": {"name": "adam", "lr": 0.003}, "train": {"epochs": 5}}
    return train_run(load_spec(data=config), folder / "runs").run.path


def nnctl_compute(loaded, cols: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """What predict computes, for in-memory rows as the Python API takes them (nnctl.api: the columns
    through Arrow into a Table, encode_input with the run's missing-value policy, LoadedRun.logits),
    then the labels and probabilities."""
    from nnctl.api import logits

    scores, _, _ = logits(loaded, cols)
    labels = np.array(loaded.classes, dtype=object)[loaded.model.loss.predict(scores)]  # as nnctl.api.predict
    return list(labels), loaded.model.loss.output(scores)


def measure(loaded, session, cols: dict[str, np.ndarray], rounds: int) -> tuple[list[float], list[float], float]:
    """Seconds per round of (a) and (b), interleaved, and the largest probability difference."""
    feeds = {k: v.reshape(-1, 1) for k, v in cols.items()}
    labels, expected = nnctl_compute(loaded, cols)  # warm-up, and the reference
    got_labels, got = session.run(["label", "probabilities"], feeds)
    assert np.mean(np.array(got_labels) == np.array(labels)) > 0.999  # ties at the boundary may differ
    t_nnctl, t_onnx = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        nnctl_compute(loaded, cols)
        t_nnctl.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        session.run(["label", "probabilities"], feeds)
        t_onnx.append(time.perf_counter() - t0)
    return t_nnctl, t_onnx, float(np.abs(expected - got).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", default="1,0", help="thread settings to measure, comma-separated "
                                                         "(0: the libraries' defaults)")
    parser.add_argument("--tables", default="mixed,wide", help="tables to measure: mixed, wide")
    args = parser.parse_args()
    import onnxruntime as ort
    from threadpoolctl import threadpool_limits

    from nnctl.evaluate import load_run
    from nnctl.export import export_onnx

    print(f"{args.rows:,} rows in memory; median (best) of {args.rounds} rounds")
    for table in args.tables.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = train(Path(tmp), table)
            model_path, _ = export_onnx(run_dir)
            loaded = load_run(run_dir)
            cols = TABLES[table][0](args.rows, 1)
            for threads in (int(t) for t in args.threads.split(",")):
                options = ort.SessionOptions()
                if threads:
                    options.intra_op_num_threads = threads
                session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
                limits = threadpool_limits(limits=threads, user_api="blas") if threads else None
                try:
                    t_nnctl, t_onnx, diff = measure(loaded, session, cols, args.rounds)
                finally:
                    if limits is not None:
                        limits.unregister()
                a, b = statistics.median(t_nnctl), statistics.median(t_onnx)
                print(f"table {table}, threads: {threads or 'library defaults'}")
                print(f"  nnctl (table, encoding, logits, labels, probabilities): {a * 1000:7.1f} ms "
                      f"({min(t_nnctl) * 1000:.1f})")
                print(f"  onnxruntime session.run (label, probabilities):         {b * 1000:7.1f} ms "
                      f"({min(t_onnx) * 1000:.1f})")
                print(f"  nnctl / onnx: {a / b:.2f}x ({min(t_nnctl) / min(t_onnx):.2f}x best to best); "
                      f"max |probability difference| {diff:.1e}")


if __name__ == "__main__":
    main()
