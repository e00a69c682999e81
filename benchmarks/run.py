"""nnctl against scikit-learn and PyTorch on three reference workloads, plus a GEMM floor and start-up times.

    python -m benchmarks.run                        # all workloads, 3 rounds, 1 BLAS thread
    python -m benchmarks.run --quick                # smoke test, well under a minute
    python -m benchmarks.run --threads 1,2 --workloads W3 --rounds 5
    python -m benchmarks.run --epochs W1=40,W3=3 --json
    python -m benchmarks.run --profile --workloads W1,W2   # cProfile of nnctl's loop instead

Everything runs in this one process. For every workload and thread count the engines (nnctl,
scikit-learn, PyTorch, the GEMM floor) take turns: each round runs every engine once, in a rotated
order, so machine noise hits all of them alike. The per-epoch times of all rounds are pooled and
the median is reported. See benchmarks/README.md for the columns and the targets.
"""

# ruff: noqa: N803, N806  (matrices are upper case, as in nnctl/nn)
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SEED = 0


# ------------------------------------------------------------------------------------ workloads
@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    source: str  # nnctl's data.source
    options: dict  # generator options (nnctl's data.options; the same make_* call)
    hidden: tuple[int, ...]
    batch: int
    epochs: int  # per measurement
    quick_options: dict = field(default_factory=dict)  # overrides for --quick
    quick_epochs: int = 1


WORKLOADS = {
    "W1": Workload("W1", "tiny", "sklearn:moons", {"n_samples": 1000, "noise": 0.2, "random_state": SEED},
                   (16, 16), 32, 20, {}, 5),
    "W2": Workload("W2", "medium", "sklearn:classification",
                   {"n_samples": 20000, "n_features": 64, "n_informative": 32, "n_redundant": 0, "n_classes": 10,
                    "random_state": SEED},
                   (128, 64), 64, 3, {"n_samples": 4000}, 2),
    "W3": Workload("W3", "wide", "sklearn:classification",
                   {"n_samples": 60000, "n_features": 784, "n_informative": 100, "n_redundant": 0, "n_classes": 10,
                    "random_state": SEED},
                   (256, 128), 128, 2, {"n_samples": 4000}, 1),
}

# nnctl time / other engine's time must be at most this (per workload); W3 also needs >= 75 % of GEMM peak
RATIO_TARGETS = {("W1", "sklearn"): 0.35, ("W1", "torch"): 0.15,
                 ("W2", "sklearn"): 0.45, ("W2", "torch"): 0.35,
                 ("W3", "sklearn"): 0.75, ("W3", "torch"): 0.85}
PEAK_TARGETS = {"W3": 75.0}  # % of measured GEMM peak, checked at 1 thread
HELP_TARGET = 1.5  # `nnctl --help` / `python -c "import numpy"`


def nnctl_config(w: Workload, options: dict, epochs: int) -> dict:
    """The experiment spec nnctl trains for workload `w` (training only: no val/test split)."""
    return {
        "name": f"bench-{w.key.lower()}", "seed": SEED,
        "data": {"source": w.source, "options": dict(options), "split": {"val": 0.0, "test": 0.0},
                 "preprocess": "standardize"},
        "model": {"hidden": list(w.hidden), "activation": "relu"},
        "optimizer": {"name": "adam", "lr": 1e-3},
        "train": {"epochs": epochs, "gd": "minibatch", "batch_size": w.batch, "shuffle": True,
                  "diagnostics": False, "dtype": "float32"},
    }


# ------------------------------------------------------------------------------------ FLOP counting
def gemm_flops_per_epoch(dims: list[int], n: int, batch: int) -> int:
    """FLOPs (2 per multiply-add) of the matrix products of one epoch of forward + backward.

    Per minibatch of m rows and layer l (fan_in a, fan_out b): forward A_{l-1} @ W_l, backward
    A_{l-1}.T @ dZ_l (dW_l) and, for l > 1 only, dZ_l @ W_l.T (dA_{l-1}); each is 2*m*a*b FLOPs.
    """
    per_row = 0
    for l, (a, b) in enumerate(zip(dims[:-1], dims[1:]), start=1):
        per_row += 2 * a * b * (3 if l > 1 else 2)
    return per_row * n  # linear in m, so the short last batch needs no special case


