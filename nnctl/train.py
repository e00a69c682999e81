"""Training: data -> split -> preprocessing -> model -> epochs of gradient descent -> run directory.

`train_run` is the library entry point behind `nnctl train`. It loads and checks everything
before it creates the run directory (so a bad CSV leaves nothing behind), then trains with the
`Trainer` and writes the files of DESIGN section 3. It reports progress through callbacks and
never prints.

One seed drives four independent random streams (SeedSequence.spawn): the split, the weight
init, the per-epoch shuffle and the dropout masks. Changing dropout therefore never changes the
split or the initial weights.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl.config import Spec, resolve_data_dependent, resolved_yaml
from nnctl.data import Dataset, Preprocessor, fit_preprocessor, load_dataset, split_indices
from nnctl.diagnostics import DIAG_COLUMNS, config_findings, diag_table_rows
from nnctl.errors import NnctlError, RunDirError, TrainingFailed
from nnctl.nn.losses import LOSSES
from nnctl.nn.model import MLP, LayerDef
from nnctl.nn.optimizers import OPTIMIZERS
from nnctl.nn.schedules import SCHEDULES
from nnctl.runs import MetricsTable, RunDir, read_npz, write_npz

STREAMS = ("split", "init", "shuffle", "dropout", "probe")  # append only: earlier streams stay the same
CHECKPOINT_DIR, CHECKPOINT_FILE, CHECKPOINT_FORMAT = "checkpoint", "checkpoint.npz", 1
FLUSH_SECONDS = 1.0  # metrics.csv and summary.json are rewritten at most this often while training
# A due checkpoint is skipped if the last one is younger than this: with millisecond epochs, writing
# every epoch would double the run time, and a crash still loses at most about a second of work.
CHECKPOINT_SECONDS = 1.0


def random_streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators for split, init, shuffle and dropout, all from one seed."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(ss) for name, ss in zip(STREAMS, children)}


def metric_names(task: str) -> list[str]:
    """Per-split metrics besides the loss: accuracy, or r2 and mae."""
    return ["accuracy"] if task == "classification" else ["r2", "mae"]


def metric_columns(task: str) -> list[str]:
    """metrics.csv header (DESIGN section 3)."""
    cols = ["epoch", "train_loss", "val_loss"]
    for m in metric_names(task):
        cols += [f"train_{m}", f"val_{m}"]
    return cols + ["lr", "epoch_time_s"]


def score(model: MLP, X: np.ndarray, Y: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    """Inference-mode loss and metrics of `model` on features X, encoded targets Y, raw targets y."""
    if len(X) == 0:
        return {"loss": math.nan, **{m: math.nan for m in metric_names(task)}}
    Z = model.logits(X)
    out = {"loss": model.loss.value(Z, Y)}
    if task == "classification":
        out["accuracy"] = float(np.mean(model.loss.predict(Z) == y))
    else:
        P = model.loss.predict(Z).astype(np.float64)
        T = Y.astype(np.float64)
        out["r2"] = r2_score(T, P)
        out["mae"] = float(np.mean(np.abs(P - T)))
    return out


def r2_score(T: np.ndarray, P: np.ndarray) -> float:
    """Coefficient of determination, averaged over target columns (sklearn's uniform_average)."""
    ss_res = np.sum((T - P) ** 2, axis=0)
    ss_tot = np.sum((T - T.mean(axis=0)) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.nan)
    return float(np.mean(r2))


# ------------------------------------------------------------------------------------ preparation
@dataclass
class Prepared:
    """Everything training needs, loaded and checked, before any file is written."""

    spec: Spec
    dataset: Dataset
    split: dict[str, np.ndarray]  # train / val / test row indices
    pre: Preprocessor
    model: MLP
    X: dict[str, np.ndarray]  # per split, preprocessed, model dtype
    Y: dict[str, np.ndarray]  # per split, encoded targets for the loss
    y: dict[str, np.ndarray]  # per split, class indices or target values
    rngs: dict[str, np.random.Generator]


def build_model(spec: Spec, n_inputs: int, n_outputs: int) -> MLP:
    """The MLP a resolved spec describes (weights not yet initialised)."""
    c = spec.config
    m = c["model"]
    hidden = [LayerDef(**r) for r in spec.layer_specs]
    output = LayerDef(units=n_outputs, activation="linear", init=m["init"], init_std=m["init_std"],
                      bias_init=m["bias_init"])
    loss = LOSSES.get(c["train"]["loss"])
    return MLP(n_inputs, hidden, output, loss, dtype=np.dtype(c["train"]["dtype"]))


def prepare(spec: Spec) -> Prepared:
    """Load data, split, fit preprocessing on train, build and initialise the model."""
    c = spec.config
    d = c["data"]
    ds = load_dataset(d, spec.base_dir, np.dtype(c["train"]["dtype"]))
    resolve_data_dependent(spec, ds.task, ds.n_classes)
    rngs = random_streams(c["seed"])
    s = d["split"]
    stratify_y = ds.y if ds.task == "classification" and s["stratify"] else None
    train, val, test = split_indices(len(ds.y), stratify_y, s["val"], s["test"], s["stratify"], rngs["split"],
                                     d["source"])
    split = {"train": train, "val": val, "test": test}
    pre = fit_preprocessor(d["preprocess"], ds.X, d["pca_components"], rows=train)
    dtype = np.dtype(c["train"]["dtype"])
    loss = LOSSES.get(c["train"]["loss"])
    n_outputs = loss.n_outputs(ds.n_classes, ds.n_targets)
    model = build_model(spec, pre.n_outputs, n_outputs)
    model.initialize(rngs["init"])
    if c["model"]["init_from"]:
        load_weights_into(model, Path(c["model"]["init_from"]), "model.init_from")
    X, Y, y = {}, {}, {}
    for part in ("val", "test", "train"):  # train last: it may be written over the raw features' memory
        idx = split[part]
        X[part] = pre.transform_rows(ds.X, idx, dtype, consume=part == "train")
        y[part] = ds.y[idx]
        Y[part] = loss.encode(y[part], ds.n_classes, dtype)
    X, Y, y = ({part: d[part] for part in ("train", "val", "test")} for d in (X, Y, y))
    ds.n_features = ds.X.shape[1]
    ds.X = None  # the raw features are not needed once split and transformed: free them for training
    return Prepared(spec, ds, split, pre, model, X, Y, y, rngs)


def load_weights_into(model: MLP, path: Path, what: str) -> None:
    """Load a weights.npz into `model`; RunDirError naming the file and key on any mismatch."""
    arrays = read_npz(path, "weights file")
    try:  # every array must match: parameters and norm statistics alike
        model.load_state_arrays(arrays)
    except ValueError as exc:
        raise RunDirError(f"{path} ({what}): {exc}") from None


# ------------------------------------------------------------------------------------ the loop
@dataclass
class FitResult:
    status: str  # completed | early_stopped | stopped_at_loss | diverged | interrupted
    rows: list[dict]
    best: dict | None
    message: str = ""
    weights_epoch: int | None = None  # the epoch whose weights are saved (restore_best)


class Trainer:
    """Gradient descent over the prepared training split, one epoch at a time.

    All mutable training state lives on this object (epoch, optimizer and schedule state, RNG
    streams, early-stopping bookkeeping, the metrics rows), so `state` / `load_state` capture a
    resumable checkpoint: continuing from one gives bit-identical results to never stopping.
    """

    def __init__(self, prepared: Prepared, on_epoch: Callable[[dict], None] | None = None,
                 flush: Callable[[list[dict]], None] | None = None,
                 checkpoint: Callable[[Trainer], None] | None = None,
                 on_finding: Callable[[dict], None] | None = None):
        from nnctl.diagnostics import Findings, Probe

        self.prepared = p = prepared
        self.on_epoch, self.flush, self.checkpoint, self.on_finding = on_epoch, flush, checkpoint, on_finding
        c = p.spec.config
        self.t, self.o = t, o = c["train"], c["optimizer"]
        self.task = p.dataset.task
        self.model = model = p.model
        self.optimizer = OPTIMIZERS.get(o["name"], o["options"]).bind(model.params.theta, o["weight_decay"])
        sched_opts = {k: v for k, v in o["schedule"].items() if k not in ("name", "warmup_epochs")}
        self.schedule = SCHEDULES.get(o["schedule"]["name"], sched_opts).setup(
            o["lr"], t["epochs"], o["schedule"]["warmup_epochs"])
        n = len(p.X["train"])
        self.batch = {"batch": n, "stochastic": 1, "minibatch": min(t["batch_size"], n)}[t["gd"]]
        self.has_batchnorm = any(layer.spec.norm == "batch" for layer in model.hidden)
        es = self.es = t["early_stopping"]
        self.has_val = len(p.X["val"]) > 0
        self.monitor = es["monitor"] if es else ("val_loss" if self.has_val else "train_loss")
        # compare sign * value: smaller is better
        self.sign = -1.0 if (es and es["mode"] == "max") else 1.0
        self.min_delta = es["min_delta"] if es else 0.0
        Y = p.Y["train"].astype(np.float64)
        self.ss_tot = np.sum((Y - Y.mean(axis=0)) ** 2, axis=0) if self.task == "regression" else None
        # training state (checkpointed)
        self.epoch = 0  # epochs completed
        self.rows: list[dict] = []
        self._row_values: list[list[float]] = []  # rows as lists, for checkpoints
        self.best: dict | None = None
        self.best_value = math.inf
        self.best_state: dict[str, np.ndarray] | None = None
        self.waited = 0
        self.train_seconds = 0.0
        self._xbuf = self._ybuf = None  # per-batch gather buffers (shuffled epochs)
        self.threads = choose_threads(t["threads"], model, self.batch)
        self.cursor: dict | None = None  # mid-epoch position, set when a stop request interrupts an epoch
        self.epoch_start_state: dict[str, np.ndarray] | None = None  # last finite weights, if a step diverges
        self.stop_requested = False
        self.probe = self.findings = None
        if t["diagnostics"]:
            self.probe = Probe(model, p.X["train"], p.Y["train"], p.rngs["probe"])
            self.findings = Findings(model, self.task, p.dataset.n_classes)

    # ----------------------------------------------------------------------------- state
    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON-able metadata, arrays) of everything needed to continue exactly from here."""
        opt = self.optimizer.state_dict()
        arrays: dict[str, np.ndarray] = {f"model/{k}": v for k, v in self.model.state_arrays().items()}
        arrays.update({f"optimizer/{k}": v for k, v in opt.items() if k != "t"})
        if self.best_state is not None:
            arrays.update({f"best/{k}": v for k, v in self.best_state.items()})
        rngs = self.prepared.rngs
        meta = {
            "epoch": self.epoch, "optimizer_t": opt["t"], "schedule": self.schedule.state_dict(),
            "rng": {name: rngs[name].bit_generator.state for name in ("shuffle", "dropout")},
            "best": self.best, "best_value": self.best_value, "waited": self.waited,
            "train_seconds": self.train_seconds,
        }
        if self.probe is not None:
            from nnctl.diagnostics import DIAG_COLUMNS

            arrays["diagnostics"] = np.array([[r.get(c, np.nan) for c in DIAG_COLUMNS] for r in self.probe.rows],
                                             dtype=np.float64).reshape(len(self.probe.rows), len(DIAG_COLUMNS))
            meta["findings"] = self.findings.items
            meta["initial_loss"] = self.probe.initial_loss
        if self.epoch_start_state is not None:
            arrays.update({f"epoch_start/{k}": v for k, v in self.epoch_start_state.items()})
        if self.cursor is not None:  # stopped inside an epoch: where in the epoch, and its running sums
            cur = dict(self.cursor)
            for key in ("order", "sse", "probe_start"):
                value = cur.pop(key)
                if value is not None:
                    arrays[f"cursor/{key}"] = value
            meta["cursor"] = cur
        # the metrics rows as one float matrix (binary, NaN-exact), columns named in the metadata
        columns = list(self.rows[0]) if self.rows else []
        meta["row_columns"] = columns
        while len(self._row_values) < len(self.rows):  # formatted once per row, not once per checkpoint
            r = self.rows[len(self._row_values)]
            self._row_values.append([r.get(c, np.nan) for c in columns])
        arrays["rows"] = np.array(self._row_values, dtype=np.float64).reshape(len(self.rows), len(columns))
        return meta, arrays

    def load_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        """Restore what `state` returned (ValueError on any mismatch)."""
        def part(prefix):
            return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

        self.model.load_state_arrays(part("model/"))
        self.optimizer.load_state_dict({"t": meta["optimizer_t"], **part("optimizer/")})
        self.schedule.load_state_dict(meta["schedule"])
        for name, state in meta["rng"].items():
            self.prepared.rngs[name].bit_generator.state = state
        self.epoch = int(meta["epoch"])
        columns = meta["row_columns"]
        self.rows = [{c: (int(v) if c == "epoch" else float(v)) for c, v in zip(columns, r)}
                     for r in arrays.get("rows", np.zeros((0, len(columns))))]
        self._row_values = []
        if len(self.rows) != self.epoch:
            raise ValueError(f"checkpoint holds {len(self.rows)} metrics rows for {self.epoch} epochs")
        self.best, self.best_value, self.waited = meta["best"], float(meta["best_value"]), int(meta["waited"])
        best = part("best/")
        self.best_state = best or None
        if self.probe is not None and "diagnostics" in arrays:
            from nnctl.diagnostics import DIAG_COLUMNS

            self.probe.rows = [{c: (int(v) if c in ("epoch", "layer", "units") else float(v))
                                for c, v in zip(DIAG_COLUMNS, r) if not np.isnan(v)}  # NaN = not measured
                               for r in arrays["diagnostics"]]
            self.findings.items = list(meta.get("findings", []))
            self.findings.reported = {(f["code"], f["layer"]) for f in self.findings.items}
            self.probe.initial_loss = float(meta.get("initial_loss", np.nan))
        self.train_seconds = float(meta.get("train_seconds", 0.0))
        self.epoch_start_state = part("epoch_start/") or None
        self.cursor = None
        if meta.get("cursor") is not None:
            cursor = dict(meta["cursor"])
            for key in ("order", "sse", "probe_start"):
                cursor[key] = arrays.get(f"cursor/{key}")
            self.cursor = cursor
            if self.probe is not None and cursor["probe_start"] is not None:
                self.probe.start = cursor["probe_start"].copy()

    def request_stop(self) -> None:
        """Ask training to stop after the current step (signal handlers call this)."""
        self.stop_requested = True

    # ----------------------------------------------------------------------------- loop
    def fit(self) -> FitResult:
        """Run the remaining epochs and return how training ended."""
        # divergence is detected after each epoch, so NumPy's overflow warnings are noise
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), blas_threads(self.threads):
            status, message = self._fit()
        weights_epoch = self.epoch
        if self.best_state is not None and status not in ("diverged", "interrupted"):  # an interrupted
            # run keeps its current weights: the checkpoint written next must hold them, not the best
            self.model.load_state_arrays(self.best_state)
            weights_epoch = self.best["epoch"]
        return FitResult(status, self.rows, self.best, message, weights_epoch if self.rows else None)

    def _fit(self) -> tuple[str, str]:
        t = self.t
        last_flush = last_checkpoint = time.perf_counter()
        if self.probe is not None and self.epoch == 0 and self.cursor is None:
            self.probe.initial()
            self._report(self.findings.initial(self.probe.initial_loss))
        while self.epoch < t["epochs"]:
            if self.stop_requested:
                return "interrupted", f"interrupted after epoch {self.epoch}"
            try:
                row = self.run_epoch()
            except _StepStopped:
                return "interrupted", f"interrupted in epoch {self.epoch + 1}, after step {self.cursor['step']}"
            except _Diverged as exc:
                return "diverged", self._diverged(exc)
            self.epoch += 1
            self.train_seconds += row["epoch_time_s"]
            self.rows.append(row)
            if self.probe is not None:
                self._report(self.findings.epoch(self.epoch, self.probe.epoch_end(self.epoch), self.rows))
            self._track_best(row)
            if self.schedule.needs_metric:
                self.schedule.observe(self.epoch - 1, row["val_loss"] if self.has_val else row["train_loss"])
            if self.on_epoch is not None:
                self.on_epoch(row)
            if t["stop_at_loss"] is not None and row["train_loss"] <= t["stop_at_loss"]:
                return "stopped_at_loss", (f"stopped at epoch {self.epoch}: training loss {row['train_loss']:.4g} "
                                           f"<= stop_at_loss {t['stop_at_loss']:g}")
            if self.es and self.waited >= self.es["patience"]:
                return "early_stopped", (f"stopped at epoch {self.epoch}: {self.monitor} did not improve by more "
                                         f"than {self.min_delta:g} for {self.es['patience']} epochs; best "
                                         f"{self.monitor} {self.best[self.monitor]:.4g} at epoch {self.best['epoch']}"
                                         + (" (weights restored from it)" if self.es["restore_best"] else ""))
            if (self.checkpoint is not None and self.epoch % t["checkpoint_every"] == 0 and self.epoch < t["epochs"]
                    and time.perf_counter() - last_checkpoint >= checkpoint_seconds()):
                self.checkpoint(self)
                last_checkpoint = time.perf_counter()
            if self.flush is not None and time.perf_counter() - last_flush > FLUSH_SECONDS:
                self.flush(self.rows)
                last_flush = time.perf_counter()
        return "completed", ""

    def _diverged(self, exc: _Diverged) -> str:
        """Keep the last finite weights, record the epoch, and explain where it broke."""
        model = self.model
        kept = "the last finite weights are kept"
        if not np.isfinite(model.params.theta).all():
            try:
                model.load_state_arrays(self.epoch_start_state or {})
                kept = f"the weights from the start of epoch {self.epoch + 1} are kept"
            except ValueError:  # not finite even then (e.g. an overflowing init): nothing finite to keep
                kept = "no finite weights were left to keep"
        self.cursor = None
        self.epoch += 1
        self.rows.append({"epoch": self.epoch, "train_loss": exc.loss, "lr": exc.lr, "epoch_time_s": exc.elapsed})
        if self.findings is not None:
            self._report(self.findings.epoch(self.epoch, [], self.rows, diverged=True))
        where = f" (first in {exc.layer})" if exc.layer else ""
        return (f"training diverged at epoch {self.epoch}, step {exc.step}: the {exc.what} became {exc.value}"
                f"{where}; {kept}. Lower optimizer.lr (now {self.o['lr']:g}), standardize the inputs, or set "
                f"optimizer.clip_grad_norm")

    def _report(self, findings: list[dict]) -> None:
        if self.on_finding is not None:
            for f in findings:
                self.on_finding(f)

    def _track_best(self, row: dict) -> None:
        value = row.get(self.monitor, math.nan)
        if math.isfinite(value) and self.sign * value < self.best_value - self.min_delta:
            self.best_value, self.best, self.waited = self.sign * value, dict(row), 0
            if self.es and self.es["restore_best"]:
                self.best_state = self.model.state_arrays()
        else:
            self.waited += 1

    def run_epoch(self) -> dict:
        """One pass over the training rows (or the rest of one, after a stop); returns the metrics row.

        Raises _StepStopped after a step if a stop was requested (the position is saved in
        `self.cursor`), and _Diverged before a step whose loss or gradient is not finite.
        """
        p, model, task = self.prepared, self.model, self.task
        X, Y, y = p.X["train"], p.Y["train"], p.y["train"]
        n, batch = len(X), self.batch
        theta, grad = model.params.theta, model.params.grad
        clip = self.o["clip_grad_norm"]
        lr = self.schedule.lr(self.epoch)
        t0 = time.perf_counter()
        if self.cursor is None:
            order = p.rngs["shuffle"].permutation(n) if self.t["shuffle"] and batch < n else None
            self.epoch_start_state = model.state_arrays()
            if self.probe is not None:
                self.probe.epoch_start()
            first, loss_sum, rows_used, correct, abs_err, elapsed = 0, 0.0, 0, 0, 0.0, 0.0
            sse = np.zeros(Y.shape[1]) if task == "regression" else None
        else:
            c = self.cursor
            order, first, elapsed = c["order"], c["start"], c["elapsed"]
            loss_sum, rows_used, correct, abs_err, sse = c["loss_sum"], c["rows_used"], c["correct"], \
                c["abs_err"], c["sse"]
            self.cursor = None
        if order is not None:
            y = y[order]
            # gather each batch into reused buffers: a shuffled copy of the whole training matrix
            # every epoch costs a large allocation and its page faults (188 MB on W3)
            Xbuf = self._xbuf if self._xbuf is not None else np.empty((batch, X.shape[1]), dtype=X.dtype)
            Ybuf = self._ybuf if self._ybuf is not None else np.empty((batch, Y.shape[1]), dtype=Y.dtype)
            self._xbuf, self._ybuf = Xbuf, Ybuf
        dropout_rng = p.rngs["dropout"]
        step = first // batch
        for start in range(first, n, batch):
            stop = min(start + batch, n)
            step += 1
            if self.has_batchnorm and stop - start < 2:
                continue  # batch statistics of one row are undefined: drop a 1-row remainder
            if order is None:
                Xb, Yb = X[start:stop], Y[start:stop]
            else:
                idx = order[start:stop]
                Xb, Yb = Xbuf[: stop - start], Ybuf[: stop - start]
                # idx is part of a permutation of range(n): mode="clip" skips the bounds checks and
                # the buffered copy of `out` that the default mode="raise" makes (1.5x faster on W3)
                np.take(X, idx, axis=0, out=Xb, mode="clip")
                np.take(Y, idx, axis=0, out=Yb, mode="clip")
            Z, cache = model.forward(Xb, train=True, rng=dropout_rng)
            loss, dZ = model.loss.value_and_grad(Z, Yb)
            model.backward(dZ, cache)
            # one dot product over the flat gradient catches any NaN/inf (and is the norm clipping needs)
            sq = float(np.dot(grad, grad))
            if not (math.isfinite(loss) and math.isfinite(sq)):
                raise _Diverged(self, step, loss, sq, lr, elapsed + time.perf_counter() - t0)
            # training metrics come from this forward pass (dropout on), before the update
            if task == "classification":
                correct += int(np.count_nonzero(model.loss.predict(Z) == y[start:stop]))
            else:
                D = Z - Yb
                sse += np.einsum("ij,ij->j", D, D, dtype=np.float64)
                abs_err += float(np.abs(D).sum(dtype=np.float64))
            loss_sum += loss * (stop - start)
            rows_used += stop - start
            if clip is not None:
                # torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is < 1
                coef = clip / (math.sqrt(sq) + 1e-6)
                if coef < 1.0:
                    grad *= coef
            self.optimizer.step(theta, grad, lr)  # updates theta IN PLACE: the layer views depend on it
            if self.stop_requested and stop < n:
                self.cursor = {"order": order, "start": stop, "step": step, "loss_sum": loss_sum,
                               "rows_used": rows_used, "correct": correct, "abs_err": abs_err, "sse": sse,
                               "elapsed": elapsed + time.perf_counter() - t0,
                               "probe_start": self.probe.start if self.probe is not None else None}
                raise _StepStopped
        rows_used = max(rows_used, 1)
        row: dict = {"epoch": self.epoch + 1, "train_loss": loss_sum / rows_used}
        if task == "classification":
            row["train_accuracy"] = correct / rows_used
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                row["train_r2"] = float(np.mean(np.where(self.ss_tot > 0, 1.0 - sse / self.ss_tot, np.nan)))
            row["train_mae"] = abs_err / (rows_used * Y.shape[1])
        if not np.isfinite(theta).all():  # finite gradients, but a step overflowed the weights
            raise _Diverged(self, step, math.inf, 0.0, lr, elapsed + time.perf_counter() - t0, what="weights")
        val = score(model, p.X["val"], p.Y["val"], p.y["val"], task)
        row["val_loss"] = val.pop("loss")
        row.update({f"val_{k}": v for k, v in val.items()})
        row["lr"] = lr
        row["epoch_time_s"] = elapsed + time.perf_counter() - t0
        return row


class _StepStopped(Exception):
    """A stop request interrupted an epoch; the trainer's cursor says where."""


