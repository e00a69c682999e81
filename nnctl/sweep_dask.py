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
`pip install 'nnctl[dask]'`.
"""

from __future__ import annotations

import io
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from nnctl.errors import DataError, NnctlError, TrainingFailed
from nnctl.runs import FINISHED, RunDir, RunLock
from nnctl.sweep import Sweep, Trial, final_metric, run_state, yaml_value

VERSION_WAIT = 30.0  # seconds the workers have to report their nnctl version
STOP_WAIT = 60.0  # seconds a stopped sweep waits for its running trials to checkpoint and come back
INCOMING = ".incoming-"  # a returned run dir is unpacked under this hidden prefix, then renamed into place


# ------------------------------------------------------------------------------------ on a worker
def _worker_nnctl() -> tuple[str | None, str]:
    """(nnctl's version, '') on this worker, or (None, why it cannot be imported). Sent by value
    (see _by_value): a worker without nnctl must be able to run it."""
    try:
        import nnctl
    except Exception as exc:  # any failure to import is the answer
        return None, f"{type(exc).__name__}: {exc}"
    return str(getattr(nnctl, "__version__", "unknown")), ""


def _remote_trial(job: dict, files: dict[str, bytes], archive: bytes | None, stop_name: str) -> dict:
    """Run one trial inside a Dask worker: train it (or resume the run dir in `archive`) reading the
    client's files from the copies in `files`; return its run dir as a tar archive. Stops, with a
    checkpoint, when the sweep sets the Dask Event `stop_name` or the scheduler cancels this task."""
    import tempfile
    import threading

    from distributed import Event, get_worker
    from distributed.worker import thread_state

    import nnctl

    worker = get_worker()
    out = {"status": "failed", "error": "", "archive": None, "name": None, "worker_run": None,
           "worker": worker.address, "seconds": None}
    if nnctl.__version__ != job["version"]:  # a worker that joined after the check
        out["error"] = (f"the Dask worker {worker.address} has nnctl {nnctl.__version__}, the client "
                        f"{job['version']}: install the client's version on every worker")
        return out
    stop_event = Event(stop_name)
    if stop_event.is_set():  # the sweep was stopped before this trial started: it never ran
        return {**out, "status": "not_started"}
    stop, done = threading.Event(), threading.Event()
    threading.Thread(target=_watch, args=(stop_event, worker, thread_state.key, stop, done), daemon=True).start()
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="nnctl-dask-") as tmp:
            _train_here(job, files, archive, Path(tmp), stop, out)
    finally:
        done.set()
    out["seconds"] = time.perf_counter() - t0
    return out


def _watch(stop_event, worker, key: str, stop, done) -> None:
    """Set `stop` once the sweep's Dask Event is set or the task `key` is no longer executing on
    `worker` (its client released it: cancelled, or the client is gone)."""
    while not done.is_set():
        task = worker.state.tasks.get(key)
        if task is None or task.state not in ("executing", "long-running"):
            stop.set()
            return
        try:
            if stop_event.wait(0.5):
                stop.set()
                return
        except Exception:  # the scheduler is unreachable for now: the task state still tells
            time.sleep(0.5)


def _train_here(job: dict, files: dict[str, bytes], archive: bytes | None, tmp: Path, stop, out: dict) -> None:
    """Write the client's files under `tmp`, train or resume the trial there, and fill `out`."""
    from threadpoolctl import threadpool_limits

    from nnctl.config.load import load_spec
    from nnctl.files import local_copies
    from nnctl.training.session import resume_run, train_run

    copies = {}
    for i, (path, data) in enumerate(files.items()):
        copy = tmp / "files" / str(i) / Path(path).name
        copy.parent.mkdir(parents=True)
        copy.write_bytes(data)
        copies[path] = copy
    runs = tmp / "runs"
    runs.mkdir()
    run_path = None
    try:
        with local_copies(copies), threadpool_limits(limits=1, user_api="blas"):
            if archive is not None:
                run_path = _unpack(archive, runs, job["name"])
                result = resume_run(run_path, stop=stop)
            else:
                config = tmp / "config.yaml"
                config.write_text(job["config"], encoding="utf-8")
                result = train_run(load_spec(config), runs, command=job["command"], stop=stop)
        run_path = result.run.path
        out["status"] = result.summary["status"]
    except NnctlError as exc:
        out["error"] = str(exc)
        run_path = Path(exc.run_dir) if exc.run_dir else run_path
    if run_path is not None and run_path.is_dir():
        out["status"] = run_state(run_path)[0] or out["status"]
        out["archive"], out["name"], out["worker_run"] = _pack(run_path), run_path.name, str(run_path)


def _pack(run: Path) -> bytes:
    """A run dir as a gzipped tar archive (without its lock file)."""
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        tar.add(run, arcname=run.name, filter=lambda ti: None if ti.name.endswith(".lock") else ti)
    return buf.getvalue()


def _unpack(archive: bytes, folder: Path, prefix: str) -> Path:
    """Unpack a run dir archive into `folder`; the run dir's path. Data only: no links, nothing
    outside `folder`; exactly one run dir, named after its trial (`prefix`-...)."""
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(folder, filter="data")
    found = list(folder.iterdir())
    if len(found) != 1 or not found[0].is_dir() or not found[0].name.startswith(f"{prefix}-"):
        raise NnctlError(f"a returned run archive holds {[p.name for p in found][:3]}, not one run dir of {prefix}")
    return found[0]


# ------------------------------------------------------------------------------------ on the client
def run_dask(sweep: Sweep, todo: list[Trial], address: str, on_update: Callable[[Trial], None]) -> None:
    """Send trials to a Dask distributed scheduler; move each returned run dir into the sweep folder.

    NnctlError (exit 2) if the scheduler cannot be reached or a worker lacks the client's nnctl.
    On KeyboardInterrupt (Ctrl-C, or SIGTERM via run_sweep) the running trials are stopped and
    their checkpointed run dirs collected (up to STOP_WAIT seconds), trials not started are left
    pending, the manifest is saved, and the interrupt goes on up."""
    import importlib.util

    import nnctl

    if importlib.util.find_spec("distributed") is None:
        raise NnctlError("--dask needs Dask's distributed scheduler: pip install 'nnctl[dask]'")
    for stale in sweep.path.glob(f"{INCOMING}*"):  # left by a client killed while unpacking
        shutil.rmtree(stale, ignore_errors=True)
    jobs, locks = {}, []
    try:
        for trial in todo:
            try:
                jobs[trial.id] = _job(sweep, trial, nnctl.__version__, locks)
            except NnctlError as exc:  # e.g. its data file is gone since the sweep was planned
                trial.status, trial.error = "failed", str(exc)
                on_update(trial)
        _run(sweep, todo, jobs, address, on_update)
    finally:
        for lock in locks:
            lock.release()


def _run(sweep: Sweep, todo: list[Trial], jobs: dict, address: str, on_update: Callable[[Trial], None]) -> None:
    """run_dask once the jobs are ready."""
    from distributed import Client, Event

    import nnctl

    try:
        client = Client(address, timeout="5s")
    except (OSError, TimeoutError, ValueError, TypeError) as exc:  # ValueError/TypeError: not an address
        raise NnctlError(f"--dask {str(address)[:80]!r}: cannot reach the Dask scheduler ({str(exc)[:120]}); "
                         f"give its address, e.g. tcp://127.0.0.1:8786") from None
    stop_event = None
    futures: dict = {}
    try:
        check_workers(client, nnctl.__version__, sweep)
        stop_event = Event(f"nnctl-stop-{uuid.uuid4().hex}", client=client)
        shipped: dict[str, object] = {}
        for trial in todo:
            if trial.id not in jobs:
                continue
            job, paths, archive = jobs[trial.id]
            for path in paths:
                if path not in shipped:  # each file once, to every worker; tasks hold its key only
                    shipped[path] = client.scatter(_read(path), broadcast=True)
            ref = client.scatter(archive) if archive is not None else None
            fut = client.submit(_remote_trial, job, {p: shipped[p] for p in paths}, ref, stop_event.name,
                                key=f"nnctl-{trial.name}-{uuid.uuid4().hex[:12]}", pure=False)
            futures[fut] = trial
            trial.status = "running"
            on_update(trial)
        _collect(sweep, futures, on_update)
    except BaseException as exc:
        _stop(sweep, stop_event, futures, on_update)
        if isinstance(exc, (OSError, TimeoutError)):  # the scheduler went away (CommClosedError is an OSError)
            raise TrainingFailed(f"--dask {address}: lost the Dask scheduler ({str(exc)[:120]}); continue with: "
                                 f"nnctl sweep --resume {sweep.path}") from None
        raise
    finally:
        if stop_event is not None:
            try:
                stop_event.clear()  # (the scheduler forgets a cleared event)
            except Exception:  # the scheduler may be gone; nothing to forget then
                pass
        client.close()


def _job(sweep: Sweep, trial: Trial, version: str, locks: list) -> tuple[dict, list[str], bytes | None]:
    """What a worker needs to run `trial`: the job, the client files it reads (absolute paths),
    and the archive of its run dir if it is an interrupted one to continue. That run dir stays
    locked (added to `locks`) while its copy is out: nobody resumes it by hand meanwhile."""
    from nnctl.config.load import load_spec, resolved_yaml

    job = {"name": trial.name, "version": version,
           "command": ["nnctl", "train", str(sweep.config), "--runs-dir", str(sweep.path), "--name", trial.name,
                       "--seed", str(trial.seed), *trial.set_args()]}
    archive = None
    if trial.status == "interrupted" and trial.run_dir:
        locks.append(RunLock.acquire(RunDir(Path(trial.run_dir))))  # TrainingFailed if another process has it
        spec = load_spec(Path(trial.run_dir) / RunDir.CONFIG, run_file=True)
        archive = _pack(Path(trial.run_dir))
    else:
        overrides = [f"{k}={yaml_value(v)}" for k, v in trial.overrides.items()]
        spec = load_spec(sweep.config, overrides, name=trial.name, seed=trial.seed)
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
    within that time. Workers that join later are checked by each trial (_remote_trial)."""
    from distributed import wait

    try:
        client.wait_for_workers(1, timeout=VERSION_WAIT)
    except TimeoutError:
        raise NnctlError(f"--dask {sweep.dask}: no worker is connected to the scheduler (waited {VERSION_WAIT:.0f} s); "
                         f"start some (dask worker {sweep.dask} --nthreads 1), then: nnctl sweep --resume "
                         f"{sweep.path}") from None
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    probe = _by_value(_worker_nnctl)
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
        trial.status = "interrupted" if trial.run_dir else "pending"
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
        got = _unpack(res["archive"], incoming, trial_name)
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
            trial.status = "interrupted" if trial.run_dir else "pending"
    sweep.save()
    for fut in futures:
        try:
            fut.cancel()  # a trial still running on a worker sees its task cancelled and stops
        except Exception:  # the scheduler is gone: it has dropped the task already
            pass