# ------------------------------------------------------------------------------------ engines
class NnctlEngine:
    """nnctl's Trainer on a spec built in-process. Data generation and `prepare` run once, untimed;
    each measurement restores the initial weights and random streams and times `Trainer.fit()`
    through the `epoch_time_s` of each metrics row."""

    name = "nnctl"

    def __init__(self, w: Workload, options: dict):
        from nnctl.build import prepare
        from nnctl.config.load import load_spec

        self.prepared = prepare(load_spec(data=nnctl_config(w, options, 1)))
        self.initial = self.prepared.model.state_arrays()
        p = self.prepared
        self.dims = [p.model.n_inputs] + [layer.width for layer in p.model.layers]
        self.note = f"loss {p.spec.train.loss}, {self.dims[-1]} output unit(s)"

    def trainer(self, epochs: int):
        from nnctl.build import random_streams
        from nnctl.training.loop import Trainer

        p = self.prepared
        p.spec = p.spec.replace(train=p.spec.train.replace(epochs=epochs))
        p.model.load_state_arrays(self.initial)
        p.rngs = random_streams(SEED)
        trainer = Trainer(p)
        # the Trainer sets its own BLAS thread count (train.threads: auto may pick 2 for W3); use
        # exactly the count this measurement is for, like the other engines
        from threadpoolctl import threadpool_info

        trainer.threads = min(d["num_threads"] for d in threadpool_info() if d.get("user_api") == "blas")
        return trainer

    def run(self, epochs: int) -> list[float]:
        trainer = self.trainer(epochs)
        result = trainer.fit()
        if result.status != "completed":
            raise RuntimeError(f"nnctl training ended {result.status}: {result.message}")
        return [row["epoch_time_s"] for row in trainer.rows]


class SklearnEngine:
    """MLPClassifier, one `partial_fit` call per epoch (partial_fit runs exactly one pass over the
    data: _fit_stochastic breaks after the first iteration when incremental). Each call is timed
    whole, so its input validation and label binarising count, as they would for a user."""

    name = "sklearn"

    def __init__(self, w: Workload, X: np.ndarray, y: np.ndarray):
        self.w, self.X, self.y = w, X, y
        self.classes = np.unique(y)
        n_out = 1 if len(self.classes) == 2 else len(self.classes)  # sklearn: one logistic unit for binary
        self.dims = [X.shape[1], *w.hidden, n_out]
        self.note = f"partial_fit per epoch, {n_out} output unit(s)"

    def run(self, epochs: int) -> list[float]:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        clf = MLPClassifier(hidden_layer_sizes=self.w.hidden, activation="relu", solver="adam",
                            learning_rate_init=1e-3, batch_size=self.w.batch, max_iter=1, shuffle=True, alpha=0.0,
                            tol=0.0, n_iter_no_change=10**9, early_stopping=False, random_state=SEED)
        times = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for _ in range(epochs):
                t0 = time.perf_counter()
                clf.partial_fit(self.X, self.y, classes=self.classes)
                times.append(time.perf_counter() - t0)
        if clf.coefs_[0].dtype != np.float32:
            raise RuntimeError(f"sklearn trained in {clf.coefs_[0].dtype}, not float32")
        return times


class TorchEngine:
    """nn.Sequential of Linear + ReLU, CrossEntropyLoss, Adam; a plain loop over a fresh random
    permutation per epoch, batches gathered with index tensors (no DataLoader)."""

    name = "torch"

    def __init__(self, w: Workload, X: np.ndarray, y: np.ndarray):
        import torch

        self.torch, self.w = torch, w
        self.X = torch.from_numpy(X)
        self.y = torch.from_numpy(y.astype(np.int64))
        self.n_classes = int(y.max()) + 1
        self.dims = [X.shape[1], *w.hidden, self.n_classes]
        self.note = f"CrossEntropyLoss, {self.n_classes} output units"

    def run(self, epochs: int) -> list[float]:
        torch = self.torch
        nn = torch.nn
        torch.manual_seed(SEED)
        layers: list = []
        for a, b in zip(self.dims[:-2], self.dims[1:-1]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(self.dims[-2], self.dims[-1]))
        model = nn.Sequential(*layers)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(SEED)
        X, y, n, batch = self.X, self.y, len(self.X), self.w.batch
        times = []
        for _ in range(epochs):
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=gen)
            for start in range(0, n, batch):
                idx = perm[start:start + batch]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(X[idx]), y[idx])
                loss.backward()
                opt.step()
            times.append(time.perf_counter() - t0)
        return times


