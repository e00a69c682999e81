"""Local sweeps: each trial is its own `nnctl train` (or `nnctl resume`) process, `jobs` at a time.

Each trial process gets one BLAS thread, its own session (a Ctrl-C reaches only the sweep, which
stops every trial with one SIGTERM), the sweep's lock (held until the last trial has ended) and a
stdin pipe that reaches end of file when the sweep process is gone, however it died: the trial then
checkpoints and stops, so a killed sweep leaves no trial training behind its back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from nnctl.runs import FINISHED
from nnctl.sweep import Sweep, Trial, final_metric, run_state, trial_dir


def trial_env() -> dict[str, str]:
    """One BLAS/OpenMP thread per trial process: N parallel trials then use N cores, not N x cores.
    And each trial stops when this process is gone (see StopOnSignals)."""
    from nnctl.training.session import STOP_WITH_PARENT

    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS"):
        env[var] = "1"
    env[STOP_WITH_PARENT] = "1"
    return env


def _finish(trial: Trial, code: int, err: str, seconds: float, sweep_dir: Path) -> None:
    """Record how a trial's process ended, from its run dir (see run_state), not its exit code:
    a trial that finished just as a SIGTERM killed its process is completed."""
    trial.seconds = seconds
    run = trial_dir(sweep_dir, trial)
    status, summary = run_state(run) if run else (None, {})
    trial.run_dir, trial.status, trial.metric = (str(run) if run else None), status or "failed", final_metric(summary)
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    trial.error = "" if trial.status in FINISHED else lines[-1][len("error: "):] if lines else f"exit code {code}"


def _start(sweep: Sweep, trial: Trial, env: dict[str, str]) -> tuple[subprocess.Popen, BinaryIO]:
    """Start a trial's process (`nnctl resume` for an interrupted one). Returns it and the write end
    of its stdin pipe: we never write to it and close it only once the trial has exited, so the
    trial sees end of file exactly when this process is gone, however it died, and stops."""
    if trial.run_dir and trial.status == "interrupted":
        args = ["resume", trial.run_dir]
    else:
        args = ["train", str(sweep.config), "--runs-dir", str(sweep.path), "--name", trial.name, "--seed",
                str(trial.seed), *trial.set_args()]
    read, write = os.pipe()  # not inheritable: other trials must not keep this one's pipe open
    try:
        # own session: a Ctrl-C in the terminal reaches only this process, which then stops each
        # trial with exactly one SIGTERM (two signals would cut a trial's clean-up short). The trial
        # inherits the sweep lock: a resume waits until the trials of a killed sweep have stopped.
        proc = subprocess.Popen([sys.executable, "-m", "nnctl", *args, "--quiet"], stdin=read,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                                start_new_session=True, pass_fds=(sweep.lock.fd,) if sweep.lock else ())
    except BaseException:
        os.close(write)
        raise
    finally:
        os.close(read)
    return proc, os.fdopen(write, "wb")  # a file object: closing it twice is harmless


def run_local(sweep: Sweep, todo: list[Trial], on_update: Callable[[Trial], None]) -> None:
    """Run trials as `nnctl train` processes, `sweep.jobs` at a time; interrupt-safe."""
    pending = list(todo)
    running: list[tuple[Trial, subprocess.Popen, BinaryIO, float]] = []
    env = trial_env()
    try:
        while pending or running:
            while pending and len(running) < sweep.jobs:
                trial = pending.pop(0)
                proc, pipe = _start(sweep, trial, env)
                trial.status = "running"
                running.append((trial, proc, pipe, time.perf_counter()))
                on_update(trial)
            time.sleep(0.02)
            still = []
            for trial, proc, pipe, t0 in running:
                if proc.poll() is None:
                    still.append((trial, proc, pipe, t0))
                    continue
                _, err = proc.communicate()
                pipe.close()
                _finish(trial, proc.returncode, err, time.perf_counter() - t0, sweep.path)
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
        for _, proc, _, _ in running:
            proc.terminate()  # each trial checkpoints on SIGTERM and is marked interrupted
        for trial, proc, pipe, t0 in running:
            try:
                _, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            pipe.close()
            _finish(trial, proc.returncode, err, time.perf_counter() - t0, sweep.path)
            if trial.run_dir is None:  # stopped before it made a run dir: it never ran
                trial.status, trial.error = "pending", ""
        sweep.save()
        raise
