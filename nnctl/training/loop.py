"""The training loop: epochs of gradient steps over the prepared training split.

`Trainer.fit` runs the remaining epochs and says how training ended; `run_epoch` is one pass of
forward, loss, backward, a divergence check, optional clipping and an optimizer step per batch.
The state the loop changes lives in its components (model, optimizer, schedule, batches, epoch
meter, early stopping, random streams, diagnostics), each with a state_dict, and in a few counters
of the Trainer itself (epoch, rows, seconds, the epoch's starting weights); checkpoint.py captures
all of it, so a resumed run continues bit for bit.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from nnctl.build import Prepared, batch_size, build_optimizer, build_schedule
from nnctl.metrics import score
from nnctl.snapshots import Snapshots
from nnctl.training.batches import Batches
from nnctl.training.early_stopping import EarlyStopping
from nnctl.training.meter import EpochMeter
from nnctl.training.steps import StepLog

FLUSH_SECONDS = 1.0  # metrics.csv and summary.json are rewritten at most this often while training
# A due checkpoint is skipped if the last one is younger than this: with millisecond epochs, writing
# every epoch would double the run time, and a crash still loses at most about a second of work.
CHECKPOINT_SECONDS = 1.0
# Below this many multiply-adds in a step's largest product, a second BLAS thread costs more in
# synchronisation than it saves (measured: W2's 64x128 layers lose, W3's 128x784x256 gain).
THREADS_MIN_MACS = 10_000_000


class FitResult(NamedTuple):
    """How training ended."""

    status: str  # completed | early_stopped | stopped_at_loss | diverged | interrupted
    rows: list[dict]
    best: dict | None
    message: str = ""
    weights_epoch: int | None = None  # the epoch whose weights are saved (restore_best)


class Trainer:
    """Gradient descent over the prepared training split, one epoch at a time.

    Callbacks: `on_epoch(row)` after every epoch, `on_finding(finding)` for each diagnostic
    finding; the session sets `on_flush(rows)` (rewrite metrics.csv and summary.json, at most once
    a second) and `on_checkpoint(trainer)` (every `checkpoint_every` epochs, at most once a second).
    """

    def __init__(self, prepared: Prepared, on_epoch: Callable[[dict], None] | None = None,
                 on_finding: Callable[[dict], None] | None = None):
        from nnctl.diagnostics import Findings
        from nnctl.probe import Probe

        self.prepared = p = prepared
        self.spec, self.model, self.rngs = p.spec, p.model, p.rngs
        self.task = p.dataset.task
        self.on_epoch, self.on_finding = on_epoch, on_finding
        self.on_flush: Callable[[list[dict]], None] | None = None
        self.on_checkpoint: Callable[[Trainer], None] | None = None
        t = self.spec.train
        self.optimizer = build_optimizer(self.spec, self.model.params.theta)
        self.schedule = build_schedule(self.spec)
        size = batch_size(self.spec, len(p.X["train"]))
        self.batches = Batches(p.X["train"], p.Y["train"], p.y["train"], size, t.shuffle, self.rngs["shuffle"],
                               min_rows=2 if self.spec.model.needs_batch_stats else 1)
        self.meter = EpochMeter(self.task, p.Y["train"], p.target.scale if p.target is not None else None)
        self.has_val = len(p.X["val"]) > 0
        self.stopper = EarlyStopping(t.early_stopping, self.has_val)
        self.snapshots = Snapshots(t.snapshot_every)  # train.snapshot_every; the session writes them
        self.threads = choose_threads(t.threads, self.model, size)
        self.epoch = 0  # epochs completed
        self.rows: list[dict] = []  # one metrics row per completed epoch
        self.train_seconds = 0.0
        self.epoch_seconds = 0.0  # time spent so far in the current epoch (it may span a resume)
        self.epoch_start_state: dict[str, np.ndarray] | None = None  # last finite weights, if a step diverges
        self.stop_requested = False
        self.step_log = StepLog() if t.log_steps else None  # train.log_steps: steps.csv
        self.probe = self.findings = None
        if t.diagnostics:
            self.probe = Probe(self.model, p.X["train"], p.Y["train"], self.rngs["probe"])
            self.findings = Findings(self.model, self.task, p.dataset.n_classes, self.optimizer.adaptive)

    def request_stop(self) -> None:
        """Ask training to stop after the current step (signal handlers call this)."""
        self.stop_requested = True

    def fit(self) -> FitResult:
        """Run the remaining epochs and return how training ended."""
        # divergence is detected after each epoch, so NumPy's overflow warnings are noise
        if self.epoch == 0 and not self.batches.mid_epoch:
            self.snapshots.take(0, self.model)  # the initial weights
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), blas_threads(self.threads):
            status, message = self._fit()
        if status not in ("diverged", "interrupted") and self.rows:
            self.snapshots.take(self.epoch, self.model, final=True)  # the last epoch's, before restore_best
            if self.on_checkpoint is not None:  # the finished state (not the best), kept for resume --epochs
                self.on_checkpoint(self)
        weights_epoch = self.epoch
        stopper = self.stopper
        if stopper.best_state is not None and status not in ("diverged", "interrupted"):  # an interrupted
            # run keeps its current weights: the checkpoint written next must hold them, not the best
            self.model.load_state_arrays(stopper.best_state)
            weights_epoch = stopper.best["epoch"]
        return FitResult(status, self.rows, stopper.best, message, weights_epoch if self.rows else None)

    def _fit(self) -> tuple[str, str]:
        t = self.spec.train
        last_flush = last_checkpoint = time.perf_counter()
        if self.probe is not None and self.epoch == 0 and not self.batches.mid_epoch and not self.probe.rows:
            self.probe.initial()
            self._report(self.findings.initial(self.probe.initial_loss))
            # epoch 0: the untrained network, measured like every epoch (no update ratio yet)
            self._report(self.findings.epoch(0, self.probe.epoch_end(0), self.rows))
        while self.epoch < t.epochs:
            if self.stop_requested:
                return "interrupted", f"interrupted after epoch {self.epoch}"
            try:
                row = self.run_epoch()
            except StepStopped:
                return "interrupted", f"interrupted in epoch {self.epoch + 1}, after step {self.batches.step}"
            except Diverged as exc:
                return "diverged", self._diverged(exc)
            self._end_epoch(row)
            if t.stop_at_loss is not None and row["train_loss"] <= t.stop_at_loss:
                return "stopped_at_loss", (f"stopped at epoch {self.epoch}: training loss {row['train_loss']:.4g} "
                                           f"<= stop_at_loss {t.stop_at_loss:g}")
            if self.stopper.should_stop:
                return "early_stopped", self.stopper.message(self.epoch)
            if (self.on_checkpoint is not None and self.epoch % t.checkpoint_every == 0 and self.epoch < t.epochs
                    and time.perf_counter() - last_checkpoint >= checkpoint_seconds()):
                self.on_checkpoint(self)
                last_checkpoint = time.perf_counter()
            if self.on_flush is not None and time.perf_counter() - last_flush > FLUSH_SECONDS:
                self.on_flush(self.rows)
                last_flush = time.perf_counter()
        return "completed", ""

    def _end_epoch(self, row: dict) -> None:
        """Record a finished epoch: its row, diagnostics, the best epoch, the schedule's observation."""
        self.epoch += 1
        self.train_seconds += row["epoch_time_s"]
        self.rows.append(row)
        self.snapshots.take(self.epoch, self.model)
        if self.probe is not None:
            rows = self.probe.epoch_end(self.epoch)
            self._report(self.findings.epoch(self.epoch, rows, self.rows, history=self.probe.rows))
        self.stopper.update(row, self.model)
        if self.schedule.needs_metric:
            self.schedule.observe(self.epoch - 1, row["val_loss"] if self.has_val else row["train_loss"])
        if self.on_epoch is not None:
            self.on_epoch(row)

    def run_epoch(self) -> dict:
        """One pass over the training rows (or the rest of one, after a stop); returns the metrics row.

        Raises StepStopped after a step if a stop was requested (the batches keep the position), and
        Diverged before a step whose loss or gradient is not finite.
        """
        model, batches, meter = self.model, self.batches, self.meter
        theta, grad = model.params.theta, model.params.grad
        clip = self.spec.optimizer.clip_grad_norm
        lr = self.schedule.lr(self.epoch)
        t0 = time.perf_counter()
        if not batches.mid_epoch:
            self._start_epoch()
        dropout_rng, predict = self.rngs["dropout"], model.loss.predict
        log, epoch = self.step_log, self.epoch + 1
        for Xb, Yb, yb in batches:
            Z, cache = model.forward(Xb, train=True, rng=dropout_rng)
            loss, dZ = model.loss.value_and_grad(Z, Yb)
            model.backward(dZ, cache)
            # one dot product over the flat gradient catches any NaN/inf (and is the norm clipping needs)
            sq = float(np.dot(grad, grad))
            if not (math.isfinite(loss) and math.isfinite(sq)):
                raise Diverged(batches.step, loss, sq, lr, self.epoch_seconds + time.perf_counter() - t0,
                               layer=first_nonfinite(model.params.grads))
            meter.add(loss, Z, Yb, yb, predict)  # training metrics of this forward pass, dropout on
            if clip is not None:
                # torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is < 1
                coef = clip / (math.sqrt(sq) + 1e-6)
                if coef < 1.0:
                    grad *= coef
            self.optimizer.step(theta, grad, lr)  # updates theta IN PLACE: the layer views depend on it
            if log is not None:
                log.add(epoch, loss, lr)
            if self.stop_requested and batches.mid_epoch:
                self.epoch_seconds += time.perf_counter() - t0
                raise StepStopped
        if not np.isfinite(theta).all():  # finite gradients, but a step overflowed the weights
            raise Diverged(batches.step, math.inf, 0.0, lr, self.epoch_seconds + time.perf_counter() - t0,
                           what="weights")
        return self._epoch_row(lr, t0)

    def _start_epoch(self) -> None:
        """A new epoch: its shuffled order, fresh sums, and the weights to fall back on if it diverges."""
        self.batches.start_epoch()
        self.meter.reset()
        self.epoch_seconds = 0.0
        self.epoch_start_state = self.model.state_arrays()
        if self.probe is not None:
            self.probe.epoch_start()

    def _epoch_row(self, lr: float, t0: float) -> dict:
        """The metrics row of the epoch just finished: training sums, validation in inference mode."""
        p = self.prepared
        row = {"epoch": self.epoch + 1, **self.meter.row()}
        if len(p.X["val"]):  # without a val part (data.split.val: 0) there are no val metrics, not NaN ones
            val = score(self.model, p.X["val"], p.Y["val"], p.y["val"], self.task, p.target)
            row.update({"val_loss": val.pop("loss"), **{f"val_{k}": v for k, v in val.items()}})
        return {**row, "lr": lr, "epoch_time_s": self.epoch_seconds + time.perf_counter() - t0}

    def _diverged(self, exc: Diverged) -> str:
        """Keep the last finite weights, record the epoch, and explain where it broke."""
        model = self.model
        kept = "the last finite weights are kept"
        if not np.isfinite(model.params.theta).all():
            try:
                model.load_state_arrays(self.epoch_start_state or {})
                kept = f"the weights from the start of epoch {self.epoch + 1} are kept"
            except ValueError:  # not finite even then (e.g. an overflowing init): nothing finite to keep
                kept = "no finite weights were left to keep"
        self.batches.end_epoch()
        self.epoch += 1
        self.rows.append({"epoch": self.epoch, "train_loss": exc.loss, "lr": exc.lr, "epoch_time_s": exc.elapsed})
        if self.findings is not None:
            self._report(self.findings.epoch(self.epoch, [], self.rows, diverged=True))
        return exc.message(self.epoch, kept, self.spec.optimizer.lr)

    def _report(self, findings: list[dict]) -> None:
        if self.on_finding is not None:
            for f in findings:
                self.on_finding(f)