class GemmFloor:
    """Only the matrix products of one epoch of forward + backward, on preallocated arrays.

    For each minibatch Xb (a contiguous slice of the training matrix, no gather) and layers
    l = 1..L: forward Z_l = A_{l-1} @ W_l with A_0 = Xb and A_l = Z_l (no activation); backward,
    for l = L..1, dW_l = A_{l-1}.T @ dZ_l and, for l > 1, dA_{l-1} = dZ_l @ W_l.T. Every product
    writes into a preallocated output (np.matmul(..., out=)); dZ_l are fixed random arrays.
    """

    name = "GEMM floor"

    def __init__(self, dims: list[int], X: np.ndarray, batch: int):
        rng = np.random.default_rng(SEED)
        f32 = np.float32
        self.X, self.batch, self.dims = X, batch, dims
        self.W = [(rng.standard_normal((a, b), dtype=f32) / np.sqrt(a)).astype(f32) for a, b in zip(dims, dims[1:])]
        self.dW = [np.empty_like(W) for W in self.W]
        self.buffers = {}
        n = len(X)
        for m in {min(batch, n), n % batch or min(batch, n)}:
            Z = [np.empty((m, b), dtype=f32) for b in dims[1:]]
            dZ = [rng.standard_normal((m, b), dtype=f32) for b in dims[1:]]
            dA = [np.empty((m, a), dtype=f32) for a in dims[:-1]]
            self.buffers[m] = (Z, dZ, dA)
        self.note = "forward A@W, backward A.T@dZ and dZ@W.T (not for the input layer)"

    def epoch(self) -> None:
        X, W, dW, batch, L = self.X, self.W, self.dW, self.batch, len(self.W)
        matmul = np.matmul
        for start in range(0, len(X), batch):
            Xb = X[start:start + batch]
            Z, dZ, dA = self.buffers[len(Xb)]
            A = Xb
            for l in range(L):
                matmul(A, W[l], out=Z[l])
                A = Z[l]
            for l in range(L - 1, -1, -1):
                matmul(Xb.T if l == 0 else Z[l - 1].T, dZ[l], out=dW[l])
                if l > 0:
                    matmul(dZ[l], W[l].T, out=dA[l])

    def run(self, epochs: int) -> list[float]:
        times = []
        for _ in range(epochs):
            t0 = time.perf_counter()
            self.epoch()
            times.append(time.perf_counter() - t0)
        return times


class OptimizerStep:
    """nnctl's own optimizer (Adam, lr 1e-3) alone: one epoch's worth of `step` calls on a flat
    float32 vector the size of nnctl's parameters, with a fixed gradient. Only the step calls are
    timed (the gradient is copied in first, as backward would write it). Together with the GEMM floor
    this bounds what nnctl's loop can reach: the GEMMs and the update cannot overlap on one core,
    and NumPy cannot fuse the update's vector passes into one. The bound is optimistic: here the
    update's vectors stay in cache between steps, in training the GEMMs evict them."""

    name = "Adam step"

    def __init__(self, n_params: int, n: int, batch: int):
        rng = np.random.default_rng(SEED)
        self.theta = rng.standard_normal(n_params, dtype=np.float32)
        self.g0 = rng.standard_normal(n_params, dtype=np.float32)
        self.g = np.empty_like(self.g0)
        self.steps = math.ceil(n / batch)
        self.n_params = n_params
        self.note = f"{n_params:,} parameters, {self.steps} steps per epoch"

    def run(self, epochs: int) -> list[float]:
        from nnctl.nn.optimizers import OPTIMIZERS

        opt = OPTIMIZERS.get("adam", {}).bind(self.theta, 0.0)
        times = []
        for _ in range(epochs):
            spent = 0.0
            for _ in range(self.steps):
                np.copyto(self.g, self.g0)
                t0 = time.perf_counter()
                opt.step(self.theta, self.g, 1e-3)
                spent += time.perf_counter() - t0
            times.append(spent)
        return times


def gemm_peak(size: int, reps: int = 5) -> float:
    """GFLOP/s of the fastest of `reps` size x size float32 matmuls (after one warm-up)."""
    rng = np.random.default_rng(SEED)
    A = rng.standard_normal((size, size), dtype=np.float32)
    B = rng.standard_normal((size, size), dtype=np.float32)
    C = np.empty_like(A)
    np.matmul(A, B, out=C)
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        np.matmul(A, B, out=C)
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


