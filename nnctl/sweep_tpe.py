"""Model-based search (`nnctl sweep --search tpe --random N --space KEY=DIST ...`).

Random search draws every point before the first trial runs; TPE (Optuna's Tree-structured Parzen
Estimator, extra `nnctl[tpe]`) proposes each trial from the results so far: after a few random
start-up trials it models which values gave good and bad results and samples where good ones are
more likely. The score of a trial is what successive halving ranks by: the best value of the run's
monitored metric (val_loss unless train.early_stopping says otherwise), lower or higher is better
as nnctl.metrics.higher_is_better says; a trial that fails or diverges is a failed Optuna trial.

Trials are proposed one at a time: locally a new one as soon as a worker is free (proposals still
running are "lied" about, Optuna's constant liar, so two workers do not get the same point); on
Dask a batch of `jobs` at a time. sweep.json records the search (`search`: method, N, space,
seed) and every trial proposed so far with its overrides, like any sweep; `--resume` finishes the
trials that were running, tells Optuna every finished one again, and proposes the rest up to N.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from nnctl.errors import ConfigError, NnctlError, RunDirError
from nnctl.metrics import higher_is_better
from nnctl.runs import FINISHED
from nnctl.sweep import MANIFEST, MAX_TRIALS, Sweep, Trial

STARTUP = 5  # random trials before TPE models anything (fewer if N is small: a third of N)


def search_plan(method: str, grid: dict, space: dict, n: int, seeds: int, halving: int | None,
                base_seed: int, config) -> dict | None:
    """sweep.json's `search` record for `--search METHOD` (None for random search); ConfigError if
    the other options do not fit a model-based search, or if a point of the space (`config` with
    the first random draw) is not a valid config: a wrong key would fail every proposal."""
    from nnctl.config.load import load_spec

    if method == "random":
        return None
    if method != "tpe":
        raise ConfigError(f"--search {method!r}: use random (every point drawn up front) or tpe (Optuna)")
    if not space or not n:
        raise ConfigError("--search tpe needs --random N (how many trials) and at least one --space KEY=DIST")
    if grid:
        raise ConfigError("--search tpe searches the --space only; write each --grid key as a choice, "
                          f"e.g. --space '{next(iter(grid))}=choice({','.join(map(str, next(iter(grid.values()))))})'")
    if seeds > 1:
        raise ConfigError("--search tpe proposes one point per trial; --seeds replicates do not fit it (run the "
                          "best point again with --grid seed=... afterwards)")
    if halving is not None:
        raise ConfigError("--search tpe and --halving are two ways to spend a budget; use one of them")
    if n > MAX_TRIALS:
        raise ConfigError(f"the sweep has {n:,} trials; more than {MAX_TRIALS:,} is surely a mistake")
    require_optuna()
    for key, (kind, args) in space.items():  # every choice and both ends of every range, one key at a time
        for value in (args if kind == "choice" else args[:2]):
            point = Trial(0, {key: value}, base_seed)
            try:
                load_spec(config, [a for a in point.set_args() if a != "--set"])
            except NnctlError as exc:
                raise ConfigError(f"--space {key}: {value!r} does not make a valid config: {exc}") from None
    return {"method": "tpe", "n": n, "space": {k: [kind, list(args)] for k, (kind, args) in space.items()},
            "seed": base_seed}


def require_optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError("--search tpe needs Optuna: pip install 'nnctl[tpe]'") from None
    return optuna


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _good_dimension(d) -> bool:
    """One entry of the space as sweep.json keeps it: [kind, args], args fitting the kind."""
    if not (isinstance(d, list) and len(d) == 2 and isinstance(d[1], list) and d[1]):
        return False
    kind, args = d
    if kind == "choice":
        return True
    if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a)
                                 for a in args) or not args[0] < args[1]:
        return False
    return {"uniform": True, "loguniform": args[0] > 0, "int": _is_int(args[0]) and _is_int(args[1])}.get(kind, False)


def check_record(sweep: Sweep) -> tuple[int, dict, int]:
    """(N, space, seed) from sweep.json's search record, checked (it is data, like a run dir)."""
    s = sweep.search if isinstance(sweep.search, dict) else {}
    n, space, seed = s.get("n"), s.get("space"), s.get("seed")
    good = (s.get("method") == "tpe" and _is_int(n) and 1 <= n <= MAX_TRIALS and _is_int(seed)
            and isinstance(space, dict) and space and all(_good_dimension(v) for v in space.values()))
    if not good:
        raise RunDirError(f"{sweep.path / MANIFEST}: damaged ('search' is not {{method: tpe, n, space, seed}} with "
                          f"each dimension [uniform|loguniform|int, [low, high]] or [choice, [values]])")
    return n, space, seed


