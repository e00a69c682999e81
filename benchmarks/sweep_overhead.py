"""What a local sweep costs beyond its trials' own training, and whether 1,000 tiny trials each run once.

Two sweeps, each one `nnctl sweep` process started as a user would, into a temporary folder:

(a) 48 trials of configs/moons.yaml (60 epochs; 4 learning rates x 2 activations x 6 seeds) with
    `--jobs 2`. The figure is the sweep's wall time over the sum of the trials' own training time
    (summary.json `train_time_s`: the epochs, validation included) divided by the jobs. Also the
    same against the sum of the runs' `wall_time_s` (everything the run does once it has its run
    dir: diagnostics, checkpoints, files), which separates the run's own extra work from the sweep's.
(b) 1,000 trials of a 1-epoch XOR config (`--random 1000` over optimizer.lr) with `--jobs 2`:
    every trial must have completed exactly once (1,000 run dirs, one per trial name, each completed
    after 1 epoch, none resumed), and the per-trial overhead is
    (jobs x wall time - sum of train_time_s) / trials: the worker time a trial costs beyond training,
    the sweep's planning and bookkeeping included. CPU seconds (the sweep and its workers) per trial
    are printed too: on a shared machine they vary less than wall time.

    python -m benchmarks.sweep_overhead               # both (a few minutes)
    python -m benchmarks.sweep_overhead --only a      # or b; --trials-b 200 for a quicker (b)
    python -m benchmarks.sweep_overhead --json

The script imports nothing from nnctl: run it with another checkout on PYTHONPATH to measure that
nnctl's sweeps the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
XOR_1_EPOCH = """name: xor1
data:
  source: sklearn:xor
  options: {n_samples: 400, noise: 0.05}
model: {hidden: [8], activation: tanh}
optimizer: {name: adam, lr: 0.02}
train: {epochs: 1, batch_size: 16}
"""


def sweep(args: list[str], runs: Path) -> tuple[Path, float, float, str]:
    """Run `nnctl sweep ARGS --runs-dir RUNS`; (its folder, wall seconds, CPU seconds of it and its
    children, stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nnctl", "sweep", *args, "--runs-dir", str(runs)],
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"nnctl sweep {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return Path(proc.stdout.strip().splitlines()[-1]), wall, cpu, proc.stderr


def summaries(folder: Path) -> list[dict]:
    return [json.loads((p / "summary.json").read_text()) for p in sorted(folder.iterdir())
            if p.is_dir() and (p / "summary.json").exists()]


def moons(tmp: Path, jobs: int) -> dict:
    args = [str(ROOT / "configs" / "moons.yaml"), "--grid", "optimizer.lr=0.003,0.01,0.02,0.03", "--grid",
            "model.activation=relu,tanh", "--seeds", "6", "--jobs", str(jobs)]
    folder, wall, cpu, _ = sweep(args, tmp / "a")
    runs = summaries(folder)
    assert len(runs) == 48 and all(s["status"] == "completed" for s in runs), [s["status"] for s in runs]
    train = sum(s["train_time_s"] for s in runs)
    own = sum(s["wall_time_s"] for s in runs)
    return {"trials": len(runs), "jobs": jobs, "wall_s": wall, "cpu_s": cpu, "sum_train_time_s": train,
            "sum_run_wall_time_s": own, "ratio_to_train_time": wall / (train / jobs),
            "ratio_to_run_wall_time": wall / (own / jobs), "run_wall_over_train": own / train}


def xor(tmp: Path, jobs: int, n: int) -> dict:
    cfg = tmp / "xor1.yaml"
    cfg.write_text(XOR_1_EPOCH)
    args = [str(cfg), "--random", str(n), "--space", "optimizer.lr=loguniform(1e-3,1e-1)", "--jobs", str(jobs)]
    folder, wall, cpu, _ = sweep(args, tmp / "b")
    trials = json.loads((folder / "sweep.json").read_text())["trials"]
    dirs = sorted(p for p in folder.iterdir() if p.is_dir())
    names = [p.name.split("-")[0] for p in dirs]
    runs = summaries(folder)
    once = (len(trials) == n and all(t["status"] == "completed" for t in trials) and len(dirs) == n
            and sorted(names) == sorted(t["name"] for t in trials) and len(set(names)) == n
            and sorted(t["run_dir"] for t in trials) == sorted(str(d) for d in dirs)
            and all(s["status"] == "completed" and s["epochs_run"] == 1 and not s.get("resumed_from") for s in runs))
    train = sum(s["train_time_s"] for s in runs)
    return {"trials": n, "jobs": jobs, "wall_s": wall, "cpu_s": cpu, "sum_train_time_s": train,
            "exactly_once": once, "run_dirs": len(dirs), "wall_per_trial_ms": 1000 * wall / n,
            "overhead_per_trial_ms": 1000 * (jobs * wall - train) / n, "cpu_per_trial_ms": 1000 * cpu / n,
            "workers": len({s["pid"] for s in runs})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["a", "b"], help="run one of the two sweeps")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--trials-b", type=int, default=1000, help="trials of sweep (b)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    out: dict = {"cores": os.cpu_count(), "load_average_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="nnctl-sweep-bench-") as tmp:
        if args.only in (None, "a"):
            out["a"] = moons(Path(tmp), args.jobs)
        if args.only in (None, "b"):
            out["b"] = xor(Path(tmp), args.jobs, args.trials_b)
    out["load_average_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{out['cores']} cores; load average {out['load_average_before']:.1f} before, "
          f"{out['load_average_after']:.1f} after")
    if "a" in out:
        a = out["a"]
        print(f"(a) {a['trials']} moons trials, --jobs {a['jobs']}: wall {a['wall_s']:.2f} s, CPU {a['cpu_s']:.2f} s; "
              f"sum of train_time_s {a['sum_train_time_s']:.2f} s -> wall / (train / jobs) = "
              f"{a['ratio_to_train_time']:.2f}; sum of the runs' wall_time_s {a['sum_run_wall_time_s']:.2f} s -> "
              f"wall / (run wall / jobs) = {a['ratio_to_run_wall_time']:.2f} (runs' wall / train = "
              f"{a['run_wall_over_train']:.2f})")
    if "b" in out:
        b = out["b"]
        print(f"(b) {b['trials']} one-epoch xor trials, --jobs {b['jobs']}: wall {b['wall_s']:.1f} s, CPU "
              f"{b['cpu_s']:.1f} s, {b['workers']} worker processes; exactly once: {b['exactly_once']} "
              f"({b['run_dirs']} run dirs); per trial: wall {b['wall_per_trial_ms']:.1f} ms, overhead "
              f"(jobs x wall - train) {b['overhead_per_trial_ms']:.1f} ms, CPU {b['cpu_per_trial_ms']:.1f} ms")
    return 0 if out.get("b", {}).get("exactly_once", True) else 1


if __name__ == "__main__":
    sys.exit(main())
