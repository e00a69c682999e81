"""Local sweeps: `jobs` persistent worker processes (sweep_worker.py), each training trial after trial.

A worker imports NumPy and nnctl once and then trains one trial at a time in its own interpreter,
so a sweep of tiny models is not dominated by start-up (a fresh `nnctl train` costs about a second
of imports; a trial handed to a worker, a few milliseconds). Why hand-written pipes and not
concurrent.futures.ProcessPoolExecutor: when a worker dies, the pool breaks and fails every running
and pending future, cannot tell which trial killed it, and cannot stop one worker's trial with a
signal; and its workers would neither hold the sweep's lock nor stop when the sweep is SIGKILLed.

Each worker has one BLAS thread, its own session (a Ctrl-C reaches only the sweep, which stops each
busy worker with exactly one SIGTERM: its trial checkpoints and is marked interrupted), the sweep's
lock (held until the last worker has ended), and a stdin pipe that reaches end of file when the
sweep process is gone, however it died: the worker then stops its trial with a checkpoint and exits.
A worker that dies (SIGKILL, segfault, MemoryError) is replaced; its trial is recorded from its run
dir like any other (interrupted if it had started training, else failed) and the sweep goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from nnctl.errors import TrainingFailed
from nnctl.runs import FINISHED
from nnctl.sweep import Sweep, Trial, final_metric, run_state, trial_dir

WORKER = "nnctl.sweep_worker"  # the module a worker process runs
STOP_WAIT = 30.0  # seconds a stopped trial has to checkpoint before its worker is killed
LOG_TAIL = 16_384  # bytes of a worker's stderr kept (the end of the current trial's log)
MAX_FAILED_STARTS = 3  # workers in a row that die before they are ready: something is broken, stop
SAVE_EVERY = 0.5  # seconds between manifest saves while trials finish (always saved at the end)


def trial_env() -> dict[str, str]:
    """One BLAS/OpenMP thread per worker: N workers then use N cores, not N x cores."""
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS"):
        env[var] = "1"
    return env


def trial_message(sweep: Sweep, trial: Trial) -> dict:
    """What a worker needs to run `trial`, and the command line that would do the same: `nnctl resume`
    for an interrupted one, else `nnctl train`. With `trial.epochs` (successive halving): train with
    train.epochs set to it, or continue the trial's run to it (`nnctl resume --epochs`)."""
    epochs = trial.epochs
    if trial.run_dir and (trial.status == "interrupted" or (epochs and trial.status in FINISHED)):
        planned = run_state(Path(trial.run_dir))[1].get("epochs_planned")
        extend = epochs if epochs and planned != epochs else None  # an interrupted extension just resumes
        argv = ["nnctl", "resume", trial.run_dir, *(["--epochs", str(extend)] if extend else []), "--quiet"]
        return {"action": "resume", "name": trial.name, "run_dir": trial.run_dir, "epochs": extend, "argv": argv}
    sets = trial.set_args() + (["--set", f"train.epochs={epochs}"] if epochs else [])
    argv = ["nnctl", "train", str(sweep.config), "--runs-dir", str(sweep.path), "--name", trial.name, "--seed",
            str(trial.seed), *sets, "--quiet"]
    return {"action": "train", "name": trial.name, "config": str(sweep.config), "runs_dir": str(sweep.path),
            "seed": trial.seed, "set": sets[1::2], "argv": argv}