# ------------------------------------------------------------------------------------ helpers
def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def thread_limit(threads: int, torch_mod):
    """Limit NumPy's BLAS and every OpenMP pool to `threads`; set torch's intra-op threads too."""
    from threadpoolctl import threadpool_limits

    before = torch_mod.get_num_threads() if torch_mod is not None else None
    with threadpool_limits(limits=threads):
        if torch_mod is not None:
            torch_mod.set_num_threads(threads)
        try:
            yield
        finally:
            if torch_mod is not None:
                torch_mod.set_num_threads(before)


def try_torch():
    try:
        import torch
    except Exception as exc:  # not installed, or a broken install: the harness works without it
        return None, f"{type(exc).__name__}: {exc}"
    return torch, None


def machine_facts(torch_mod) -> dict:
    from importlib import metadata

    from threadpoolctl import threadpool_info

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for dist in ("scikit-learn", "nnctl", "threadpoolctl"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    versions["torch"] = torch_mod.__version__ if torch_mod is not None else None
    blas = [{k: d.get(k) for k in ("user_api", "internal_api", "version", "architecture", "threading_layer",
                                   "num_threads", "filepath")} for d in threadpool_info()]
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu, "logical_cpus": os.cpu_count(), "usable_cpus": affinity,
        "platform": platform.platform(), "versions": versions, "threadpools": blas,
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else math.nan


# ------------------------------------------------------------------------------------ start-up
def startup(runs: int) -> dict:
    """Median wall time of interpreter start-ups: numpy import, `nnctl --help`, a 1-epoch train."""
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="nnctl-bench-") as tmp:
        config = Path(tmp) / "xor.yaml"
        config.write_text("name: startup-xor\ndata:\n  source: sklearn:xor\nmodel:\n  hidden: [8]\n"
                          "train:\n  epochs: 1\n  batch_size: 16\n")
        commands = {
            "import numpy": [py, "-c", "import numpy"],
            "nnctl --help": [py, "-m", "nnctl", "--help"],
            "nnctl train (xor, 1 epoch)": [py, "-m", "nnctl", "train", str(config), "--runs-dir",
                                           str(Path(tmp) / "runs"), "--quiet"],
        }
        times: dict[str, list[float]] = {k: [] for k in commands}
        for i in range(runs):
            for key, cmd in commands.items():
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
                times[key].append(time.perf_counter() - t0)
                if proc.returncode != 0:
                    raise RuntimeError(f"start-up command {cmd} failed ({proc.returncode}): {proc.stderr[-2000:]}")
            log(f"start-up run {i + 1}/{runs}: " + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items()))
    med = {k: median(v) for k, v in times.items()}
    ratio = med["nnctl --help"] / med["import numpy"]
    return {"runs": runs, "median_s": med, "min_s": {k: min(v) for k, v in times.items()},
            "help_over_numpy": ratio,
            "target": {"what": "nnctl --help / import numpy", "limit": HELP_TARGET, "value": ratio,
                       "ok": ratio <= HELP_TARGET}}


