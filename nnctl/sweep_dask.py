"""Sweeps on a Dask distributed cluster: each trial trains on a worker, its run dir comes back.

Workers need no shared file system, only the same nnctl (checked before any trial is sent). The
client resolves each trial's config (so every path in it is one of the client's, absolute) and
scatters each data and `model.init_from` file to the workers once; a task refers to the file by its
Dask key, so the bytes never travel inside the task graph. A worker writes the copies it received to
a temporary folder and reads them in place of the client's paths (files.local_copies): the run it
writes names the client's paths, as if it had been trained there (config.yaml, split, checkpoint
digest), so `eval`, `predict`, `resume` and re-training work on the client. The run dir returns as
a tar archive and is moved into the sweep folder whole (never half-unpacked under its own name).

Stopping: the client sets a Dask Event; every running trial polls it, checkpoints and returns its
interrupted run dir (resume continues it, on Dask or by hand); a trial that has not started returns
at once and stays pending. If the client dies without a word (SIGKILL), the scheduler releases its
tasks; each running trial sees that its task was cancelled and stops as well, but its run dir goes
with the worker's temporary folder, so `--resume` trains that trial again from the start, once.
What a worker runs is in sweep_dask_worker.py. `pip install 'nnctl[dask]'`.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from nnctl.errors import DataError, NnctlError, TrainingFailed
from nnctl.runs import FINISHED, RunDir, RunLock
from nnctl.sweep import Sweep, Trial, final_metric, run_state
from nnctl.sweep_dask_worker import pack_run, remote_trial, unpack_run, worker_nnctl

VERSION_WAIT = 30.0  # seconds the workers have to report their nnctl version
STOP_WAIT = 60.0  # seconds a stopped sweep waits for its running trials to checkpoint and come back
INCOMING = ".incoming-"  # a returned run dir is unpacked under this hidden prefix, then renamed into place


def run_dask(sweep: Sweep, todo: list[Trial], address: str, on_update: Callable[[Trial], None]) -> None:
    """Send trials to a Dask distributed scheduler; move each returned run dir into the sweep folder.

    NnctlError (exit 2) if the scheduler cannot be reached or a worker lacks the client's nnctl.
    On KeyboardInterrupt (Ctrl-C, or SIGTERM via run_sweep) the running trials are stopped and
    their checkpointed run dirs collected (up to STOP_WAIT seconds), trials not started are left
    pending, the manifest is saved, and the interrupt goes on up."""
    with DaskSweep(sweep, address, on_update) as cluster:
        cluster.run(todo)


class DaskSweep:
    """A connection to the sweep's Dask scheduler, kept for several batches of trials (the rungs of
    successive halving): the workers' nnctl is checked and each client file is scattered once."""

    def __init__(self, sweep: Sweep, address: str, on_update: Callable[[Trial], None]):
        import importlib.util

        import nnctl

        if importlib.util.find_spec("distributed") is None:
            raise NnctlError("--dask needs Dask's distributed scheduler: pip install 'nnctl[dask]'")
        from distributed import Client, Event

        recover_installs(sweep.path)
        self.sweep, self.address, self.on_update = sweep, address, on_update
        self.shipped: dict[str, object] = {}  # client file -> its scattered copy's future
        self.stop_event = None
        try:
            self.client = Client(address, timeout="5s")
        except (OSError, TimeoutError, ValueError, TypeError) as exc:  # ValueError/TypeError: not an address
            raise NnctlError(f"--dask {str(address)[:80]!r}: cannot reach the Dask scheduler ({str(exc)[:120]}); "
                             f"give its address, e.g. tcp://127.0.0.1:8786") from None
        try:
            check_workers(self.client, nnctl.__version__, sweep)
            self.stop_event = Event(f"nnctl-stop-{uuid.uuid4().hex}", client=self.client)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise self._lost(exc) from None
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> DaskSweep:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _lost(self, exc: BaseException) -> TrainingFailed:  # the scheduler went away (CommClosedError is an OSError)
        return TrainingFailed(f"--dask {self.address}: lost the Dask scheduler ({str(exc)[:120]}); continue with: "
                              f"nnctl sweep --resume {self.sweep.path}")

    def run(self, todo: list[Trial]) -> None:
        """Run `todo` on the workers (each to `trial.epochs` if set) and record each as it returns."""
        import nnctl

        sweep, client = self.sweep, self.client
        jobs, locks, futures = {}, [], {}
        try:
            for trial in todo:
                try:
                    jobs[trial.id] = _job(sweep, trial, nnctl.__version__, locks)
                except NnctlError as exc:  # e.g. its data file is gone since the sweep was planned
                    trial.status, trial.error = "failed", str(exc)
                    self.on_update(trial)
            for trial in todo:
                if trial.id not in jobs:
                    continue
                job, paths, archive = jobs[trial.id]
                for path in paths:
                    if path not in self.shipped:  # each file once, to every worker; tasks hold its key only
                        self.shipped[path] = client.scatter(_read(path), broadcast=True)
                ref = client.scatter(archive) if archive is not None else None
                fut = client.submit(remote_trial, job, {p: self.shipped[p] for p in paths}, ref,
                                    self.stop_event.name, key=f"nnctl-{trial.name}-{uuid.uuid4().hex[:12]}",
                                    pure=False)
                futures[fut] = trial
                trial.status = "running"
                self.on_update(trial)
            _collect(sweep, futures, self.on_update)
        except BaseException as exc:
            _stop(sweep, self.stop_event, futures, self.on_update)
            if isinstance(exc, (OSError, TimeoutError)):
                raise self._lost(exc) from None
            raise
        finally:
            for lock in locks:
                lock.release()

    def close(self) -> None:
        if self.stop_event is not None:
            try:
                self.stop_event.clear()  # (the scheduler forgets a cleared event)
            except Exception:  # the scheduler may be gone; nothing to forget then
                pass
        self.client.close()


