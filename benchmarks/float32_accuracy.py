"""float32 against float64 training on every example config (target: float32 training reaches the
same accuracy as float64 on the example configs).

Trains each `configs/*.yaml` twice in-process, `train.dtype: float32` and `float64`, same seed (so
the same split, initial weights and batches), and prints the validation metric of the weights each
run ends with (the final epoch's, or the best epoch's when early stopping restores it). A config passes when
the two differ by at most `--tolerance` (default: one validation row's worth of accuracy, or 0.01
of r2). Exit status 1 if any config fails.

    python -m benchmarks.float32_accuracy [--configs moons,iris] [--tolerance 0.01]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks import example_configs


def final_metric(config: Path, dtype: str) -> tuple[str, float, int, str]:
    """(metric name, value, validation rows, status) of one training run."""
    from nnctl.build import prepare
    from nnctl.config.load import load_spec
    from nnctl.training.loop import Trainer

    spec = load_spec(config, [f"train.dtype={dtype}", "train.diagnostics=false"])
    prepared = prepare(spec)
    result = Trainer(prepared).fit()
    task = prepared.dataset.task
    name = "val_accuracy" if task == "classification" else "val_r2"
    # the metric of the weights the run ends with: the last epoch's, or the restored best epoch's
    epoch = result.weights_epoch if result.weights_epoch is not None else result.rows[-1]["epoch"]
    row = next(r for r in result.rows if r["epoch"] == epoch)
    return name, float(row[name]), len(prepared.y["val"]), result.status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", help="comma-separated config names (default: every configs/*.yaml)")
    parser.add_argument("--tolerance", type=float, help="largest allowed difference (default: 1 val row / 0.01)")
    args = parser.parse_args(argv)
    paths = example_configs(args.configs)
    print(f"{'config':<15} {'metric':<13} {'float32':>8} {'float64':>8} {'diff':>8}  verdict   (seconds)")
    failed = 0
    for path in paths:
        t0 = time.perf_counter()
        name, v32, n_val, status32 = final_metric(path, "float32")
        _, v64, _, status64 = final_metric(path, "float64")
        tol = args.tolerance if args.tolerance is not None else (1.0 / n_val + 1e-9 if "accuracy" in name else 0.01)
        ok = abs(v32 - v64) <= tol
        failed += not ok
        statuses = status32 if status32 == status64 else f"{status32}/{status64}"
        print(f"{path.stem:<15} {name:<13} {v32:8.4f} {v64:8.4f} {v32 - v64:+8.4f}  {'same' if ok else 'DIFFERS'}"
              f"      ({time.perf_counter() - t0:.1f}; {statuses})", flush=True)
    print(f"{len(paths) - failed} of {len(paths)} configs: float32 reaches float64's metric")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