# ------------------------------------------------------------------------------------ one workload
def run_workload(w: Workload, options: dict, epochs: int, rounds: int, thread_list: list[int], torch_mod,
                 peak_size: int, quick: bool) -> list[dict]:
    log(f"{w.key}: preparing data ({w.source} {options})")
    nn_engine = NnctlEngine(w, options)
    p = nn_engine.prepared
    X, y = p.X["train"], np.asarray(p.y["train"])
    assert X.dtype == np.float32 and X.flags.c_contiguous
    # sklearn and torch get exactly the standardized float32 matrix nnctl prepared
    engines: list = [nn_engine, SklearnEngine(w, X, y)]
    if torch_mod is not None:
        engines.append(TorchEngine(w, X, y))
    engines.append(GemmFloor(nn_engine.dims, X, w.batch))
    n = len(X)
    engines.append(OptimizerStep(p.model.n_params(), n, w.batch))
    results = []
    for threads in thread_list:
        with thread_limit(threads, torch_mod):
            log(f"{w.key} @ {threads} thread(s): warm-up")
            for e in engines:
                e.run(1)
            per_round: dict[str, list[list[float]]] = {e.name: [] for e in engines}
            peaks = []
            for r in range(rounds):
                peaks.append(gemm_peak(peak_size))
                order = engines[r % len(engines):] + engines[:r % len(engines)]  # rotate who goes first
                for e in order:
                    per_round[e.name].append(e.run(epochs))
                log(f"{w.key} @ {threads}t round {r + 1}/{rounds}: peak {peaks[-1]:.1f} GFLOP/s; "
                    + ", ".join(f"{e.name} {median(per_round[e.name][-1]):.4g}s" for e in engines))
        peak = median(peaks)
        res = {"workload": w.key, "title": w.title, "source": w.source, "options": options, "n_train": n,
               "n_features": X.shape[1], "network": "-".join(map(str, [X.shape[1], *w.hidden, "k"])),
               "batch": w.batch, "threads": threads, "rounds": rounds, "epochs_per_round": epochs, "quick": quick,
               "peak_gflops": peak, "peak_gflops_rounds": peaks, "peak_size": peak_size, "engines": {}}
        for e in engines:
            all_epochs = [t for rnd in per_round[e.name] for t in rnd]
            s = median(all_epochs)
            if isinstance(e, OptimizerStep):
                floor = res["engines"]["GEMM floor"]
                bound = floor["s_per_epoch"] + s
                res["bound"] = {"optimizer_s_per_epoch": s, "round_medians": [median(r) for r in per_round[e.name]],
                                "n_params": e.n_params, "steps": e.steps, "gemm_plus_optimizer_s": bound,
                                "pct_peak": 100 * floor["gemm_flops_per_epoch"] / bound / 1e9 / peak}
                continue
            flops = gemm_flops_per_epoch(e.dims, n, w.batch)
            res["engines"][e.name] = {
                "s_per_epoch": s, "round_medians": [median(rnd) for rnd in per_round[e.name]],
                "epoch_times": all_epochs, "samples_per_s": n / s, "dims": e.dims, "gemm_flops_per_epoch": flops,
                "gflops": flops / s / 1e9, "pct_peak": 100 * flops / s / 1e9 / peak, "note": e.note}
        res["ratios"], res["targets"] = ratios_and_targets(w.key, threads, res["engines"])
        results.append(res)
    del engines, nn_engine, p, X, y
    return results


def ratios_and_targets(key: str, threads: int, eng: dict) -> tuple[dict, list[dict]]:
    nn = eng["nnctl"]["s_per_epoch"]
    ratios = {f"nnctl/{name}": nn / v["s_per_epoch"] for name, v in eng.items() if name != "nnctl"}
    targets = []
    for other in ("sklearn", "torch"):
        limit = RATIO_TARGETS.get((key, other))
        if limit is None:
            continue
        value = ratios.get(f"nnctl/{other}")
        targets.append({"what": f"{key} nnctl/{other} (s/epoch)", "limit": f"<= {limit}", "value": value,
                        "ok": None if value is None else value <= limit})
    if key in PEAK_TARGETS and threads == 1:
        value = eng["nnctl"]["pct_peak"]
        targets.append({"what": f"{key} nnctl % of GEMM peak, 1 thread", "limit": f">= {PEAK_TARGETS[key]:g}%",
                        "value": value, "ok": value >= PEAK_TARGETS[key]})
    return ratios, targets


# ------------------------------------------------------------------------------------ output
def verdict(t: dict) -> str:
    return "SKIP" if t["ok"] is None else ("OK" if t["ok"] else "MISS")


