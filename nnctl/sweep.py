"""Sweeps: many trials of one config, run as separate processes (or on a Dask cluster).

`new_sweep` expands `--grid`, `--random`/`--space` and `--seeds` (or a `sweep:` block in the YAML)
into trials, each a set of `--set` overrides plus a seed, and checks each one's config up front.
`resume_sweep` decides which trials of an earlier sweep run again. `run_sweep` runs them:
`run_local` starts each trial as its own `nnctl train` process, `jobs` at a time, each limited to
one BLAS thread so trials do not fight over cores; `run_dask` sends them to a Dask cluster and
copies each run dir back. All trials of a sweep live in one folder with a `sweep.json` manifest
(the command, every trial's overrides, run dir and status), rewritten whole after every trial, so
`--resume` can rerun what is missing or failed. A failed trial never stops the others.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl.errors import ConfigError, NnctlError, RunDirError, TrainingFailed
from nnctl.files import write_json
from nnctl.metrics import TASK_METRIC
from nnctl.runs import FINISHED, RunDir, read_summary

MANIFEST = "sweep.json"


@dataclass
class Trial:
    """One point of the sweep: overrides, a seed, and what became of it."""

    id: int
    overrides: dict[str, object]
    seed: int
    status: str = "pending"  # pending | running | completed | early_stopped | ... | failed | diverged
    run_dir: str | None = None
    error: str = ""
    seconds: float | None = None
    metric: float | None = None

    @property
    def name(self) -> str:
        return f"t{self.id:03d}"

    def set_args(self) -> list[str]:
        out = []
        for key, value in self.overrides.items():
            out += ["--set", f"{key}={yaml_value(value)}"]
        return out

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "overrides": self.overrides, "seed": self.seed,
                "status": self.status, "run_dir": self.run_dir, "error": self.error, "seconds": self.seconds,
                "metric": self.metric}


def yaml_value(value) -> str:
    """A value as YAML flow text, for `--set key=...`."""
    import yaml

    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


# ------------------------------------------------------------------------------------ planning
def split_values(text: str) -> list[str]:
    """'0.1,0.01' -> ['0.1', '0.01']; commas inside [...] or {...} do not split ('[16,16],[32]')."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [v.strip() for v in out if v.strip()]


def parse_grid(items: list[str]) -> dict[str, list]:
    """['optimizer.lr=0.1,0.01', ...] -> {'optimizer.lr': [0.1, 0.01]}."""
    from nnctl.config.yamlio import parse_value

    grid: dict[str, list] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--grid {item!r}: expected KEY=V1,V2,... e.g. --grid optimizer.lr=0.1,0.01")
        key, text = item.split("=", 1)
        values = [parse_value(v, f"--grid {key}") for v in split_values(text)]
        if not values:
            raise ConfigError(f"--grid {item!r}: no values")
        grid[key.strip()] = values
    return grid


_DIST = re.compile(r"^\s*(uniform|loguniform|int|choice)\s*\((.*)\)\s*$")


def parse_space(items: list[str]) -> dict[str, tuple[str, list]]:
    """['optimizer.lr=loguniform(1e-4,1e-1)'] -> {'optimizer.lr': ('loguniform', [1e-4, 0.1])}."""
    from nnctl.config.yamlio import parse_value

    space = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--space {item!r}: expected KEY=DIST, e.g. optimizer.lr=loguniform(1e-4,1e-1)")
        key, text = item.split("=", 1)
        m = _DIST.match(text)
        if not m:
            raise ConfigError(f"--space {key}: {text!r} is not uniform(a,b), loguniform(a,b), int(a,b) or "
                              f"choice(a,b,...)")
        kind, args = m.group(1), [parse_value(v, f"--space {key}") for v in split_values(m.group(2))]
        if kind == "choice":
            if not args:
                raise ConfigError(f"--space {key}: choice() needs at least one value")
        else:
            if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
                raise ConfigError(f"--space {key}: {kind}(a, b) needs two numbers; got {text!r}")
            a, b = args
            if not a < b:
                raise ConfigError(f"--space {key}: {kind}({a}, {b}) needs a < b")
            if kind == "loguniform" and a <= 0:
                raise ConfigError(f"--space {key}: loguniform needs a > 0")
            if kind == "int" and not (float(a).is_integer() and float(b).is_integer()):
                raise ConfigError(f"--space {key}: int(a, b) needs integers")
        space[key.strip()] = (kind, args)
    return space


def draw(space: dict[str, tuple[str, list]], n: int, seed: int) -> list[dict]:
    """`n` random points of `space`, the same for the same seed."""
    rng = np.random.default_rng([seed, 2024])
    points = []
    for _ in range(n):
        point = {}
        for key, (kind, args) in space.items():
            if kind == "uniform":
                point[key] = float(rng.uniform(args[0], args[1]))
            elif kind == "loguniform":
                point[key] = float(math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))))
            elif kind == "int":
                point[key] = int(rng.integers(int(args[0]), int(args[1]), endpoint=True))
            else:
                point[key] = args[int(rng.integers(len(args)))]
        points.append(point)
    return points