@contextlib.contextmanager
def signals_held():
    """SIGINT/SIGTERM wait (pending) while a trial is handed over: the sweep never believes a worker
    idle that has its trial, or the reverse."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class WorkerProc:
    """One worker process, as the sweep sees it: its pipes, its trial, what it has said."""

    def __init__(self, sweep: Sweep, env: dict[str, str]):
        # own session: see the module docstring. The worker inherits the sweep lock: a resume waits
        # until the workers of a killed sweep have stopped.
        self.proc = subprocess.Popen([sys.executable, "-m", WORKER, str(sweep.path)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, start_new_session=True,
                                     pass_fds=(sweep.lock.fd,) if sweep.lock and sweep.lock.fd is not None else ())
        self.trial: Trial | None = None
        self.t0 = 0.0
        self.out = b""  # answer bytes not yet ending in a newline
        self.log = bytearray()  # stderr since the current trial started (its end)
        self.open = 2  # stdout and stderr not yet at end of file
        self.signalled = False
        self.retired = False  # it is on its way out: no more trials for it
        self.ready = False  # it has imported what it needs and said so

    def send(self, message: dict) -> None:
        os.write(self.proc.stdin.fileno(), (json.dumps(message) + "\n").encode())

    def close_stdin(self) -> None:
        """End of file for the worker: it finishes (stops) what it does and exits."""
        with contextlib.suppress(OSError):
            self.proc.stdin.close()

    def terminate(self) -> None:
        """Stop the worker's trial with one SIGTERM (two would cut its checkpoint short)."""
        if not self.signalled and self.proc.poll() is None:
            self.signalled = True
            with contextlib.suppress(OSError):
                self.proc.send_signal(signal.SIGTERM)

    def error_line(self) -> str:
        """The last line of the log that says something: the end of a traceback, faulthandler's line."""
        lines = [ln.strip() for ln in self.log.decode(errors="replace").splitlines() if ln.strip()]
        lines = [ln for ln in lines if not ln.startswith(("File ", "Traceback", "Current thread", "Thread "))]
        return lines[-1][:300] if lines else ""


def _died(proc: subprocess.Popen) -> str:
    code = proc.wait()
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


def _finish(trial: Trial, error: str, seconds: float, sweep_dir: Path) -> None:
    """Record how a trial ended from its run dir (see run_state), not from its worker's word: a trial
    whose worker died after it had finished is completed."""
    trial.seconds = seconds
    run = trial_dir(sweep_dir, trial)
    status, summary = run_state(run) if run else (None, {})
    trial.run_dir, trial.status, trial.metric = (str(run) if run else None), status or "failed", final_metric(summary)
    trial.error = "" if trial.status in FINISHED else error or trial.status


def run_local(sweep: Sweep, todo: list[Trial], on_update: Callable[[Trial], None]) -> None:
    """Run trials in `sweep.jobs` worker processes; interrupt-safe (see the module docstring)."""
    Pool(sweep, on_update).run(list(todo))