def render(doc: dict) -> str:
    m = doc["machine"]
    v = m["versions"]
    out = []
    quick = doc["settings"]["quick"]
    out.append("nnctl benchmark" + ("  [--quick: smaller data, not comparable with the targets]" if quick else ""))
    out.append(f"  date      {m['date']}")
    out.append(f"  cpu       {m['cpu']}  ({m['logical_cpus']} logical CPUs, {m['usable_cpus']} usable)")
    out.append(f"  load avg  start {fmt_load(m['loadavg_start'])}, end {fmt_load(m.get('loadavg_end'))}")
    out.append("  versions  " + ", ".join(f"{k} {val}" for k, val in v.items() if val is not None)
               + ("" if v.get("torch") else ", torch not available"))
    for d in m["threadpools"]:
        out.append(f"  pool      {d['user_api']}: {d['internal_api']} {d.get('version') or ''} "
                   f"{d.get('architecture') or ''} ({d.get('threading_layer') or '-'}) {Path(d['filepath']).name}")
    s = doc["settings"]
    out.append(f"  settings  rounds {s['rounds']}, threads {s['threads']}, workloads {','.join(s['workloads'])}")
    for note in doc["notes"]:
        out.append(f"  note      {note}")
    if doc.get("startup"):
        st = doc["startup"]
        out.append("")
        out.append(f"Start-up (median of {st['runs']} runs each, wall seconds, fresh interpreter)")
        for k, val in st["median_s"].items():
            out.append(f"  {k:<28} {val:8.3f} s   (min {st['min_s'][k]:.3f})")
        t = st["target"]
        out.append(f"  --help / import numpy        {st['help_over_numpy']:8.2f}x   target <= {HELP_TARGET}x  "
                   f"{verdict(t)}")
    for res in doc["results"]:
        out.append("")
        opts = res["options"]
        out.append(f"{res['workload']} {res['title']}: {res['source']} n={res['n_train']} "
                   f"d={res['n_features']}{' noise=' + str(opts['noise']) if 'noise' in opts else ''}, "
                   f"{res['network']} relu, batch {res['batch']}, adam 1e-3, float32 | {res['threads']} thread(s), "
                   f"{res['rounds']} rounds x {res['epochs_per_round']} epochs | GEMM peak "
                   f"{res['peak_gflops']:.1f} GFLOP/s ({res['peak_size']}^3 matmul)")
        out.append(f"  {'engine':<11} {'s/epoch':>10} {'round medians (min..max)':>26} {'samples/s':>11} "
                   f"{'GFLOP/s':>8} {'%peak':>6} {'nnctl/x':>8}  network")
        nn = res["engines"]["nnctl"]["s_per_epoch"]
        for name, e in res["engines"].items():
            rm = e["round_medians"]
            ratio = "" if name == "nnctl" else f"{nn / e['s_per_epoch']:.3f}"
            out.append(f"  {name:<11} {e['s_per_epoch']:10.5f} {min(rm):12.5f}..{max(rm):<12.5f} "
                       f"{e['samples_per_s']:11,.0f} {e['gflops']:8.2f} {e['pct_peak']:5.1f}% {ratio:>8}  "
                       f"{'-'.join(map(str, e['dims']))}")
        b = res.get("bound")
        if b:
            out.append(f"  {'Adam step':<11} {b['optimizer_s_per_epoch']:10.5f} {min(b['round_medians']):12.5f}.."
                       f"{max(b['round_medians']):<12.5f} nnctl's optimizer alone, {b['steps']} steps on "
                       f"{b['n_params']:,} parameters")
            out.append(f"  bound: GEMM floor + Adam step = {b['gemm_plus_optimizer_s']:.5f} s/epoch = "
                       f"{b['pct_peak']:.1f}% of peak, the ceiling for nnctl's loop (Adam timed with warm caches)")
        for t in res["targets"]:
            val = "n/a" if t["value"] is None else (f"{t['value']:.1f}%" if "%" in t["limit"]
                                                    else f"{t['value']:.3f}x")
            out.append(f"  target {t['what']:<38} {val:>9}  {t['limit']:<8} {verdict(t)}")
    if doc["targets_summary"]:
        out.append("")
        out.append("Targets: " + ", ".join(f"{t['what']} {verdict(t)}" for t in doc["targets_summary"]))
    return "\n".join(out)


def fmt_load(load) -> str:
    return "-" if not load else " ".join(f"{x:.2f}" for x in load)


# ------------------------------------------------------------------------------------ profile mode
def profile(workloads: list[Workload], quick: bool, epochs_of: dict, threads: int, top: int) -> None:
    """cProfile nnctl's Trainer.fit on each workload; print the top functions by own time."""
    import cProfile
    import io
    import pstats

    for w in workloads:
        options = {**w.options, **(w.quick_options if quick else {})}
        engine = NnctlEngine(w, options)
        with thread_limit(threads, None):
            engine.run(1)
            trainer = engine.trainer(epochs_of[w.key])
            prof = cProfile.Profile()
            t0 = time.perf_counter()
            prof.enable()
            trainer.fit()
            prof.disable()
            wall = time.perf_counter() - t0
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
        steps = math.ceil(len(engine.prepared.X["train"]) / w.batch) * epochs_of[w.key]
        print(f"=== {w.key}: nnctl Trainer.fit, {epochs_of[w.key]} epochs, {steps} steps, {wall:.3f} s under "
              f"cProfile ({1e6 * wall / steps:.1f} us/step), {threads} thread(s)")
        print(buf.getvalue())