MAX_TRIALS = 10_000


def plan(grid: dict[str, list], space: dict[str, tuple[str, list]], n_random: int, seeds: int,
         base_seed: int) -> list[Trial]:
    """Grid points (product) x random points x seed replicates."""
    import math

    if space and not n_random:
        raise ConfigError("--space needs --random N (how many points to draw)")
    count = math.prod(len(v) for v in grid.values()) * max(n_random, 1) * seeds  # before building anything
    if count > MAX_TRIALS:
        raise ConfigError(f"the sweep has {count:,} trials; more than {MAX_TRIALS:,} is surely a mistake")
    grid_points = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())] if grid else [{}]
    random_points = draw(space, n_random, base_seed) if n_random else [{}]
    trials = []
    for g in grid_points:
        for r in random_points:
            for k in range(seeds):
                trials.append(Trial(len(trials), {**g, **r}, base_seed + k))
    return trials


# ------------------------------------------------------------------------------------ the sweep folder
@dataclass
class Sweep:
    path: Path
    config: Path
    command: list[str]
    trials: list[Trial]
    jobs: int
    dask: str | None = None

    def save(self) -> None:
        write_json(self.path / MANIFEST, {
            "config": str(self.config), "command": self.command, "jobs": self.jobs, "dask": self.dask,
            "trials": [t.as_dict() for t in self.trials],
            "counts": {s: sum(t.status == s for t in self.trials) for s in {t.status for t in self.trials}},
        })

    @classmethod
    def load(cls, path: Path) -> Sweep:
        try:
            doc = json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8"))
            trials = [Trial(t["id"], t["overrides"], t["seed"], t["status"], t.get("run_dir"), t.get("error", ""),
                            t.get("seconds"), t.get("metric")) for t in doc["trials"]]
            return cls(Path(path).resolve(), Path(doc["config"]), doc["command"], trials, doc.get("jobs", 1),
                       doc.get("dask"))
        except FileNotFoundError:
            raise RunDirError(f"{path}: not a sweep folder (no {MANIFEST})") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise RunDirError(f"{Path(path) / MANIFEST}: damaged ({exc})") from None


def create_sweep_dir(runs_dir: Path, name: str) -> Path:
    """runs/<name>-sweep-<stamp>-<hex>/, exclusive like a run dir; absolute, so the run dirs the
    manifest records stay valid from any working directory."""
    return RunDir.create(Path(runs_dir).resolve(), f"{name}-sweep").path


def final_metric(summary: dict) -> float | None:
    """The final validation metric of a run's summary (accuracy or r2, by its task)."""
    final = summary.get("final") or {}
    return final.get(f"val_{TASK_METRIC.get(summary.get('task'), 'accuracy')}")


def new_sweep(config: Path, grid: list[str], space: list[str], n_random: int, seeds: int | None,
              jobs: int, runs_dir: Path, name: str | None, dask: str | None, command: list[str]) -> Sweep:
    """Plan a sweep of `config` (CLI options over its `sweep:` block) and create its folder.

    Every trial's config is checked now: a bad value fails its trial up front, with the message,
    and the other trials still run."""
    from nnctl.config.load import load_spec
    from nnctl.config.spec import plain

    spec = load_spec(config)
    block = plain(spec.sweep) if spec.sweep is not None else {}
    g = {k: (v if isinstance(v, list) else [v]) for k, v in block.get("grid", {}).items()}
    g.update(parse_grid(grid))
    sp = parse_space([f"{k}={v}" for k, v in block.get("space", {}).items()])
    sp.update(parse_space(space))
    trials = plan(g, sp, n_random or block.get("random", 0), seeds or block.get("seeds", 1), spec.seed)
    for t in trials:
        try:
            load_spec(config, [a for a in t.set_args() if a != "--set"], seed=t.seed)
        except NnctlError as exc:
            t.status, t.error = "failed", str(exc)
    folder = create_sweep_dir(runs_dir, name or spec.name)
    sweep = Sweep(folder, config.resolve(), command, trials, jobs, dask)
    sweep.save()
    return sweep


def resume_sweep(path: Path, jobs: int | None, dask: str | None) -> tuple[Sweep, list[Trial]]:
    """An earlier sweep and the trials to run again: missing, failed and interrupted ones, and
    finished ones whose run dir is gone. Diverged trials are left alone: they would diverge again.
    A failed attempt's run dir is kept, renamed out of compare's way (hidden names are skipped)."""
    sweep = Sweep.load(path)
    todo = []
    for t in sweep.trials:
        exists = bool(t.run_dir) and Path(t.run_dir).is_dir()
        if (t.status in FINISHED and exists) or t.status == "diverged":
            continue
        if t.status == "failed" and exists:
            old = Path(t.run_dir)
            old.rename(old.with_name(f".failed-{old.name}"))
            t.run_dir = None
        if t.status in FINISHED:  # finished, but its run dir is gone: run it again
            t.run_dir, t.status = None, "pending"
        todo.append(t)
    sweep.jobs = jobs or sweep.jobs
    sweep.dask = dask or sweep.dask
    sweep.save()
    return sweep, todo


