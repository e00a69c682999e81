"""Random search against TPE (`nnctl sweep --search tpe`) on the same budget.

For each example config and each of `--repeats` sweep seeds, two sweeps of N trials over the same
space (learning rate log-uniform over 4 decades, hidden layout, activation), `--jobs 2`: random
search and TPE. Reported: the lowest validation loss (the monitored metric both rank by) among the
first 10, 20, ... trials (in proposal order), the median over the seeds, and each sweep's wall time.

    python -m benchmarks.search [--configs moons spiral] [--trials 30] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPACE = ["--space", "optimizer.lr=loguniform(0.0001,1)", "--space", "model.hidden=choice([8],[32],[16,16],[32,32])",
         "--space", "model.activation=choice(relu,tanh,sigmoid)"]


def sweep(config: Path, method: str, n: int, runs: Path) -> tuple[list[float], float]:
    """Run one sweep; (each trial's lowest val_loss in trial order, inf if it has none; wall seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nnctl", "sweep", str(config), "--random", str(n), "--search",
                           method, *SPACE, "--jobs", "2", "--runs-dir", str(runs), "-q"],
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"sweep exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    folder = Path(proc.stdout.strip().splitlines()[-1])
    losses = []
    for t in json.loads((folder / "sweep.json").read_text())["trials"]:
        best = float("inf")
        if t["run_dir"]:
            s = json.loads((Path(t["run_dir"]) / "summary.json").read_text())
            v = (s.get("best") or {}).get("val_loss")
            best = v if isinstance(v, (int, float)) else best
        losses.append(best)
    return losses, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["moons", "spiral"])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    marks = list(range(10, args.trials + 1, 10)) or [args.trials]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            text = (ROOT / "configs" / f"{name}.yaml").read_text()
            for seed in range(args.repeats):
                config = Path(tmp) / f"{name}-{seed}.yaml"
                config.write_text(text.replace("\nseed: 0", f"\nseed: {seed}") if "\nseed: 0" in text
                                  else text + f"\nseed: {seed}\n")
                for method in ("random", "tpe"):  # interleaved: the machine's load hits both alike
                    losses, wall = sweep(config, method, args.trials, Path(tmp) / f"{name}-{method}-{seed}")
                    r = results.setdefault(name, {}).setdefault(method, {"best_at": {m: [] for m in marks},
                                                                         "wall_s": []})
                    for m in marks:
                        r["best_at"][m].append(min(losses[:m]))
                    r["wall_s"].append(wall)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, by in results.items():
        print(f"{name}: lowest val_loss among the first k trials, median over {args.repeats} sweep seeds "
              f"(each seed's value in brackets)")
        for method, r in by.items():
            cells = "  ".join(f"k={m}: {statistics.median(v):.4f} [{', '.join(f'{x:.4f}' for x in v)}]"
                              for m, v in r["best_at"].items())
            print(f"  {method:6s} {cells}  wall {statistics.median(r['wall_s']):.1f} s")


if __name__ == "__main__":
    main()