def recover_installs(folder: Path) -> None:
    """Finish or undo what a client killed while installing a returned run dir (_install) left in
    `folder`: a run dir moved aside for its newer copy, with nothing in its place yet, goes back
    (the newer copy if it was complete, i.e. already moved aside for it); then the leftovers go."""
    import os

    for stale in Path(folder).glob(f"{INCOMING}*"):
        for old in stale.glob("old-*"):
            final = Path(folder) / old.name[len("old-"):]
            if not final.exists():
                new = stale / final.name
                os.rename(new if new.is_dir() else old, final)
        shutil.rmtree(stale, ignore_errors=True)


def _job(sweep: Sweep, trial: Trial, version: str, locks: list) -> tuple[dict, list[str], bytes | None]:
    """What a worker needs to run `trial`: the job, the client files it reads (absolute paths),
    and the archive of its run dir if it is one to continue (interrupted, or finished and to be
    extended to `trial.epochs`: successive halving). That run dir stays locked (added to `locks`)
    while its copy is out: nobody resumes it by hand meanwhile. As for local workers
    (sweep_local.trial_message), a new trial with `trial.epochs` trains with train.epochs set to it."""
    from nnctl.config.load import load_spec, resolved_yaml

    epochs = trial.epochs
    sets = trial.set_args() + (["--set", f"train.epochs={epochs}"] if epochs else [])
    job = {"name": trial.name, "version": version, "epochs": None,
           "command": ["nnctl", "train", str(sweep.config), "--runs-dir", str(sweep.path), "--name", trial.name,
                       "--seed", str(trial.seed), *sets]}
    archive = None
    if trial.run_dir and (trial.status == "interrupted" or (epochs and trial.status in FINISHED)):
        locks.append(RunLock.acquire(RunDir(Path(trial.run_dir))))  # TrainingFailed if another process has it
        planned = run_state(Path(trial.run_dir))[1].get("epochs_planned")
        job["epochs"] = epochs if epochs and planned != epochs else None  # an interrupted extension just resumes
        spec = load_spec(Path(trial.run_dir) / RunDir.CONFIG, run_file=True)
        archive = pack_run(Path(trial.run_dir))
    else:
        spec = load_spec(sweep.config, sets[1::2], name=trial.name, seed=trial.seed)
        job["config"] = resolved_yaml(spec)
    paths = [spec.data.source] if spec.data.builtin is None else []
    paths += [spec.model.init_from] if spec.model.init_from else []
    return job, paths, archive


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read it to send it to the workers ({exc.strerror})") from None