# ------------------------------------------------------------------------------------ main
def parse_epochs(text: str | None) -> dict[str, int]:
    out = {}
    for item in filter(None, (text or "").split(",")):
        key, _, value = item.partition("=")
        if key.upper() not in WORKLOADS or not value.isdigit() or int(value) < 1:
            raise SystemExit(f"--epochs: expected e.g. W1=20,W3=2; got {item!r}")
        out[key.upper()] = int(value)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3; --quick 1)")
    parser.add_argument("--threads", default="1", help="BLAS/torch thread counts, comma-separated (default 1)")
    parser.add_argument("--workloads", default="W1,W2,W3", help="comma-separated subset of W1,W2,W3")
    parser.add_argument("--epochs", default=None, help="epochs per measurement, e.g. W1=20,W2=3,W3=2")
    parser.add_argument("--quick", action="store_true", help="small data, 1 round: a smoke test")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the tables")
    parser.add_argument("--startup-runs", type=int, default=None, help="runs per start-up command (default 10; "
                        "--quick 3; 0 skips)")
    parser.add_argument("--peak-size", type=int, default=None, help="square matmul size for the GEMM peak "
                        "(default 2048; --quick 1024)")
    parser.add_argument("--profile", action="store_true", help="instead of benchmarking, cProfile nnctl's "
                        "training loop on the selected workloads and print the top functions")
    parser.add_argument("--top", type=int, default=25, help="--profile: functions to list")
    args = parser.parse_args(argv)

    try:
        keys = [k.strip().upper() for k in args.workloads.split(",") if k.strip()]
        workloads = [WORKLOADS[k] for k in keys]
        thread_list = [int(t) for t in args.threads.split(",") if t.strip()]
    except (KeyError, ValueError) as exc:
        parser.error(f"bad --workloads or --threads: {exc}")
    if not workloads or not thread_list or min(thread_list) < 1:
        parser.error("need at least one workload and thread counts >= 1")
    quick = args.quick
    rounds = args.rounds if args.rounds is not None else (1 if quick else 3)
    if rounds < 1:
        parser.error("--rounds must be >= 1")
    startup_runs = args.startup_runs if args.startup_runs is not None else (3 if quick else 10)
    peak_size = args.peak_size or (1024 if quick else 2048)
    epochs_of = {k: (w.quick_epochs if quick else w.epochs) for k, w in WORKLOADS.items()}
    epochs_of.update(parse_epochs(args.epochs))

    if args.profile:
        profile(workloads, quick, epochs_of, thread_list[0], args.top)
        return

    torch_mod, torch_error = try_torch()
    notes = []
    if torch_mod is None:
        notes.append(f"PyTorch skipped: not importable ({torch_error})")
    notes.append("W1: nnctl and sklearn use one sigmoid/logistic output unit (bce), torch 2 logits + "
                 "CrossEntropyLoss; FLOPs and %peak are counted for each engine's own network")
    notes.append("s/epoch: median of every timed epoch of every round; sklearn = one partial_fit call per epoch")
    notes.append("%peak: (GEMM FLOPs of one epoch / s per epoch) / measured GEMM peak (median of per-round "
                 "best-of-5)")
    t_start = time.perf_counter()
    machine = machine_facts(torch_mod)
    doc: dict = {"machine": machine,
                 "settings": {"rounds": rounds, "threads": thread_list, "workloads": keys, "quick": quick,
                              "epochs": {k: epochs_of[k] for k in keys}, "startup_runs": startup_runs,
                              "peak_size": peak_size},
                 "notes": notes, "startup": None, "results": []}
    if startup_runs > 0:
        doc["startup"] = startup(startup_runs)
    for w in workloads:
        options = {**w.options, **(w.quick_options if quick else {})}
        doc["results"] += run_workload(w, options, epochs_of[w.key], rounds, thread_list, torch_mod, peak_size,
                                       quick)
    machine["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    doc["elapsed_s"] = time.perf_counter() - t_start
    summary = [t for res in doc["results"] for t in res["targets"]]
    if doc["startup"]:
        summary.append(doc["startup"]["target"] | {"what": "nnctl --help / import numpy"})
    doc["targets_summary"] = summary
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(render(doc))
        print(f"\n(total {doc['elapsed_s']:.1f} s)")


if __name__ == "__main__":
    main()
