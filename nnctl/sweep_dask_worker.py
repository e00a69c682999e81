"""The worker side of `nnctl sweep --dask` (sweep_dask.py): what a Dask worker runs for a trial,
and the run dir archives that go back and forth."""

from __future__ import annotations

import io
import time
from pathlib import Path

from nnctl.errors import NnctlError
from nnctl.sweep import run_state


def worker_nnctl() -> tuple[str | None, str]:
    """(nnctl's version, '') on this worker, or (None, why it cannot be imported). Sent by value
    (see sweep_dask._by_value): a worker without nnctl must be able to run it."""
    try:
        import nnctl
    except Exception as exc:  # any failure to import is the answer
        return None, f"{type(exc).__name__}: {exc}"
    return str(getattr(nnctl, "__version__", "unknown")), ""


def remote_trial(job: dict, files: dict[str, bytes], archive: bytes | None, stop_name: str) -> dict:
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
                run_path = unpack_run(archive, runs, job["name"])
                result = resume_run(run_path, epochs=job.get("epochs"), stop=stop)
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
        out["archive"], out["name"], out["worker_run"] = pack_run(run_path), run_path.name, str(run_path)


def pack_run(run: Path) -> bytes:
    """A run dir as a gzipped tar archive (without its lock file)."""
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        tar.add(run, arcname=run.name, filter=lambda ti: None if ti.name.endswith(".lock") else ti)
    return buf.getvalue()


def unpack_run(archive: bytes, folder: Path, prefix: str) -> Path:
    """Unpack a run dir archive into `folder`; the run dir's path. Data only: no links, nothing
    outside `folder`; exactly one run dir, named after its trial (`prefix`-...)."""
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(folder, filter="data")
    found = list(folder.iterdir())
    if len(found) != 1 or not found[0].is_dir() or not found[0].name.startswith(f"{prefix}-"):
        raise NnctlError(f"a returned run archive holds {[p.name for p in found][:3]}, not one run dir of {prefix}")
    return found[0]