def check_workers(client, version: str, sweep: Sweep) -> None:
    """NnctlError (exit 2) naming each worker that cannot import nnctl or has another version
    than `version`, or that does not answer within VERSION_WAIT seconds; or if no worker comes
    within that time. Workers that join later are checked by each trial (remote_trial)."""
    from distributed import wait

    try:
        client.wait_for_workers(1, timeout=VERSION_WAIT)
    except TimeoutError:
        raise NnctlError(f"--dask {sweep.dask}: no worker is connected to the scheduler (waited {VERSION_WAIT:.0f} s); "
                         f"start some (dask worker {sweep.dask} --nthreads 1), then: nnctl sweep --resume "
                         f"{sweep.path}") from None
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    probe = _by_value(worker_nnctl)
    futs = {client.submit(probe, key=f"nnctl-version-{uuid.uuid4().hex[:12]}", workers=[w], pure=False): w
            for w in workers}
    try:
        wait(list(futs), timeout=VERSION_WAIT)
    except TimeoutError:
        pass
    bad = []
    for fut, w in futs.items():
        if fut.status != "finished":
            bad.append(f"{w} did not answer within {VERSION_WAIT:.0f} s")
            continue
        try:
            got, why = fut.result()
        except Exception as exc:  # whatever went wrong there, that worker cannot be used
            got, why = None, f"{type(exc).__name__}: {exc}"
        if got is None:
            bad.append(f"{w} cannot import nnctl ({why[:160]})")
        elif got != version:
            bad.append(f"{w} has nnctl {got}")
    client.cancel(list(futs))
    if bad:
        raise NnctlError(f"--dask: the workers need nnctl {version}, as the client has: " + "; ".join(bad)
                         + f". Install it there (pip install nnctl=={version}), then: "
                         f"nnctl sweep --resume {sweep.path}")


def _by_value(func):
    """A copy of a plain function that Dask pickles by value (as a function of __main__), so that
    a worker can run it without importing the module it comes from."""
    import builtins
    import types

    copy = types.FunctionType(func.__code__, {"__builtins__": builtins, "__name__": "__main__"}, func.__name__)
    copy.__qualname__ = f"nnctl_{func.__name__}"  # not found in the client's __main__: pickled whole
    return copy


def _collect(sweep: Sweep, futures: dict, on_update: Callable[[Trial], None], timeout: float | None = None) -> None:
    """Record each trial as its future completes (removing it from `futures`); TimeoutError after
    `timeout` seconds if some have not."""
    from distributed import as_completed

    for fut in as_completed(list(futures), timeout=timeout):
        trial = futures[fut]
        _record(sweep, trial, fut)
        del futures[fut]  # only now: a trial interrupted while being recorded is recorded again
        sweep.save()
        on_update(trial)


