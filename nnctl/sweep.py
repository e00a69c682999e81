"""Sweeps: many trials of one config, run as separate processes (or on a Dask cluster).

`new_sweep` expands `--grid`, `--random`/`--space` and `--seeds` (or a `sweep:` block in the YAML)
into trials, each a set of `--set` overrides plus a seed, and checks each one's config up front.
`resume_sweep` decides which trials of an earlier sweep run again. `run_sweep` runs them:
`run_local` (sweep_local.py) in `jobs` persistent worker processes (sweep_worker.py), each training
trial after trial with one BLAS thread so trials do not fight over cores; `run_dask` sends them to
a Dask cluster and copies each run dir back. All trials of a sweep live in one folder with a `sweep.json` manifest
(the command, every trial's overrides, run dir and status), rewritten whole after every trial, so
`--resume` can rerun what is missing or failed. A failed trial never stops the others.

Every trial runs exactly once, whatever is killed when: one process at a time works on a sweep
(`lock_sweep`), a worker stops its trial when its sweep process dies (see sweep_worker.py), and a
trial's run dir, found by name, says what became of it, not the manifest or an exit code.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl.errors import ConfigError, NnctlError, RunDirError, TrainingFailed
from nnctl.files import read_run_text, write_json
from nnctl.metrics import TASK_METRIC
from nnctl.runs import FINISHED, RunDir, RunLock, lock_holder, lock_is_held, read_summary

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
    rung: int | None = None  # successive halving: the last rung it was promoted to (0: every trial)
    epochs: int | None = None  # the epochs it is to reach (halving's rungs); None: the config's train.epochs

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
                "metric": self.metric, "rung": self.rung, "epochs": self.epochs}


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
    lock: RunLock | None = None  # held by this process and its worker processes while the sweep runs
    halving: dict | None = None  # --halving: {"eta", "rungs" (epochs of each), "counts" (trials in each)}
    search: dict | None = None  # --search tpe: {"method", "n", "space", "seed"} (sweep_tpe.py); None: random

    def save(self) -> None:
        write_json(self.path / MANIFEST, {
            "config": str(self.config), "command": self.command, "jobs": self.jobs, "dask": self.dask,
            "halving": self.halving, "search": self.search, "trials": [t.as_dict() for t in self.trials],
            "counts": {s: sum(t.status == s for t in self.trials) for s in {t.status for t in self.trials}},
        })

    @classmethod
    def load(cls, path: Path) -> Sweep:
        file = Path(path) / MANIFEST
        try:  # a sweep folder is data like a run dir: bounded, no symbolic links, checked types
            doc = json.loads(read_run_text(file))
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            trials = [_trial(t, i) for i, t in enumerate(_typed(doc, "trials", list))]
            if len({t.id for t in trials}) != len(trials):
                raise ValueError("two trials have the same id")
            command = _typed(doc, "command", list)
            jobs = _typed(doc, "jobs", int, 1)
            if jobs < 1 or not all(isinstance(c, str) for c in command):
                raise ValueError("'jobs' or 'command' has the wrong type")
            return cls(Path(path).resolve(), Path(_typed(doc, "config", str)), command, trials, jobs,
                       _typed(doc, "dask", (str, type(None)), None),  # (the halving record: sweep_halving checks it)
                       halving=_typed(doc, "halving", (dict, type(None)), None),
                       search=_typed(doc, "search", (dict, type(None)), None))  # (sweep_tpe checks it)
        except FileNotFoundError:
            raise RunDirError(f"{path}: not a sweep folder (no {MANIFEST})") from None
        except (ValueError, RecursionError) as exc:
            raise RunDirError(f"{file}: damaged ({str(exc)[:200]})") from None


def _typed(doc: dict, key: str, kind, default=..., where: str = ""):
    """doc[key] if it has type `kind`; ValueError naming the key if not."""
    value = doc.get(key, default)
    if value is ... or isinstance(value, bool) or not isinstance(value, kind):  # no field is a bool
        raise ValueError(f"{where}{key!r} is missing or not of the right type")
    return value


def _trial(t, i: int) -> Trial:
    """The i-th trial of the manifest, every field type-checked."""
    if not isinstance(t, dict):
        raise ValueError(f"trial {i} is {type(t).__name__}, not an object")
    number, none, where = (int, float), type(None), f"trial {i}: "
    trial = Trial(_typed(t, "id", int, where=where), _typed(t, "overrides", dict, where=where),
                  _typed(t, "seed", int, where=where), _typed(t, "status", str, where=where),
                  _typed(t, "run_dir", (str, none), None, where), _typed(t, "error", str, "", where),
                  _typed(t, "seconds", (*number, none), None, where), _typed(t, "metric", (*number, none), None, where),
                  _typed(t, "rung", (int, none), None, where), _typed(t, "epochs", (int, none), None, where))
    if min(trial.id, trial.rung or 0, (trial.epochs or 1) - 1) < 0 or not all(isinstance(k, str)
                                                                            for k in trial.overrides):
        raise ValueError(f"{where}a negative 'id', 'rung' or 'epochs', or an 'overrides' key that is not a string")
    return trial


def create_sweep_dir(runs_dir: Path, name: str) -> Path:
    """runs/<name>-sweep-<stamp>-<hex>/, exclusive like a run dir; absolute, so the run dirs the
    manifest records stay valid from any working directory."""
    return RunDir.create(Path(runs_dir).resolve(), f"{name}-sweep").path


def final_metric(summary: dict) -> float | None:
    """The final validation metric of a run's summary (accuracy or r2, by its task)."""
    final = summary.get("final") or {}
    return final.get(f"val_{TASK_METRIC.get(summary.get('task'), 'accuracy')}")