class Pool:
    def __init__(self, sweep: Sweep, on_update: Callable[[Trial], None]):
        self.sweep, self.on_update = sweep, on_update
        self.env = trial_env()
        # trials tracked in MLflow (train.log) share one experiment named after the sweep, each trial a
        # run in it (the trial's own name, t000, ... would make an experiment per trial)
        self.env.setdefault("MLFLOW_EXPERIMENT_NAME", sweep.path.name.split("-sweep-")[0])
        self.selector = selectors.DefaultSelector()
        self.workers: list[WorkerProc] = []
        self.saved = time.monotonic()
        self.pending: list[Trial] = []
        self.failed_starts = 0  # workers in a row that died before they were ready
        self.stopping = False  # stop() is under way: what ends now is its doing

    # ------------------------------------------------------------------ workers
    def start_worker(self) -> WorkerProc:
        w = WorkerProc(self.sweep, self.env)
        self.workers.append(w)
        self.selector.register(w.proc.stdout.fileno(), selectors.EVENT_READ, (w, "out"))
        self.selector.register(w.proc.stderr.fileno(), selectors.EVENT_READ, (w, "err"))
        return w

    def hand(self, w: WorkerProc, pending: list[Trial]) -> None:
        """Give `w` the next pending trial."""
        with signals_held():
            trial = pending[0]
            try:
                w.send(trial_message(self.sweep, trial))
            except OSError:  # the worker has died: the trial waits for another one
                w.retired = True
                return
            pending.pop(0)
            w.trial, w.t0, w.log = trial, time.perf_counter(), bytearray()
            trial.status = "running"
        self.on_update(trial)

    def done(self, w: WorkerProc, error: str) -> None:
        """`w`'s trial has ended (answered, or its worker died): record it."""
        trial, w.trial = w.trial, None
        if trial is None:
            return
        _finish(trial, error, time.perf_counter() - w.t0, self.sweep.path)
        if time.monotonic() - self.saved >= SAVE_EVERY:
            self.save()
        self.on_update(trial)

    def save(self) -> None:
        self.sweep.save()
        self.saved = time.monotonic()

    # ------------------------------------------------------------------ events
    def poll(self, timeout: float | None) -> None:
        """Read what the workers said within `timeout`; record answered trials and dead workers."""
        for key, _ in self.selector.select(timeout):
            w, stream = key.data
            try:
                data = os.read(key.fd, 65536)
            except OSError:
                data = b""
            if not data:
                self.selector.unregister(key.fd)
                w.open -= 1
                if w.open == 0:
                    self.gone(w)
                continue
            if stream == "err":
                w.log += data
                del w.log[:-LOG_TAIL]
                continue
            w.out += data
            *lines, w.out = w.out.split(b"\n")
            for line in lines:
                try:
                    answer = json.loads(line)
                    if answer.get("ready"):
                        w.ready, self.failed_starts = True, 0
                        continue
                    error, leaving = str(answer["error"]), bool(answer["exit"])
                except (ValueError, TypeError, KeyError, AttributeError):  # not an answer: the run dir will tell
                    error, leaving = line.decode(errors="replace")[:300], False
                if leaving:  # it ends after this trial: no other trial for it (a new worker replaces it)
                    w.retired = True
                    w.close_stdin()
                self.done(w, error)

    def gone(self, w: WorkerProc) -> None:
        """Both of `w`'s output pipes are closed: it has exited (or died, with a trial or without)."""
        how = _died(w.proc)
        w.close_stdin()
        self.workers.remove(w)
        line = w.error_line()
        if not w.ready:  # died before it could train anything: its trial never started
            if w.trial is not None:
                w.trial.status = "pending"
                self.pending.insert(0, w.trial)
                w.trial = None
            self.failed_starts += 1
            if self.failed_starts >= MAX_FAILED_STARTS and not self.stopping:
                raise TrainingFailed(f"the sweep's worker processes cannot start ({how})" + (f": {line}" if line
                                                                                             else ""))
        if w.trial is not None:
            self.done(w, f"the worker process died ({how})" + (f": {line}" if line else ""))

    # ------------------------------------------------------------------ the sweep
    def run(self, pending: list[Trial], close: bool = True) -> None:
        """Run `pending` to the end; the workers exit afterwards unless `close` is False (more trials
        to come: call run again, then close)."""
        self.pending = pending
        try:
            while pending or any(w.trial for w in self.workers):
                for w in [w for w in self.workers if w.trial is None and not (w.signalled or w.retired)]:
                    if not pending:
                        break
                    self.hand(w, pending)
                alive = sum(not w.retired for w in self.workers)
                while pending and alive < self.sweep.jobs:  # first start, or a dead worker replaced
                    self.hand(self.start_worker(), pending)
                    alive += 1
                self.poll(1.0)
            if close:
                self.close()
        except BaseException:
            if threading_main():  # a second signal must not cut the clean-up short: the manifest
                signal.signal(signal.SIGINT, signal.SIG_IGN)   # would be left saying "running"
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.stop()
            raise
        finally:
            self.save()

    def close(self, timeout: float = 10.0) -> None:
        """No more trials: every worker exits (end of file on stdin); wait for them."""
        for w in self.workers:
            w.close_stdin()
        deadline = time.monotonic() + timeout
        while self.workers and time.monotonic() < deadline:
            self.poll(0.2)
        for w in list(self.workers):
            w.proc.kill()
            self.poll(1.0)

    def stop(self) -> None:
        """Stop now: each busy worker's trial checkpoints (one SIGTERM), idle workers exit; wait for
        all of them, so that the sweep lock is free only once no worker is left."""
        self.stopping = True
        for w in self.workers:
            if w.trial is not None:
                w.terminate()
            else:
                w.close_stdin()
        deadline = time.monotonic() + STOP_WAIT
        while any(w.trial for w in self.workers) and time.monotonic() < deadline:
            self.poll(0.2)
        for w in self.workers:
            if w.trial is not None:
                w.proc.kill()  # did not stop within STOP_WAIT: its last checkpoint stands
        self.close()
        for t in self.sweep.trials:  # stopped as it was handed over or recorded: its run dir tells
            if t.status == "running":
                _finish(t, "interrupted", t.seconds or 0.0, self.sweep.path)
                if t.run_dir is None:  # stopped before it made a run dir: it never ran
                    t.status, t.error = "pending", ""


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
