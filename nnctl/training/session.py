"""A training session: a run directory around the trainer, with its files, its lock and signals.

`train_run` is the library entry point behind `nnctl train`: it loads and checks everything before
it creates the run directory (so a bad data file leaves nothing behind), then trains and writes
the files the README's "A run directory" lists. `resume_run` continues an interrupted run in its
own directory. Both report progress through callbacks and never print.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl.build import Prepared, prepare
from nnctl.config.load import load_spec, resolved_yaml
from nnctl.config.spec import Spec
from nnctl.diagnostics import config_findings, diag_table_rows
from nnctl.errors import NnctlError, RunDirError, TrainingFailed
from nnctl.metrics import metric_columns
from nnctl.probe import DIAG_COLUMNS
from nnctl.runs import FINISHED, MetricsTable, RunDir, RunLock, read_split, read_summary
from nnctl.snapshots import SNAPSHOTS_FILE
from nnctl.tracking import MlflowTracker, check_tracker, open_tracker
from nnctl.training.checkpoint import (
    CHECKPOINT_DIR,
    CHECKPOINT_FILE,
    CheckpointWriter,
    config_digest,
    config_digests,
    read_checkpoint,
    restore,
)
from nnctl.training.extend import extend_trainer, extended_spec
from nnctl.training.loop import Trainer
from nnctl.training.runfiles import keep_rows, new_summary, write_setup_files
from nnctl.training.steps import COLUMNS as STEP_COLUMNS


@dataclass
class RunResult:
    run: RunDir
    summary: dict


def train_run(spec: Spec, runs_dir: Path, command: list[str] | None = None,
              on_start: Callable[[dict], None] | None = None,
              on_epoch: Callable[[dict], None] | None = None,
              on_finding: Callable[[dict], None] | None = None,
              on_notice: Callable[[str], None] | None = None, rows=None,
              stop: threading.Event | None = None) -> RunResult:
    """Train the experiment `spec` describes and write its run directory.

    Parameters: `spec` from `load_spec`; `runs_dir` the folder that receives the run dir;
    `command` recorded in summary.json; `on_start(info)` once the model is built and
    `on_epoch(row)` after every epoch (row = one metrics.csv row); `on_finding(finding)` once
    per diagnostic finding (config findings come first, before on_start); `on_notice(message)`
    for what tracking (train.log) has to say, e.g. that the MLflow store failed mid-run.
    Returns the RunResult (run dir and summary). Raises ConfigError/DataError before any file
    is written, TrainingFailed (exit 1) if training diverges or is interrupted.
    `rows`: an Arrow table held in memory (the Python API) in place of the data file; the run
    keeps it as data.parquet, which its config.yaml names, so eval, resume and re-training work.
    `stop`: an event another thread may set to stop training as a first Ctrl-C does (a checkpoint,
    then TrainingFailed, interrupted); a Dask worker's trial sets it when the sweep is stopped.
    """
    check_tracker(spec)  # MLflow missing: said before the data is loaded
    prepared = prepare(spec, rows)
    spec = prepared.spec
    tracker = open_tracker(spec)  # before the run dir: a store that cannot be used leaves nothing behind
    run = RunDir.create(runs_dir, spec.name)
    lock = RunLock.acquire(run)  # held until this process ends: resume and compare can tell it is alive
    try:
        if rows is not None:
            keep_rows(run, prepared, rows)
    except OSError as exc:
        lock.release()
        raise TrainingFailed(f"{exc.filename or run.path}: cannot write ({exc.strerror})", run_dir=run.path) from None
    spec = prepared.spec
    summary = new_summary(prepared, run, command)
    try:
        # the config first: with it, even a run killed during set-up can be resumed (from scratch)
        run.write_text(RunDir.CONFIG, resolved_yaml(spec))
        run.write_json(RunDir.SUMMARY, summary)
        write_setup_files(run, prepared)
    except OSError as exc:
        failure = write_failure(run, summary, exc, None)
        lock.release()
        raise failure from None
    if on_finding is not None:
        for f in summary["findings"]:
            on_finding(f)
    trainer = Trainer(prepared, on_epoch=on_epoch, on_finding=on_finding)
    return execute(run, lock, trainer, summary, on_start, tracker, on_notice, stop)


def resume_run(path: Path, on_start: Callable[[dict], None] | None = None,
               on_epoch: Callable[[dict], None] | None = None,
               on_finding: Callable[[dict], None] | None = None,
               on_notice: Callable[[str], None] | None = None, epochs: int | None = None,
               stop: threading.Event | None = None) -> RunResult:
    """Continue an interrupted run from its last checkpoint, in its own run directory.

    The result is bit-identical to an uninterrupted run. Refused (RunDirError) if the run has
    finished (unless `epochs` extends it), or its config or data changed since the checkpoint;
    TrainingFailed (exit 1) if another process holds the run. A run tracked in MLflow (train.log)
    goes on logging to the same MLflow run when the store holds it, else to a new one, with a
    notice saying so.

    `epochs` (resume --epochs N): train to N epochs in all, continuing a finished run from the
    checkpoint it kept at its last epoch (or an interrupted one to a new total). With a schedule
    that does not depend on the planned total and no early stopping, the result is bit-identical to
    a run trained for N epochs from the start; otherwise summary.json's message says what differs.
    `stop`: as for train_run.
    """
    run = RunDir(Path(path))
    if not run.path.is_dir():
        raise RunDirError(f"{run.path}: no such run directory")
    if not run.file(RunDir.CONFIG).exists():  # checked before locking: no .lock left in a stray folder
        raise RunDirError(f"{run.path}: no config.yaml (not a run directory, or the run was killed before "
                          f"writing anything); nothing to resume")
    if not os.access(run.path, os.W_OK):
        raise RunDirError(f"{run.path}: the run directory is read-only; resume writes the run's files there: make "
                          f"it writable, or copy the run directory elsewhere and resume the copy")
    lock = RunLock.acquire(run)
    try:
        summary = read_summary(run)  # None: killed during set-up, restart from scratch
        status = summary.get("status") if summary else None
        if status in FINISHED and epochs is None:
            raise RunDirError(f"{run.path}: the run already finished ({status}); nothing to resume. To train it "
                              f"further: nnctl resume {run.path} --epochs N (N epochs in all)")
        if status == "diverged":
            raise RunDirError(f"{run.path}: the run diverged; resuming would diverge again. Change the config "
                              f"(e.g. a lower optimizer.lr) and train a new run")
        try:
            spec = load_spec(run.file(RunDir.CONFIG), run_file=True)
        except NnctlError as exc:
            raise RunDirError(f"{run.path}: cannot resume: {exc}") from None
        check_tracker(spec)
        planned = spec
        if epochs is not None:
            planned = extended_spec(run, spec, summary, epochs)
        prepared = prepare(planned)
        if summary is None or not run.file(RunDir.SPLIT).exists() or not run.file(RunDir.PREPROCESS).exists():
            summary = summary or new_summary(prepared, run, ["nnctl", *sys.argv[1:]])
            try:
                write_setup_files(run, prepared)
            except OSError as exc:
                raise TrainingFailed(f"{exc.filename or run.path}: cannot write ({exc.strerror})",
                                     run_dir=run.path) from None
        _check_same_data(run, prepared)
        trainer = Trainer(prepared, on_epoch=on_epoch, on_finding=on_finding)
        ckpt = run.file(CHECKPOINT_DIR) / CHECKPOINT_FILE
        if ckpt.exists():
            meta, arrays = read_checkpoint(run)
            if meta.get("config_sha256") not in config_digests(prepared.spec) | (
                    config_digests(spec) if epochs is not None else set()):
                raise RunDirError(f"{run.file(RunDir.CONFIG)}: changed since the checkpoint was written; "
                                  f"resume refused (train the changed config as a new run)")
            try:
                restore(trainer, meta, arrays)
            except (ValueError, KeyError, TypeError, OverflowError) as exc:
                raise RunDirError(f"{ckpt}: damaged checkpoint ({str(exc)[:200]})") from None
            trainer.snapshots.resume(run.file(SNAPSHOTS_FILE), trainer.model.expected_shapes(), trainer.epoch)
            summary["message"] = f"resumed from epoch {trainer.epoch}"
            if epochs is not None:
                summary["message"] = extend_trainer(run, trainer, spec, summary, epochs)
            # where the checkpoint left off: epochs done, and steps into the next one if it stopped mid-epoch
            summary["resumed_from"] = {"epoch": trainer.epoch,
                                       "step": trainer.batches.step if trainer.batches.mid_epoch else 0}
        else:
            if status in FINISHED:
                raise RunDirError(f"{run.path}: the run finished without a checkpoint (it was trained by an nnctl that "
                                  f"did not keep one at the end); train it again with train.epochs: {epochs}")
            summary["message"] = "no checkpoint yet: restarted from epoch 0"
            summary["resumed_from"] = None
            if epochs is not None:
                run.write_text(RunDir.CONFIG, resolved_yaml(prepared.spec))
                summary["epochs_planned"] = epochs
        summary.update(status="running", resumed_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), finished_at=None,
                       resumed_by=["nnctl", *sys.argv[1:]] if sys.argv else None)
        summary["findings"] = config_findings(prepared.spec)
        tracker = open_tracker(prepared.spec, summary.get("tracking"))
    except BaseException:
        lock.release()
        raise
    return execute(run, lock, trainer, summary, on_start, tracker, on_notice, stop)


def _check_same_data(run: RunDir, prepared: Prepared) -> None:
    """Refuse to resume on data that differs from what the run started with."""
    split = read_split(run)
    old, now = str(split.get("fingerprint", "")), prepared.dataset.fingerprint  # (prepare made it a str)
    if old != now:
        raise RunDirError(f"{run.path}: the data ({prepared.spec.data.source}) changed since the run started "
                          f"(fingerprint {old[:12]} -> {now[:12]}); resume refused")
    if any(not np.array_equal(split[k], prepared.split[k]) for k in ("train", "val", "test")):
        raise RunDirError(f"{run.file(RunDir.SPLIT)}: the saved split differs from the one the config draws; "
                          f"resume refused")


def execute(run: RunDir, lock: RunLock, trainer: Trainer, summary: dict,
            on_start: Callable[[dict], None] | None, tracker: MlflowTracker | None = None,
            on_notice: Callable[[str], None] | None = None, stop: threading.Event | None = None) -> RunResult:
    """Train to the end in `run`, handling signals, divergence and disk errors; write every file.
    `tracker` (train.log) gets the rows at every flush and the run's files at the end; `stop` (set
    by another thread) stops training as a signal does."""
    t0 = time.perf_counter()
    previous_wall = float(summary.get("wall_time_s") or 0.0)
    model = trainer.model
    columns = metric_columns(trainer.task)
    table, diag_table, steps_table = MetricsTable(columns), MetricsTable(DIAG_COLUMNS), MetricsTable(STEP_COLUMNS)
    checkpoints = CheckpointWriter(run, config_digest(trainer.spec))
    if checkpoints.path.exists():  # resume restored it: it is there to go back to until a new one is written
        checkpoints.epoch = trainer.epoch
    config_found = list(summary["findings"])
    summary["best_by"] = trainer.stopper.criterion  # how `best` is chosen: compare and train say the same

    def tracking_notes():  # what the tracker has to say: to the user, and into summary.json
        for note in tracker.take_notes():
            if on_notice is not None:
                on_notice(note)
        summary["tracking"] = {"mlflow": tracker.info()}

    def flush(rows):
        table.extend(rows[len(table):])
        run.write_text(RunDir.METRICS, table.text())
        if trainer.probe is not None:
            diag_table.extend(diag_table_rows(trainer.probe.rows[len(diag_table):]))
            run.write_text(RunDir.DIAGNOSTICS, diag_table.text())
            summary["findings"] = config_found + trainer.findings.items
        if trainer.step_log is not None:  # train.log_steps
            steps_table.extend(trainer.step_log.dicts(len(steps_table)))
            run.write_text(RunDir.STEPS, steps_table.text())
        summary["epochs_run"] = len(rows)
        summary["final"] = rows[-1] if rows else None
        summary["wall_time_s"] = previous_wall + time.perf_counter() - t0
        if tracker is not None:
            tracker.epoch(rows)  # handed to a background thread: the store never holds training up
            tracking_notes()
        run.write_json(RunDir.SUMMARY, summary)

    def save_snapshots():  # before each checkpoint: the file holds every snapshot up to its epoch
        if trainer.snapshots.dirty:
            run.write_npz(SNAPSHOTS_FILE, trainer.snapshots.arrays())
            trainer.snapshots.dirty = False

    trainer.on_flush = flush
    trainer.on_checkpoint = lambda tr: (save_snapshots(), checkpoints.write(tr), flush(tr.rows))
    summary["threads"] = trainer.threads  # BLAS threads used while training (train.threads)
    summary["pid"], summary["host"] = lock.pid, lock.host
    at_once = False  # a second signal: tracking does not upload the files either
    try:
        with StopOnSignals(trainer, stop) as signals:
            try:
                if tracker is not None:
                    tracker.start(summary, trainer.spec)
                flush(trainer.rows)  # a resumed run's metrics.csv is cut back to the checkpoint here
                if on_start is not None:
                    on_start({**summary, "columns": columns})
                result = trainer.fit()
            except KeyboardInterrupt:  # a second Ctrl-C: stop now, keep the last checkpoint as it is
                signals.finishing = at_once = True
                summary.update(status="interrupted", message="interrupted at once (second signal); resume "
                               f"continues from the last checkpoint: nnctl resume {run.path}")
                flush(trainer.rows[: len(table)])
                raise TrainingFailed(f"{run.path}: {summary['message']}", run_dir=run.path) from None
            # training is over: further signals are ignored while the final files are written, so
            # a second Ctrl-C or a SIGTERM after a SIGINT cannot leave them half-updated
            signals.finishing = True
            save_snapshots()
            if result.status == "interrupted":
                checkpoints.write(trainer)  # the exact position, mid-epoch if need be
                result = result._replace(message=f"{result.message}; continue with: nnctl resume {run.path}")
            run.write_npz(RunDir.WEIGHTS, model.state_arrays())
            summary.update(status=result.status, message=result.message, best=result.best,
                           weights_epoch=result.weights_epoch, train_time_s=trainer.train_seconds,
                           finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            flush(result.rows)
    except OSError as exc:  # disk full, or the folder became unwritable: the work failed (exit 1)
        raise write_failure(run, summary, exc, checkpoints.epoch) from None
    except NnctlError:
        raise
    except BaseException as exc:
        summary.update(status="failed", message=f"{type(exc).__name__}: {exc}")
        try:
            flush(trainer.rows)
        except OSError:
            pass
        raise
    finally:
        if tracker is not None:
            finish_tracking(tracker, run, summary, at_once, on_notice)
        lock.release()
    if result.status in ("diverged", "interrupted"):
        raise TrainingFailed(f"{run.path}: {result.message}", run_dir=run.path)
    return RunResult(run, summary)


def finish_tracking(tracker: MlflowTracker, run: RunDir, summary: dict, at_once: bool,
                    on_notice: Callable[[str], None] | None) -> None:
    """End the tracked run with the nnctl run's status (its files are final by now); summary.json is
    written again if the tracker had more to say."""
    tracker.finish(summary, run.path, at_once=at_once)
    notes = tracker.take_notes()
    for note in notes:
        if on_notice is not None:
            on_notice(note)
    summary["tracking"] = {"mlflow": tracker.info()}
    if notes:
        try:
            run.write_json(RunDir.SUMMARY, summary)
        except OSError:
            pass


def write_failure(run: RunDir, summary: dict, exc: OSError, checkpoint_epoch: int | None) -> TrainingFailed:
    """The error for a file that could not be written, saying what is on disk (a checkpoint to resume
    from, or none); summary.json records status failed if it can still be written. If it cannot, it
    still says "running" (or there is none yet): readers show the run as interrupted (or damaged),
    never as running, once this process has let go of the lock."""
    import errno

    fix = "free some disk space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "fix that"
    if checkpoint_epoch is None:
        advice = f"no checkpoint was written, so there is nothing to continue: {fix} and train again"
    else:
        advice = (f"the checkpoint after epoch {checkpoint_epoch} is intact: {fix}, then continue with: "
                  f"nnctl resume {run.path}")
    message = f"{exc.filename or run.path}: cannot write ({exc.strerror}); {advice}"
    summary.update(status="failed", message=message, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    try:
        run.write_json(RunDir.SUMMARY, summary)
    except OSError:
        message += "; summary.json could not be updated either"
    return TrainingFailed(message, run_dir=run.path)


class StopOnSignals:
    """While active: the first SIGINT/SIGTERM asks the trainer to stop after its current step (it
    checkpoints and exits 1); a second one raises KeyboardInterrupt at once. Main thread only.

    `stop_all()` stops like a first signal, from any thread, the training running in this process
    and any that starts later: a sweep worker calls it when its sweep is gone (stdin at end of file),
    even if SIGKILL gave the sweep no chance to stop its trials, so `sweep --resume` finds them
    stopped, not training on. So does a run whose `stop` event another thread sets (a trial on a
    Dask worker, which runs in a thread)."""

    # the CLI sets this: its process exits once a stopped run is reported, so a late second signal is
    # ignored rather than cutting that report short. A library caller (a notebook) gets its handlers back.
    ignore_after_stop = False
    active: StopOnSignals | None = None  # the one in force in this process
    stopping_all = False  # set by stop_all: every training in this process stops, now or as it starts

    def __init__(self, trainer: Trainer, stop: threading.Event | None = None):
        self.trainer = trainer
        self.stop = stop
        self.previous: dict = {}
        self.finishing = False  # set once training ended: signals are then ignored
        self.closed = False
        self.signalled = False  # a first signal came: the next one stops at once

    def _handle(self, signum, frame):
        if self.finishing:
            return
        if self.signalled:
            raise KeyboardInterrupt
        self.signalled = True
        self.trainer.request_stop()

    @classmethod
    def stop_all(cls) -> None:
        """Stop the training in this process (and any later one) as a first signal would: never like
        a second one, so the stop stays clean whatever signal comes next."""
        cls.stopping_all = True
        active = cls.active
        if active is not None and not active.finishing:
            active.trainer.request_stop()

    def __enter__(self):
        import signal

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        StopOnSignals.active = self
        if StopOnSignals.stopping_all:  # after `active` is set: a concurrent stop_all is not missed
            self.trainer.request_stop()
        if self.stop is not None:
            threading.Thread(target=self._watch_stop, daemon=True).start()
        return self

    def _watch_stop(self) -> None:
        while not self.closed:
            if self.stop.wait(0.1):
                if not self.finishing:  # like a first signal
                    self.trainer.request_stop()
                return

    def __exit__(self, *exc):
        import signal

        self.closed = True
        StopOnSignals.active = None
        for sig, handler in self.previous.items():
            # after a stop request the process is on its way out (exit 1): a late second signal must
            # not kill it while it reports, so signals stay ignored; otherwise restore the handlers
            stopping = self.trainer.stop_requested and self.ignore_after_stop
            signal.signal(sig, signal.SIG_IGN if stopping else handler)
        return False