def new_sweep(config: Path, grid: list[str], space: list[str], n_random: int, seeds: int | None,
              jobs: int, runs_dir: Path, name: str | None, dask: str | None, command: list[str],
              halving: int | None = None, min_epochs: int | None = None, search: str = "random") -> Sweep:
    """Plan a sweep of `config` (CLI options over its `sweep:` block) and create its folder.

    Every trial's config is checked now: a bad value fails its trial up front, with the message,
    and the other trials still run. `halving` (ETA) and `min_epochs`: successive halving, see
    sweep_halving.py. `search="tpe"`: the trials are proposed while the sweep runs (sweep_tpe.py);
    one point of the space is checked now."""
    from nnctl.config.load import load_spec
    from nnctl.config.spec import plain
    from nnctl.sweep_halving import halving_plan
    from nnctl.sweep_tpe import search_plan

    spec = load_spec(config)
    block = plain(spec.sweep) if spec.sweep is not None else {}
    g = {k: (v if isinstance(v, list) else [v]) for k, v in block.get("grid", {}).items()}
    g.update(parse_grid(grid))
    sp = parse_space([f"{k}={v}" for k, v in block.get("space", {}).items()])
    sp.update(parse_space(space))
    n, k = n_random or block.get("random", 0), seeds or block.get("seeds", 1)
    record = search_plan(search, g, sp, n, k, halving, spec.seed, config)
    trials = plan(g, sp, n, k, spec.seed) if record is None else []
    for t in trials:
        try:
            load_spec(config, [a for a in t.set_args() if a != "--set"], seed=t.seed)
        except NnctlError as exc:
            t.status, t.error = "failed", str(exc)
    plan_halving = halving_plan(spec, trials, halving, min_epochs)  # None without --halving
    folder = create_sweep_dir(runs_dir, name or spec.name)
    sweep = Sweep(folder, config.resolve(), command, trials, jobs, dask, lock_sweep(folder), plan_halving, record)
    sweep.save()
    return sweep


ORPHAN_WAIT = 60.0  # seconds a resume waits for the trials of a killed sweep to checkpoint and stop


def lock_sweep(folder: Path, notice: Callable[[str], None] | None = None) -> RunLock:
    """An exclusive flock on SWEEP/.lock, held while the sweep runs; TrainingFailed (exit 1) at once
    if another live process holds it (two resumes of one sweep would run its trials twice).

    The worker processes inherit the lock, so it is free only once the sweep and all its trials have
    ended. If its holder was killed (SIGKILL: no chance to stop its trials), the workers still hold
    it while they stop their trials on their own; we wait up to ORPHAN_WAIT seconds for them, saying so with
    `notice`, so that no trial is started again while its first process still runs."""
    deadline = time.monotonic() + ORPHAN_WAIT
    while True:
        try:
            # a moment's wait: a holder that has just taken the lock may not have written its pid yet
            return RunLock.acquire(RunDir(folder), wait=0.2, clean_depth=0)
        except TrainingFailed:
            holder = lock_holder(folder / RunLock.NAME)
            if holder is None or _alive(holder):
                raise
            if time.monotonic() > deadline:
                raise TrainingFailed(f"{folder}: the trials of the killed sweep process (pid {holder['pid']}) have "
                                     f"not stopped after {ORPHAN_WAIT:.0f} s; stop them, then resume again") from None
            if notice is not None:
                notice(f"{folder}: waiting (up to {ORPHAN_WAIT:.0f} s) for the trials of the killed sweep process "
                       f"(pid {holder['pid']}) to checkpoint and stop")
                notice = None
            time.sleep(0.1)


def _alive(holder: dict) -> bool:
    """Is the process that wrote this lock holder record still running? (Assumed so on another host.)"""
    import socket

    if holder.get("host") != socket.gethostname() or holder["pid"] <= 0:
        return True
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # EPERM: it exists, owned by someone else
        return True
    return True