class _Diverged(Exception):
    """A step produced a non-finite loss, gradient or weights."""

    def __init__(self, trainer: Trainer, step: int, loss: float, grad_sq: float, lr: float, elapsed: float,
                 what: str | None = None):
        super().__init__("diverged")
        self.step, self.lr, self.elapsed = step, lr, elapsed
        self.loss = loss if not math.isfinite(loss) else math.nan
        if what is None:
            what = "loss" if not math.isfinite(loss) else "gradient"
        self.what = what
        self.value = "NaN" if (what == "loss" and math.isnan(loss)) or (what == "gradient" and math.isnan(grad_sq)) \
            else "infinite"
        self.layer = None
        if what == "gradient":
            for key, g in trainer.model.params.grads.items():
                if not np.isfinite(g).all():
                    self.layer = key
                    break


# Below this many multiply-adds in a step's largest product, a second BLAS thread costs more in
# synchronisation than it saves (measured: W2's 64x128 layers lose, W3's 128x784x256 gain).
THREADS_MIN_MACS = 10_000_000


def choose_threads(setting, model: MLP, batch: int) -> int:
    """train.threads: an explicit count, or auto = all cores only for wide products."""
    import os

    if setting != "auto":
        return int(setting)
    largest = max(batch * layer.fan_in * layer.width for layer in model.layers)
    return (os.cpu_count() or 1) if largest >= THREADS_MIN_MACS else 1


