"""NNClassifier.fit against `nnctl train` and scikit-learn's MLPClassifier, on W2's data, in one run.

    python -m benchmarks.sklearn_fit                 # 5 epochs, 3 rounds
    python -m benchmarks.sklearn_fit --epochs 10 --rounds 5

W2 (benchmarks/run.py): 20,000 rows x 64 features, 10 classes, hidden (128, 64), ReLU, Adam at
1e-3, batches of 64, float32 in nnctl. The three take turns in every round (rotated order, so
machine noise hits them alike); the median wall time of each is reported, and the ratios the
issue sets: NNClassifier.fit / nnctl train <= 1.1 and NNClassifier.fit / MLPClassifier.fit <= 0.5.

- `nnctl train`: the same rows as a Parquet file and a config file, trained by the CLI's code path
  in this process (nnctl.train: read the file, train, write the run directory).
- NNClassifier.fit(X, y): the same config as parameters, the rows as arrays; no files.
- MLPClassifier(hidden_layer_sizes=(128, 64), solver="adam", learning_rate_init=1e-3,
  batch_size=64, max_iter=epochs, tol=0, n_iter_no_change=epochs + 1) in float64 (its only dtype
  for arrays given as float64).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.datasets import make_classification
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    import nnctl
    from nnctl.sklearn import NNClassifier

    X, y = make_classification(n_samples=20000, n_features=64, n_informative=32, n_redundant=0, n_classes=10,
                               random_state=0)
    tmp = Path(tempfile.mkdtemp(prefix="nnctl-bench-"))
    names = [f"x{j}" for j in range(X.shape[1])]
    pq.write_table(pa.table({**{n: X[:, j] for j, n in enumerate(names)}, "target": y}), tmp / "w2.parquet")
    config = {"seed": 0, "data": {"source": str(tmp / "w2.parquet"), "task": "classification",
                                  "split": {"val": 0.0, "test": 0.0}},
              "model": {"hidden": [128, 64], "activation": "relu"}, "optimizer": {"name": "adam", "lr": 1e-3},
              "train": {"epochs": args.epochs, "batch_size": 64}}
    params = dict(hidden=(128, 64), activation="relu", optimizer="adam", lr=1e-3, epochs=args.epochs, batch_size=64)

    def run_cli():
        return nnctl.train(config, runs_dir=tmp / "runs")

    def run_estimator():
        return NNClassifier(**params).fit(X, y)

    def run_sklearn():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return MLPClassifier(hidden_layer_sizes=(128, 64), solver="adam", learning_rate_init=1e-3, batch_size=64,
                                 max_iter=args.epochs, tol=0.0, n_iter_no_change=args.epochs + 1,
                                 random_state=0).fit(X, y)

    engines = {"nnctl train": run_cli, "NNClassifier.fit": run_estimator, "MLPClassifier.fit": run_sklearn}
    times: dict[str, list[float]] = {k: [] for k in engines}
    with threadpool_limits(1, user_api="blas"):
        run_estimator()  # warm-up: imports, caches
        for r in range(args.rounds):
            order = list(engines)[r % 3:] + list(engines)[:r % 3]
            for name in order:
                t0 = time.perf_counter()
                engines[name]()
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"W2: 20,000 x 64, hidden (128, 64), {args.epochs} epochs, 1 BLAS thread, {args.rounds} rounds (median)")
    for k, v in med.items():
        print(f"  {k:18s} {v:7.3f} s   ({', '.join(f'{t:.3f}' for t in times[k])})")
    vs_train = med["NNClassifier.fit"] / med["nnctl train"]
    vs_sklearn = med["NNClassifier.fit"] / med["MLPClassifier.fit"]
    print(f"  NNClassifier.fit / nnctl train       = {vs_train:.2f}  (target <= 1.1)")
    print(f"  NNClassifier.fit / MLPClassifier.fit = {vs_sklearn:.2f}  (target <= 0.5)")


if __name__ == "__main__":
    main()
