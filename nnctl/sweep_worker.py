"""A local sweep's worker process: trains trial after trial in one interpreter.

`python -m nnctl.sweep_worker SWEEP_DIR` is started by sweep_local.py, `--jobs` of them, each with
one BLAS thread (set in its environment, before NumPy loads) and in a session of its own. It
imports nnctl's training modules once, then reads one trial per line on stdin (JSON: what
`trial_message` in sweep_local.py writes) and runs it in this process with `train_run` or
`resume_run`, exactly as `nnctl train`/`nnctl resume` would. After each trial it writes one JSON
line on its original stdout: {"name", "error", "exit"} (and {"ready": true} once, when its
imports are done); what became of the trial is read from its
run dir, not from this answer. Anything a trial prints goes to stderr, which the sweep keeps as
the trial's log.

Stopping: SIGTERM stops the running trial like `nnctl train` (checkpoint, status interrupted), then
the worker exits; end of file on stdin (the sweep has finished, or died, even by SIGKILL) does the
same, so no worker trains on behind a dead sweep. SWEEP_DIR is only there to show in `ps` which
sweep a worker serves.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
import traceback


class Worker:
    def __init__(self):
        self.inbox: queue.Queue = queue.Queue()
        self.idle = False  # waiting for a trial: a SIGTERM then ends the process at once
        self.stopping = False

    def on_term(self, signum, frame) -> None:
        """SIGTERM outside a trial's training (StopOnSignals handles it during one)."""
        from nnctl.training.session import StopOnSignals

        self.stopping = True
        StopOnSignals.stop_all()  # a trial still setting up stops as soon as it starts training
        if self.idle:
            raise SystemExit(0)

    def read_stdin(self) -> None:
        """Trials in; at end of file (the sweep closed the pipe, or died) stop whatever runs."""
        from nnctl.training.session import StopOnSignals

        pending = b""
        try:  # raw reads: a buffered reader's lock, held by this thread, would abort the interpreter's exit
            while chunk := os.read(0, 65536):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    self.inbox.put(line)
        except OSError:
            pass
        self.stopping = True
        StopOnSignals.stop_all()
        # nobody may read our output any more: writing it must not fail (EPIPE) in the middle of a stop
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        self.inbox.put(None)

    def serve(self, answers) -> int:
        signal.signal(signal.SIGTERM, self.on_term)
        threading.Thread(target=self.read_stdin, daemon=True).start()
        try:
            answers.write('{"ready": true}\n')  # imports done: the sweep knows this worker can start
            answers.flush()
        except OSError:
            return 0
        while True:
            self.idle = True
            if self.stopping:
                return 0
            line = self.inbox.get()
            self.idle = False
            if line is None or self.stopping:  # a trial received just as the sweep stopped: never started
                return 0
            answer = run_trial(json.loads(line))
            try:
                answers.write(json.dumps(answer) + "\n")
                answers.flush()
            except OSError:  # the sweep is gone
                return 0
            if answer["exit"]:
                return 0


def run_trial(msg: dict) -> dict:
    """Train (or resume) one trial in this process; its run dir records the outcome.

    `exit`: after an unexpected exception (MemoryError, a bug) this process may be in a bad state,
    so it reports and ends; the sweep starts a fresh worker."""
    from pathlib import Path

    from nnctl.config.load import load_spec
    from nnctl.errors import NnctlError
    from nnctl.training.session import resume_run, train_run

    answer = {"name": msg["name"], "error": "", "exit": False}
    sys.argv = list(msg["argv"])  # the command line `nnctl train/resume` would have had (summary.json)
    try:
        if msg["action"] == "resume":
            resume_run(Path(msg["run_dir"]), epochs=msg.get("epochs"))
        else:
            overrides = list(msg["set"])
            spec = load_spec(Path(msg["config"]), overrides, name=msg["name"], seed=msg["seed"])
            train_run(spec, Path(msg["runs_dir"]), command=["nnctl", *sys.argv[1:]])
    except NnctlError as exc:
        answer["error"] = str(exc)
    except Exception as exc:  # noqa: BLE001 - a trial's bug or MemoryError must not take the sweep down
        traceback.print_exc()
        answer.update(error=f"{type(exc).__name__}: {exc}", exit=True)
    return answer


def main() -> int:
    import faulthandler

    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")  # the sweep reads answers here...
    os.dup2(2, 1)  # ...and only answers: what a trial prints goes to stderr, the trial's log
    faulthandler.enable()  # a segfault leaves a Python traceback in the log
    import nnctl.training.session  # noqa: F401 - NumPy and the training modules, once for every trial

    return Worker().serve(answers)


if __name__ == "__main__":
    sys.exit(main())