def blas_threads(n: int):
    """A context limiting NumPy's BLAS to `n` threads (threadpoolctl), restored on exit."""
    import contextlib

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def checkpoint_seconds() -> float:
    """Minimum seconds between checkpoints (NNCTL_CHECKPOINT_SECONDS overrides, e.g. 0 in tests)."""
    import os

    try:
        return float(os.environ.get("NNCTL_CHECKPOINT_SECONDS", CHECKPOINT_SECONDS))
    except ValueError:
        return CHECKPOINT_SECONDS


# ------------------------------------------------------------------------------------ the run
@dataclass
class RunResult:
    run: RunDir
    summary: dict


def versions() -> dict[str, str]:
    """What a result depends on: interpreter, library versions, BLAS and its thread count."""
    import platform
    from importlib import metadata

    import nnctl

    out = {"python": platform.python_version(), "numpy": np.__version__, "nnctl": nnctl.__version__,
           "platform": platform.platform()}
    for dist in ("scikit-learn",):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def blas_info() -> list[dict]:
    """The BLAS libraries NumPy uses and their thread counts (threadpoolctl), if available."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{k: d.get(k) for k in ("internal_api", "version", "num_threads", "threading_layer")}
            for d in threadpool_info() if d.get("user_api") == "blas"]


def train_run(spec: Spec, runs_dir: Path, command: list[str] | None = None,
              on_start: Callable[[dict], None] | None = None,
              on_epoch: Callable[[dict], None] | None = None,
              on_finding: Callable[[dict], None] | None = None) -> RunResult:
    """Train the experiment `spec` describes and write its run directory.

    Parameters: `spec` from `load_spec`; `runs_dir` the folder that receives the run dir;
    `command` recorded in summary.json; `on_start(info)` once the model is built and
    `on_epoch(row)` after every epoch (row = one metrics.csv row); `on_finding(finding)` once
    per diagnostic finding (config findings come first, before on_start).
    Returns the RunResult (run dir and summary). Raises ConfigError/DataError before any file
    is written, TrainingFailed (exit 1) if training diverges or is interrupted.
    """
    prepared = prepare(spec)
    run = RunDir.create(runs_dir, spec.name)
    lock = RunLock.acquire(run)  # held until this process ends: resume and compare can tell it is alive
    try:
        # the config first: with it, even a run killed during set-up can be resumed (from scratch)
        run.write_text(RunDir.CONFIG, resolved_yaml(spec))
        summary = new_summary(spec, prepared, run, command)
        run.write_json(RunDir.SUMMARY, summary)
        write_setup_files(run, prepared)
    except OSError as exc:
        lock.release()
        raise TrainingFailed(f"{exc.filename or run.path}: cannot write ({exc.strerror})", run_dir=run.path) from None
    if on_finding is not None:
        for f in summary["findings"]:
            on_finding(f)
    trainer = Trainer(prepared, on_epoch=on_epoch, on_finding=on_finding)
    return execute(run, lock, spec, trainer, summary, on_start)


def new_summary(spec: Spec, prepared: Prepared, run: RunDir, command: list[str] | None) -> dict:
    """summary.json at the start of a run (status running)."""
    ds, model = prepared.dataset, prepared.model
    c = spec.config
    return {
        "status": "running", "name": spec.name, "run_dir": str(run.path), "task": ds.task,
        "loss": c["train"]["loss"], "classes": ds.class_names, "n_features": int(ds.n_features),
        "n_inputs": int(prepared.pre.n_outputs), "n_outputs": int(model.output_layer.units),
        "n_rows": {k: int(len(v)) for k, v in prepared.split.items()},
        "n_params": int(model.n_params()), "seed": c["seed"], "epochs_planned": c["train"]["epochs"],
        "epochs_run": 0, "best": None, "final": None, "wall_time_s": None,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "finished_at": None,
        "command": command if command is not None else sys.argv,
        "versions": versions(), "blas": blas_info(), "message": "", "findings": config_findings(spec),
    }


def write_setup_files(run: RunDir, prepared: Prepared) -> None:
    """split.npz and preprocess.npz: what eval and predict need besides the weights."""
    ds = prepared.dataset
    run.write_npz(RunDir.SPLIT, {**prepared.split, "fingerprint": np.array(ds.fingerprint),
                                 "source": np.array(ds.source), "n_rows": np.array(len(ds.y))})
    run.write_npz(RunDir.PREPROCESS, preprocess_arrays(prepared))


def resume_run(path: Path, on_start: Callable[[dict], None] | None = None,
               on_epoch: Callable[[dict], None] | None = None,
               on_finding: Callable[[dict], None] | None = None) -> RunResult:
    """Continue an interrupted run from its last checkpoint, in its own run directory.

    The result is bit-identical to an uninterrupted run. Refused (RunDirError) if the run has
    finished, or its config or data changed since the checkpoint; TrainingFailed (exit 1) if
    another process holds the run.
    """
    import json

    from nnctl.config import load_spec

    run = RunDir(Path(path))
    if not run.path.is_dir():
        raise RunDirError(f"{run.path}: no such run directory")
    if not run.file(RunDir.CONFIG).exists():  # checked before locking: no .lock left in a stray folder
        raise RunDirError(f"{run.path}: no config.yaml (not a run directory, or the run was killed before "
                          f"writing anything); nothing to resume")
    lock = RunLock.acquire(run)
    try:
        try:
            summary = json.loads(run.file(RunDir.SUMMARY).read_text(encoding="utf-8"))
        except FileNotFoundError:
            summary = None  # killed during set-up: restart from scratch below
        except (ValueError, UnicodeDecodeError) as exc:
            raise RunDirError(f"{run.file(RunDir.SUMMARY)}: damaged ({exc})") from None
        status = summary.get("status") if summary else None
        if status in ("completed", "early_stopped", "stopped_at_loss"):
            raise RunDirError(f"{run.path}: the run already finished ({status}); nothing to resume")
        if status == "diverged":
            raise RunDirError(f"{run.path}: the run diverged; resuming would diverge again. Change the config "
                              f"(e.g. a lower optimizer.lr) and train a new run")
        try:
            spec = load_spec(run.file(RunDir.CONFIG))
        except NnctlError as exc:
            raise RunDirError(f"{run.path}: cannot resume: {exc}") from None
        prepared = prepare(spec)
        if summary is None or not run.file(RunDir.SPLIT).exists() or not run.file(RunDir.PREPROCESS).exists():
            summary = summary or new_summary(spec, prepared, run, ["nnctl", *sys.argv[1:]])
            write_setup_files(run, prepared)
        split = read_npz(run.file(RunDir.SPLIT), "split file")
        old = str(split.get("fingerprint", ""))
        if old != prepared.dataset.fingerprint:
            raise RunDirError(f"{run.path}: the data ({spec.config['data']['source']}) changed since the run "
                              f"started (fingerprint {old[:12]} -> {prepared.dataset.fingerprint[:12]}); "
                              f"resume refused")
        if any(not np.array_equal(split[k], prepared.split[k]) for k in ("train", "val", "test")):
            raise RunDirError(f"{run.file(RunDir.SPLIT)}: the saved split differs from the one the config "
                              f"draws; resume refused")
        trainer = Trainer(prepared, on_epoch=on_epoch, on_finding=on_finding)
        ckpt = run.file(CHECKPOINT_DIR) / CHECKPOINT_FILE
        if ckpt.exists():
            meta, arrays = read_checkpoint(run)
            if meta.get("config_sha256") != config_digest(spec):
                raise RunDirError(f"{run.file(RunDir.CONFIG)}: changed since the checkpoint was written; "
                                  f"resume refused (train the changed config as a new run)")
            try:
                trainer.load_state(meta, arrays)
            except (ValueError, KeyError, TypeError) as exc:
                raise RunDirError(f"{ckpt}: damaged checkpoint ({exc})") from None
            summary["message"] = f"resumed from epoch {trainer.epoch}"
        else:
            summary["message"] = "no checkpoint yet: restarted from epoch 0"
        summary.update(status="running", resumed_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), finished_at=None,
                       resumed_by=["nnctl", *sys.argv[1:]] if sys.argv else None)
        summary["findings"] = config_findings(spec)
    except BaseException:
        lock.release()
        raise
    return execute(run, lock, spec, trainer, summary, on_start)


def execute(run: RunDir, lock: RunLock, spec: Spec, trainer: Trainer, summary: dict,
            on_start: Callable[[dict], None] | None) -> RunResult:
    """Train to the end in `run`, handling signals, divergence and disk errors; write every file."""
    t0 = time.perf_counter()
    previous_wall = float(summary.get("wall_time_s") or 0.0)
    model = trainer.model
    columns = metric_columns(trainer.task)
    table, diag_table = MetricsTable(columns), MetricsTable(DIAG_COLUMNS)
    digest = config_digest(spec)
    config_found = list(summary["findings"])

    def flush(rows):
        table.extend(rows[len(table):])
        run.write_text(RunDir.METRICS, table.text())
        if trainer.probe is not None:
            diag_table.extend(diag_table_rows(trainer.probe.rows[len(diag_table):]))
            run.write_text(RunDir.DIAGNOSTICS, diag_table.text())
            summary["findings"] = config_found + trainer.findings.items
        summary["epochs_run"] = len(rows)
        summary["final"] = rows[-1] if rows else None
        summary["wall_time_s"] = previous_wall + time.perf_counter() - t0
        run.write_json(RunDir.SUMMARY, summary)

    trainer.flush = flush
    trainer.checkpoint = lambda tr: (write_checkpoint(run, tr, digest), flush(tr.rows))
    summary["threads"] = trainer.threads  # BLAS threads used while training (train.threads)
    summary["pid"], summary["host"] = lock.pid, lock.host
    try:
        with StopOnSignals(trainer) as signals:
            try:
                flush(trainer.rows)  # a resumed run's metrics.csv is cut back to the checkpoint here
                if on_start is not None:
                    on_start({**summary, "columns": columns})
                result = trainer.fit()
            except KeyboardInterrupt:  # a second Ctrl-C: stop now, keep the last checkpoint as it is
                signals.finishing = True
                summary.update(status="interrupted", message="interrupted at once (second signal); resume "
                               f"continues from the last checkpoint: nnctl resume {run.path}")
                flush(trainer.rows[: len(table)])
                raise TrainingFailed(f"{run.path}: {summary['message']}", run_dir=run.path) from None
            # training is over: further signals are ignored while the final files are written, so
            # a second Ctrl-C or a SIGTERM after a SIGINT cannot leave them half-updated
            signals.finishing = True
            if result.status == "interrupted":
                write_checkpoint(run, trainer, digest)  # the exact position, mid-epoch if need be
                result.message += f"; continue with: nnctl resume {run.path}"
            run.write_npz(RunDir.WEIGHTS, model.state_arrays())
            summary.update(status=result.status, message=result.message, best=result.best,
                           weights_epoch=result.weights_epoch, train_time_s=trainer.train_seconds,
                           finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            flush(result.rows)
    except OSError as exc:
        raise TrainingFailed(f"{exc.filename or run.path}: cannot write ({exc.strerror}); the last checkpoint is "
                             f"intact", run_dir=run.path) from None
    except (TrainingFailed, NnctlError):
        raise
    except BaseException as exc:
        summary.update(status="failed", message=f"{type(exc).__name__}: {exc}")
        try:
            flush(trainer.rows)
        except OSError:
            pass
        raise
    finally:
        lock.release()
    if result.status in ("diverged", "interrupted"):
        raise TrainingFailed(f"{run.path}: {result.message}", run_dir=run.path)
    return RunResult(run, summary)


class StopOnSignals:
    """While active: the first SIGINT/SIGTERM asks the trainer to stop after its current step (it
    checkpoints and exits 1); a second one raises KeyboardInterrupt at once. Main thread only."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.previous: dict = {}
        self.finishing = False  # set once training ended: signals are then ignored

    def _handle(self, signum, frame):
        if self.finishing:
            return
        if self.trainer.stop_requested:
            raise KeyboardInterrupt
        self.trainer.request_stop()

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        import signal

        for sig, handler in self.previous.items():
            # after a stop request the process is on its way out (exit 1): a late second signal must
            # not kill it while it reports, so signals stay ignored; otherwise restore the handlers
            signal.signal(sig, signal.SIG_IGN if self.trainer.stop_requested else handler)
        return False


