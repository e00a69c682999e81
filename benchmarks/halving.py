"""Successive halving against the plain grid of the same 27 trials, on three example data sets.

For each config, two `nnctl sweep` processes with `--jobs 2`, one after the other, as a user would
run them: the 27-trial grid (3 learning rates x 3 hidden layouts x 3 activations, every trial to
the config's train.epochs), then the same 27 trials with `--halving 3`. Reported: the wall time
of each; the best validation metric of the grid (accuracy of the final weights, over all 27
trials) and the one halving picks (its last rung's trial), with their difference (and the same
for the lowest val_loss, which halving ranks by); and halving's time over the grid's.
Target: halving within 0.01 of the grid's best in at most 40 % of its time.

    python -m benchmarks.halving                  # moons, spiral and digits (about a minute on 2 cores)
    python -m benchmarks.halving --configs moons --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRIDS = {  # 27 trials each
    "moons": ["optimizer.lr=0.001,0.01,0.1", "model.hidden=[8],[16,16],[64,64]", "model.activation=relu,tanh,elu"],
    "spiral": ["optimizer.lr=0.001,0.003,0.01", "model.hidden=[16,16],[32,32],[64,64]",
               "model.activation=relu,tanh,elu"],
    "digits": ["optimizer.lr=0.0005,0.002,0.01", "model.hidden=[64],[128,64],[256,128]",
               "model.activation=relu,tanh,elu"],
}


def sweep(config: Path, grid: list[str], extra: list[str], runs: Path) -> tuple[float, list[dict], dict]:
    """Run one sweep; (wall seconds, its trials from sweep.json, its halving record)."""
    args = [sys.executable, "-m", "nnctl", "sweep", str(config), *[a for g in grid for a in ("--grid", g)],
            "--jobs", "2", "--runs-dir", str(runs), *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    doc = json.loads((Path(proc.stdout.strip().splitlines()[-1]) / "sweep.json").read_text())
    return wall, doc["trials"], doc.get("halving") or {}


def best_val_loss(trial: dict) -> float:
    """The lowest val_loss of the trial's run (what halving ranks by)."""
    summary = json.loads((Path(trial["run_dir"]) / "summary.json").read_text())
    return summary["best"]["val_loss"]


def compare(name: str, tmp: Path) -> dict:
    config = ROOT / "configs" / f"{name}.yaml"
    grid_wall, grid, _ = sweep(config, GRIDS[name], [], tmp / f"{name}-grid")
    best = max(grid, key=lambda t: t["metric"])
    half_wall, half, record = sweep(config, GRIDS[name], ["--halving", "3"], tmp / f"{name}-halving")
    top = max(t["rung"] for t in half)
    winner = next(t for t in half if t["rung"] == top)
    return {"config": name, "trials": len(grid), "rungs": record["rungs"], "counts": record["counts"],
            "grid_wall_s": grid_wall, "grid_best": best["metric"], "grid_best_trial": best["overrides"],
            "halving_wall_s": half_wall, "halving_pick": winner["metric"], "halving_pick_trial": winner["overrides"],
            "gap": best["metric"] - winner["metric"], "time_ratio": half_wall / grid_wall,
            "grid_best_val_loss": min(best_val_loss(t) for t in grid), "halving_pick_val_loss": best_val_loss(winner),
            "met": best["metric"] - winner["metric"] <= 0.01 and half_wall <= 0.4 * grid_wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="moons,spiral,digits", help="comma-separated: moons, spiral, digits")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    out = {"load_average_before": os.getloadavg()[0], "results": []}
    with tempfile.TemporaryDirectory(prefix="nnctl-halving-bench-") as tmp:
        for name in args.configs.split(","):
            out["results"].append(compare(name.strip(), Path(tmp)))
    out["load_average_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"load average {out['load_average_before']:.1f} before, {out['load_average_after']:.1f} after")
    for r in out["results"]:
        rungs = ", ".join(f"{n} x {e}" for n, e in zip(r["counts"], r["rungs"]))
        print(f"{r['config']}: grid of {r['trials']} {r['grid_wall_s']:.1f} s, best val accuracy {r['grid_best']:.4f} "
              f"{r['grid_best_trial']}; halving ({rungs} epochs) {r['halving_wall_s']:.1f} s = "
              f"{100 * r['time_ratio']:.0f} % of the grid's time, picks {r['halving_pick']:.4f} "
              f"{r['halving_pick_trial']} (gap {r['gap']:+.4f}); target {'met' if r['met'] else 'MISSED'}. "
              f"Lowest val_loss: grid {r['grid_best_val_loss']:.4f}, halving's pick {r['halving_pick_val_loss']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
