"""Cost of `train.diagnostics` on the medium workload (target: under 5% of training time).

W2: make_classification(20000 rows, 64 features, 32 informative, 10 classes), 64-128-64-10 relu,
minibatch 64, adam 1e-3. Runs with and without diagnostics interleaved, several rounds, one BLAS
thread, and prints the median wall time per epoch of each and the overhead.

    python -m benchmarks.diagnostics_overhead [--rounds 5] [--epochs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time


def w2_config(diagnostics: bool, epochs: int) -> dict:
    return {
        "name": "w2", "seed": 0,
        "data": {"source": "sklearn:classification",
                 "options": {"n_samples": 20000, "n_features": 64, "n_informative": 32, "n_redundant": 0,
                             "n_classes": 10},
                 "split": {"val": 0.0, "test": 0.0}},
        "model": {"hidden": [128, 64], "activation": "relu"},
        "optimizer": {"name": "adam", "lr": 1e-3},
        "train": {"epochs": epochs, "gd": "minibatch", "batch_size": 64, "diagnostics": diagnostics},
    }


def seconds_per_epoch(diagnostics: bool, epochs: int) -> float:
    from nnctl.build import prepare
    from nnctl.config.load import load_spec
    from nnctl.training.loop import Trainer

    prepared = prepare(load_spec(data=w2_config(diagnostics, epochs)))
    trainer = Trainer(prepared)
    t0 = time.perf_counter()
    trainer.fit()
    return (time.perf_counter() - t0) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        seconds_per_epoch(True, 1)  # warm-up: imports, data generation, BLAS initialisation
        on, off = [], []
        for _ in range(args.rounds):
            off.append(seconds_per_epoch(False, args.epochs))
            on.append(seconds_per_epoch(True, args.epochs))
    m_on, m_off = statistics.median(on), statistics.median(off)
    print(f"W2 s/epoch, median of {args.rounds} rounds x {args.epochs} epochs, 1 BLAS thread")
    print(f"  diagnostics off: {m_off:.4f}")
    print(f"  diagnostics on:  {m_on:.4f}")
    print(f"  overhead: {100 * (m_on / m_off - 1):+.1f}%")


if __name__ == "__main__":
    main()