class RunLock:
    """An exclusive flock on RUN_DIR/.lock, held while a process trains in the run dir.

    The kernel drops the lock when the holder dies (even by SIGKILL), so a stale lock cannot
    exist: a run marked "running" whose lock is free was killed.
    """

    NAME = ".lock"

    def __init__(self, fd: int, pid: int, host: str):
        self.fd, self.pid, self.host = fd, pid, host

    @classmethod
    def acquire(cls, run: RunDir, wait: float = 0.5) -> RunLock:
        import fcntl
        import json
        import os
        import socket

        path = run.file(cls.NAME)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    holder = _read_holder(path)
                    os.close(fd)
                    raise TrainingFailed(f"{run.path}: in use by another nnctl process{holder}; wait for it "
                                         f"to finish or stop it") from None
                time.sleep(0.05)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        return cls(fd, me["pid"], me["host"])

    def release(self) -> None:
        import os

        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def _read_holder(path: Path) -> str:
    import json

    try:
        info = json.loads(path.read_text())
        return f" (pid {info['pid']} on {info['host']}, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def lock_is_held(run_dir: Path) -> bool:
    """Is some live process training in this run dir? (Probes the flock without keeping it.)"""
    import fcntl
    import os

    path = Path(run_dir) / RunLock.NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def write_checkpoint(run: RunDir, trainer: Trainer, config_sha256: str) -> None:
    """checkpoint/checkpoint.npz: one file, written whole, holding everything resume needs."""
    import json

    meta, arrays = trainer.state()
    meta = {"format": CHECKPOINT_FORMAT, "config_sha256": config_sha256, **meta}
    arrays["meta"] = np.array(json.dumps(meta))  # NaN kept as NaN: the rows must come back exactly
    folder = run.file(CHECKPOINT_DIR)
    folder.mkdir(exist_ok=True)
    write_npz(folder / CHECKPOINT_FILE, arrays)