class StepStopped(Exception):
    """A stop request interrupted an epoch; the trainer's batches say where."""


class Diverged(Exception):
    """A step produced a non-finite loss, gradient or weights."""

    def __init__(self, step: int, loss: float, grad_sq: float, lr: float, elapsed: float, what: str | None = None,
                 layer: str | None = None):
        super().__init__("diverged")
        self.step, self.lr, self.elapsed = step, lr, elapsed
        self.loss = loss if not math.isfinite(loss) else math.nan
        if what is None:
            what = "loss" if not math.isfinite(loss) else "gradient"
        self.what = what
        self.value = "NaN" if (what == "loss" and math.isnan(loss)) or (what == "gradient" and math.isnan(grad_sq)) \
            else "infinite"
        self.layer = layer if what == "gradient" else None  # the first parameter with a non-finite gradient

    def message(self, epoch: int, kept: str, lr: float) -> str:
        """Where training broke, what was kept, and what to change."""
        where = f" (first in {self.layer})" if self.layer else ""
        return (f"training diverged at epoch {epoch}, step {self.step}: the {self.what} became {self.value}{where}; "
                f"{kept}. Lower optimizer.lr (now {lr:g}), standardize the inputs, or set optimizer.clip_grad_norm")


def first_nonfinite(grads: dict[str, np.ndarray]) -> str | None:
    """The key of the first gradient array holding a NaN or inf (W1, b1, ...), if any."""
    return next((key for key, g in grads.items() if not np.isfinite(g).all()), None)


def choose_threads(setting, model, batch: int) -> int:
    """train.threads: an explicit count, or auto = all cores only for wide products."""
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
    try:
        return float(os.environ.get("NNCTL_CHECKPOINT_SECONDS", CHECKPOINT_SECONDS))
    except ValueError:
        return CHECKPOINT_SECONDS