def run_sweep(sweep: Sweep, todo: list[Trial], on_update: Callable[[Trial], None]) -> None:
    """Run `todo` locally or on Dask. SIGTERM stops a sweep as Ctrl-C does: the running trials
    checkpoint, and TrainingFailed (exit 1) says how to continue. The manifest is saved either way."""
    import signal

    def on_term(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        if sweep.dask:
            from nnctl.sweep_dask import run_dask

            run_dask(sweep, todo, sweep.dask, on_update)
        else:
            run_local(sweep, todo, on_update)
    except KeyboardInterrupt:
        raise TrainingFailed(f"sweep interrupted; running trials were checkpointed. Continue with: "
                             f"nnctl sweep --resume {sweep.path}") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        sweep.save()


# ------------------------------------------------------------------------------------ running
def trial_env() -> dict[str, str]:
    """One BLAS/OpenMP thread per trial process: N parallel trials then use N cores, not N x cores."""
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS"):
        env[var] = "1"
    return env


def _finish(trial: Trial, code: int, out: str, err: str, seconds: float, sweep_dir: Path | None = None) -> None:
    trial.seconds = seconds
    summary = None
    for line in reversed(out.strip().splitlines()):
        try:
            summary = json.loads(line)
            break
        except ValueError:
            continue
    if summary is not None:
        trial.run_dir = summary.get("run_dir")
        trial.status = summary.get("status", "failed")
        trial.metric = final_metric(summary)
    else:
        last = out.strip().splitlines()[-1] if out.strip() else None
        if last and Path(last).is_dir():
            trial.run_dir = last
        elif trial.run_dir is None and sweep_dir is not None:  # no output at all: find its run dir by name
            found = sorted(Path(sweep_dir).glob(f"{trial.name}-*"))
            trial.run_dir = str(found[-1]) if found else None
        trial.status = "failed" if code != 0 else "completed"
        if code == 1 and trial.run_dir:
            trial.status = _run_status(Path(trial.run_dir)) or "failed"
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    trial.error = lines[-1][len("error: "):] if lines and code != 0 else ""
    if code != 0 and trial.status in FINISHED:
        trial.status = "failed"


def _run_status(run_dir: Path) -> str | None:
    """The status in a run dir's summary.json, or None if it cannot be read."""
    try:
        return str((read_summary(RunDir(run_dir)) or {})["status"])
    except (NnctlError, OSError, KeyError, TypeError):
        return None


def run_local(sweep: Sweep, todo: list[Trial], on_update: Callable[[Trial], None]) -> None:
    """Run trials as `nnctl train` processes, `sweep.jobs` at a time; interrupt-safe."""
    pending = list(todo)
    running: list[tuple[Trial, subprocess.Popen, float]] = []
    env = trial_env()
    try:
        while pending or running:
            while pending and len(running) < sweep.jobs:
                trial = pending.pop(0)
                args = [sys.executable, "-m", "nnctl", "train", str(sweep.config), "--runs-dir", str(sweep.path),
                        "--name", trial.name, "--seed", str(trial.seed), "--quiet", "--json", *trial.set_args()]
                if trial.run_dir and Path(trial.run_dir).is_dir() and trial.status in ("interrupted", "running"):
                    args = [sys.executable, "-m", "nnctl", "resume", trial.run_dir, "--quiet", "--json"]
                # own session: a Ctrl-C in the terminal reaches only this process, which then stops
                # each trial with exactly one SIGTERM (two signals would cut a trial's clean-up short)
                proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                        start_new_session=True)
                trial.status = "running"
                running.append((trial, proc, time.perf_counter()))
                on_update(trial)
            time.sleep(0.02)
            still = []
            for trial, proc, t0 in running:
                if proc.poll() is None:
                    still.append((trial, proc, t0))
                    continue
                out, err = proc.communicate()
                _finish(trial, proc.returncode, out, err, time.perf_counter() - t0, sweep.path)
                sweep.save()
                on_update(trial)
            running = still
    except BaseException:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():  # a second signal must not cut the
            signal.signal(signal.SIGINT, signal.SIG_IGN)             # clean-up short: the manifest
            signal.signal(signal.SIGTERM, signal.SIG_IGN)            # would be left saying "running"
        running = [r for r in running if r[0].status == "running"]  # not the ones already finished
        for _, proc, _ in running:
            proc.terminate()  # each trial checkpoints on SIGTERM and is marked interrupted
        for trial, proc, t0 in running:
            try:
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            _finish(trial, proc.returncode, out, err, time.perf_counter() - t0, sweep.path)
            if trial.status == "failed" and trial.run_dir:
                trial.status = "interrupted"
        sweep.save()
        raise