def _record(sweep: Sweep, trial: Trial, fut) -> None:
    """Update `trial` from its finished future: its run dir, moved into the sweep folder, says what
    became of it."""
    try:
        res = fut.result()
    except Exception as exc:  # the task raised, or its worker died: this trial failed
        trial.status, trial.error = "failed", _task_error(exc)
        return
    if res["status"] == "not_started":  # stopped before it ran: as it was
        trial.status = _as_it_was(trial)
        return
    trial.seconds, trial.error = res["seconds"], res["error"]
    if res["archive"] is None:
        trial.status = res["status"]
        return
    client_run = sweep.path / res["name"]
    trial.error = trial.error.replace(res["worker_run"], str(client_run))
    run = _install(sweep.path, res, trial.name)
    status, summary = run_state(run)
    trial.run_dir, trial.status, trial.metric = str(run), status or "failed", final_metric(summary)
    if trial.status in FINISHED:
        trial.error = ""


def _as_it_was(trial: Trial) -> str:
    """The status of a trial that was sent out but did not come back: its run dir's (a finished run
    that was to be extended is still finished), else pending."""
    return (run_state(Path(trial.run_dir))[0] or "interrupted") if trial.run_dir else "pending"


def _task_error(exc: BaseException) -> str:
    """What a failed task says, with a hint where Dask's own words need one."""
    text = f"{type(exc).__name__}: {exc}"
    if "deserializ" in text.lower() or "No module named 'nnctl" in text:
        return f"a Dask worker cannot load nnctl ({text[:200]}); install the client's nnctl there"
    if type(exc).__name__ == "KilledWorker":  # Dask stops a worker that cannot load a task's function
        return (f"{text[:300]} (a worker without nnctl, one that joined after the version check, dies on its first "
                f"trial; so does one out of memory)")
    return text


def _install(folder: Path, res: dict, trial_name: str) -> Path:
    """Unpack a returned run dir into the sweep folder under a hidden name, make its summary name
    the client's run dir, then rename it into place (over an older copy of the same run)."""
    import os
    import tempfile

    incoming = Path(tempfile.mkdtemp(prefix=INCOMING, dir=folder))
    try:
        got = unpack_run(res["archive"], incoming, trial_name)
        final = folder / got.name
        _client_paths(got, res["worker_run"], final)
        old = None
        if final.exists():  # a resumed run comes back under its own name
            old = incoming / f"old-{final.name}"
            os.rename(final, old)
        os.rename(got, final)
        return final
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def _client_paths(run: Path, worker_run: str, client_run: Path) -> None:
    """In a returned run's summary.json: run_dir, and the worker's path in any message, become the
    client's. (config.yaml and the other files name the client's paths already: see the module doc.)"""
    import json

    def fix(value):
        if isinstance(value, str):
            return value.replace(worker_run, str(client_run))
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        return value

    rd = RunDir(run)
    try:
        summary = json.loads(rd.file(RunDir.SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # none or damaged: run_state says so
    summary = fix(summary)
    summary["run_dir"] = str(client_run)
    if summary.get("resumed_by") is not None:
        summary["resumed_by"] = ["nnctl", "resume", str(client_run)]
    rd.write_json(RunDir.SUMMARY, summary)


def _stop(sweep: Sweep, stop_event, futures: dict, on_update: Callable[[Trial], None]) -> None:
    """The sweep is being stopped: tell the running trials to checkpoint and collect their run dirs
    (up to STOP_WAIT seconds); trials that did not come back are pending again (or interrupted, with
    the run dir they had); save the manifest; cancel what is left on the cluster. Signals are ignored
    from here on, as in a local sweep (sweep_local.run_local): the process is on its way out."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():  # a second signal must not cut this short:
        signal.signal(signal.SIGINT, signal.SIG_IGN)             # the manifest would be left saying "running"
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        if stop_event is not None and futures:
            stop_event.set()
            _collect(sweep, futures, on_update, timeout=STOP_WAIT)
    except Exception:  # timed out, or the scheduler is gone: what has not come back is lost
        pass
    for trial in futures.values():
        if trial.status == "running":
            trial.status = _as_it_was(trial)
    sweep.save()
    for fut in futures:
        try:
            fut.cancel()  # a trial still running on a worker sees its task cancelled and stops
        except Exception:  # the scheduler is gone: it has dropped the task already
            pass