def resume_sweep(path: Path, jobs: int | None, dask: str | None,
                 notice: Callable[[str], None] | None = None) -> tuple[Sweep, list[Trial]]:
    """An earlier sweep, locked (see lock_sweep), and the trials to run again (see _must_run)."""
    Sweep.load(path)  # a folder that is not a sweep gets that message, not a .lock file
    lock = lock_sweep(Path(path), notice)
    try:
        sweep = Sweep.load(path)  # again: the process we waited for may have changed it
        sweep.lock = lock
        if sweep.dask:  # a run dir a killed client was putting in place is put back before it is looked for
            from nnctl.sweep_dask import recover_installs

            recover_installs(sweep.path)
        todo = [t for t in sweep.trials if _must_run(sweep.path, t)]
    except BaseException:
        lock.release()
        raise
    sweep.jobs = jobs or sweep.jobs
    sweep.dask = dask or sweep.dask
    sweep.save()
    return sweep, todo


def _must_run(folder: Path, t: Trial) -> bool:
    """Update `t` from its run dir and say whether it must run again. Its summary.json decides, not
    the manifest (which a killed sweep left saying "running", or "failed" for a trial that finished
    as it was stopped): a finished or diverged run is recorded and kept (a diverged one would diverge
    again); an interrupted one is resumed in place; a failed or unreadable one is renamed out of
    compare's way (hidden names are skipped) and the trial trained again, as one without a run dir."""
    run = trial_dir(folder, t)
    status, summary = run_state(run) if run else (None, {})
    if status == "running":  # someone trains in it by hand (nnctl resume): running it too would clash
        pid = (lock_holder(run / RunLock.NAME) or {}).get("pid", "?")
        raise TrainingFailed(f"{run}: in use by another nnctl process (pid {pid}); wait for it to finish, then "
                             f"resume the sweep again")
    if status in FINISHED or status == "diverged":
        t.status, t.run_dir, t.metric = status, str(run), final_metric(summary)
        t.error = t.error if status == "diverged" else ""
        return False
    if run is None and t.status == "diverged":
        return False
    if run is not None and status != "interrupted":
        try:
            run.rename(run.with_name(f".failed-{run.name}"))
        except OSError as exc:
            raise RunDirError(f"{run}: cannot rename the failed run out of the way ({exc.strerror})") from None
        run = None
    t.status, t.run_dir = ("interrupted", str(run)) if run else ("pending", None)
    return True


def trial_dir(folder: Path, trial: Trial) -> Path | None:
    """The trial's run dir, `<name>-<stamp>-<hex>` in the sweep folder, found by name: a sweep killed
    while the trial ran never learned it. If there are several (older nnctl versions could leave
    two), the one the manifest names, else the newest."""
    found = sorted(p for p in Path(folder).glob(f"{trial.name}-*") if p.is_dir() and not p.is_symlink())
    recorded = [p for p in found if trial.run_dir and p.name == Path(trial.run_dir).name]
    return (recorded or found or [None])[-1]


def run_state(run: Path) -> tuple[str | None, dict]:
    """What a trial's run dir says became of it, and its summary. The status in summary.json is
    the truth, whatever its process's exit code; "running" without a live process holding the run
    (killed), or no summary but a config.yaml (killed during set-up) are "interrupted": resume
    continues them. None: nothing usable (a damaged summary, or not even a config)."""
    try:
        summary = read_summary(RunDir(run))
    except (NnctlError, OSError):
        return None, {}
    if summary is None:
        return ("interrupted" if (run / RunDir.CONFIG).is_file() else None), {}
    status = str(summary.get("status"))
    if status == "running" and not lock_is_held(run):
        status = "interrupted"
    return status, summary


def _run_status(run_dir: Path) -> str | None:
    """The status of a run dir (see run_state), or None if it has nothing usable."""
    return run_state(Path(run_dir))[0]


def run_sweep(sweep: Sweep, todo: list[Trial], on_update: Callable[[Trial], None]) -> None:
    """Run `todo` (with --halving: rung after rung, see sweep_halving.py). SIGTERM stops a sweep as
    Ctrl-C does: the running trials checkpoint, and TrainingFailed (exit 1) says how to continue.
    The manifest is saved either way."""
    import signal

    def on_term(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        if sweep.halving:
            from nnctl.sweep_halving import run_halving

            run_halving(sweep, on_update)
        elif sweep.search is not None:
            from nnctl.sweep_tpe import run_search

            run_search(sweep, todo, on_update)
        elif sweep.dask:
            from nnctl.sweep_dask import run_dask

            run_dask(sweep, todo, sweep.dask, on_update)
        else:
            from nnctl.sweep_local import run_local

            run_local(sweep, todo, on_update)
    except KeyboardInterrupt:
        raise TrainingFailed(f"sweep interrupted; running trials were checkpointed. Continue with: "
                             f"nnctl sweep --resume {sweep.path}") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        sweep.save()
