"""Cost of `train.log_steps` (steps.csv) on the W2 workload of diagnostics_overhead.py.

Whole `train_run` sessions (run directory, flushes, checkpoints, steps.csv written whole), with
and without log_steps, interleaved, one BLAS thread; prints the median wall time per epoch.

    python -m benchmarks.steps_overhead [--rounds 5] [--epochs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from benchmarks.diagnostics_overhead import w2_config


def seconds_per_epoch(log_steps: bool, epochs: int, runs_dir: str) -> float:
    from nnctl.config.load import load_spec
    from nnctl.training.session import train_run

    config = w2_config(True, epochs)
    config["train"]["log_steps"] = log_steps
    spec = load_spec(data=config)
    t0 = time.perf_counter()
    train_run(spec, runs_dir)
    return (time.perf_counter() - t0) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), tempfile.TemporaryDirectory() as runs:
        seconds_per_epoch(True, 1, runs)  # warm-up
        on, off = [], []
        for _ in range(args.rounds):
            off.append(seconds_per_epoch(False, args.epochs, runs))
            on.append(seconds_per_epoch(True, args.epochs, runs))
    m_on, m_off = statistics.median(on), statistics.median(off)
    print(f"W2 s/epoch (whole train_run, diagnostics on), median of {args.rounds} rounds x {args.epochs} epochs")
    print(f"  log_steps off: {m_off:.4f}")
    print(f"  log_steps on:  {m_on:.4f}")
    print(f"  overhead: {100 * (m_on / m_off - 1):+.1f}%")


if __name__ == "__main__":
    main()