def distributions(space: dict):
    """Optuna distributions of the space; a choice is the index of its value (values may be lists)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for key, (kind, args) in space.items():
        if kind in ("uniform", "loguniform"):
            out[key] = FloatDistribution(float(args[0]), float(args[1]), log=kind == "loguniform")
        elif kind == "int":
            out[key] = IntDistribution(int(args[0]), int(args[1]))
        else:
            out[key] = CategoricalDistribution(list(range(len(args))))
    return out


def to_overrides(space: dict, params: dict) -> dict:
    return {k: (space[k][1][params[k]] if space[k][0] == "choice" else params[k]) for k in space}


def to_params(space: dict, overrides: dict) -> dict | None:
    """Optuna's params of a trial's overrides; None if they are not a point of the space."""
    params = {}
    for key, (kind, args) in space.items():
        if key not in overrides:
            return None
        value = overrides[key]
        if kind == "choice":
            if value not in args:
                return None
            value = args.index(value)
        params[key] = value
    return params


def score(t: Trial) -> float | None:
    """The trial's result as a number to minimise (the monitored metric, negated when higher is
    better), None if it has none (failed, diverged, no metric)."""
    from nnctl.sweep_halving import score as best

    found = best(t) if t.status in FINISHED else None
    if found is None:
        return None
    metric, value = found
    return -value if higher_is_better(metric) else value


class Search:
    """An Optuna study fed from the sweep's trials; proposes new ones."""

    def __init__(self, sweep: Sweep):
        import warnings

        self.sweep = sweep
        self.n, self.space, seed = check_record(sweep)
        optuna = require_optuna()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.dists = distributions(self.space)
        with warnings.catch_warnings():  # constant_liar is "experimental" in some Optuna versions: no noise
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True,
                                                 n_startup_trials=max(1, min(STARTUP, self.n // 3)))
        self.study = optuna.create_study(direction="minimize", sampler=sampler)
        self.asked: dict[int, object] = {}  # trial id -> its Optuna trial, while it runs
        self.base_seed = seed

    def replay(self, trials: list[Trial]) -> None:
        """Tell the study what earlier trials (finished, failed or diverged) gave."""
        from optuna.trial import TrialState, create_trial

        for t in trials:
            params = to_params(self.space, t.overrides)
            if params is None:
                continue
            value = score(t)
            if value is None:
                self.study.add_trial(create_trial(params=params, distributions=self.dists, state=TrialState.FAIL))
            else:
                self.study.add_trial(create_trial(params=params, distributions=self.dists, value=value))

    def resume(self, t: Trial) -> None:
        """A trial that runs again (a resumed sweep's unfinished one) becomes a running trial of the
        study with its own point, so that proposals made while it runs take it into account."""
        params = to_params(self.space, t.overrides)
        if params is not None:
            self.study.enqueue_trial(params, skip_if_exists=False)
            self.asked[t.id] = self.study.ask(self.dists)

    @property
    def room(self) -> int:
        return self.n - len(self.sweep.trials)

    def propose(self) -> Trial:
        """A new trial from the study, added to the sweep; one whose config is invalid is failed at once."""
        from nnctl.config.load import load_spec

        asked = self.study.ask(self.dists)
        t = Trial(len(self.sweep.trials), to_overrides(self.space, asked.params), self.base_seed)
        try:
            load_spec(self.sweep.config, [a for a in t.set_args() if a != "--set"], seed=t.seed)
        except NnctlError as exc:
            t.status, t.error = "failed", str(exc)
        self.sweep.trials.append(t)
        self.asked[t.id] = asked
        if t.status == "failed":
            self.tell(t)
        return t

    def tell(self, t: Trial) -> None:
        """Report a trial that has ended (once); a trial the study did not propose is added whole."""
        from optuna.trial import TrialState

        asked = self.asked.pop(t.id, None)
        if asked is None:
            self.replay([t])
            return
        value = score(t)
        if value is None or not math.isfinite(value):
            self.study.tell(asked, state=TrialState.FAIL)
        else:
            self.study.tell(asked, value)


def run_search(sweep: Sweep, todo: list[Trial], on_update: Callable[[Trial], None]) -> None:
    """Run the trials `todo` (a resumed sweep's unfinished ones), then propose and run new trials
    until the sweep has N; local workers take a new proposal as soon as one is free."""
    search = Search(sweep)
    search.replay([t for t in sweep.trials if t not in todo and t.status != "pending"])
    for t in todo:
        search.resume(t)
    if sweep.dask:
        from nnctl.sweep_dask import DaskSweep

        with DaskSweep(sweep, sweep.dask, on_update) as cluster:
            batch = list(todo)
            while batch or search.room > 0:
                while len(batch) < max(sweep.jobs, 1) and search.room > 0:
                    t = search.propose()
                    if t.status == "pending":
                        batch.append(t)
                sweep.save()
                if batch:
                    cluster.run(batch)
                for t in batch:
                    search.tell(t)
                batch = []
        return
    from nnctl.sweep_local import Pool

    pending: list[Trial] = list(todo)

    def fill() -> None:  # keep one proposal per free worker, no more (the next ones learn from these)
        running = sum(t.status == "running" for t in sweep.trials)
        while search.room > 0 and len(pending) + running < sweep.jobs:
            t = search.propose()
            if t.status == "pending":
                pending.append(t)
            else:
                on_update(t)

    def updated(t: Trial) -> None:
        if t.status not in ("running", "pending") and not pool.stopping:
            if t.status != "interrupted":  # (its worker died: --resume continues it, then tells)
                search.tell(t)
            fill()
            sweep.save()
        on_update(t)

    pool = Pool(sweep, updated)
    fill()
    sweep.save()
    pool.run(pending)