def read_checkpoint(run: RunDir) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of a run's checkpoint; RunDirError if missing or damaged."""
    import json

    arrays = read_npz(run.file(CHECKPOINT_DIR) / CHECKPOINT_FILE, "checkpoint")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, ValueError):
        raise RunDirError(f"{run.path}: the checkpoint has no readable metadata") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise RunDirError(f"{run.path}: checkpoint format {meta.get('format')!r} is not {CHECKPOINT_FORMAT}")
    return meta, arrays


def config_digest(spec: Spec) -> str:
    """sha256 of the resolved config, so a checkpoint is never applied to a different experiment."""
    import hashlib

    return hashlib.sha256(resolved_yaml(spec).encode()).hexdigest()


def preprocess_arrays(p: Prepared) -> dict[str, np.ndarray]:
    """preprocess.npz: the fitted transform, class names and the input encoding (no pickles)."""
    import json

    ds = p.dataset
    arrays = dict(p.pre.arrays())
    arrays["task"] = np.array(ds.task)
    arrays["classes"] = np.array(ds.class_names if ds.class_names else [], dtype=str)
    arrays["feature_names"] = np.array(ds.feature_names, dtype=str)
    arrays["columns"] = np.array(json.dumps(ds.columns))
    arrays["target_name"] = np.array(ds.target_name or "")
    return arrays
