"""Sweeps on a Dask distributed cluster: each trial trains on a worker, its run dir comes back.

The workers need not share the client's file system: the config text and the data file travel
with each task, and the finished run directory returns as a tar archive, unpacked into the sweep
folder. `pip install 'nnctl[dask]'`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from nnctl.errors import NnctlError
from nnctl.sweep import Sweep, Trial, _run_status, final_metric, yaml_value


def _remote_trial(config_text: str, config_name: str, data_file: tuple[str, bytes] | None, trial: dict) -> dict:
    """Run one trial inside a Dask worker; return its run dir as a tar archive (bytes) and a summary."""
    import io
    import tarfile
    import tempfile

    from threadpoolctl import threadpool_limits

    from nnctl.config.load import load_spec
    from nnctl.training.session import train_run

    with tempfile.TemporaryDirectory(prefix="nnctl-dask-") as tmp:
        tmp = Path(tmp)
        cfg = tmp / config_name
        cfg.write_text(config_text)
        overrides = [f"{k}={yaml_value(v)}" for k, v in trial["overrides"].items()]
        if data_file is not None:  # the workers may not see the client's files: the data comes along
            (tmp / data_file[0]).write_bytes(data_file[1])
            overrides.append(f"data.source={tmp / data_file[0]}")
        out = {"status": "failed", "error": "", "archive": None, "name": None, "summary": None}
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                spec = load_spec(cfg, overrides, name=trial["name"], seed=trial["seed"])
                result = train_run(spec, tmp / "runs", command=["nnctl", "sweep", "(dask worker)"])
            out.update(status=result.summary["status"], summary=result.summary)
            run_path = result.run.path
        except NnctlError as exc:
            out["error"] = str(exc)
            run_path = Path(exc.run_dir) if exc.run_dir else None
            if run_path is not None:
                out["status"] = _run_status(run_path) or out["status"]
        if run_path is not None and run_path.is_dir():
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:gz") as tar:
                tar.add(run_path, arcname=run_path.name, filter=lambda ti: None if ti.name.endswith(".lock") else ti)
            out["archive"], out["name"] = buf.getvalue(), run_path.name
        return out


def run_dask(sweep: Sweep, todo: list[Trial], address: str, on_update: Callable[[Trial], None]) -> None:
    """Send trials to a Dask distributed scheduler; unpack each returned run dir into the sweep folder."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise NnctlError("--dask needs Dask's distributed scheduler: pip install 'nnctl[dask]'") from None
    import io
    import tarfile

    from nnctl.config.load import load_spec

    config_text = sweep.config.read_text(encoding="utf-8")
    spec = load_spec(sweep.config)
    data_file = None
    if spec.data.builtin is None:
        src = Path(spec.data.source)
        data_file = (src.name, src.read_bytes())
    try:
        client = Client(address, timeout="5s")
    except (OSError, TimeoutError, ValueError, TypeError) as exc:  # ValueError/TypeError: not an address
        raise NnctlError(f"--dask {str(address)[:80]!r}: cannot reach the Dask scheduler ({str(exc)[:120]}); "
                         f"give its address, e.g. tcp://127.0.0.1:8786") from None
    try:
        futures = {}
        for trial in todo:
            payload = {"overrides": trial.overrides, "seed": trial.seed, "name": trial.name}
            fut = client.submit(_remote_trial, config_text, sweep.config.name, data_file, payload, pure=False,
                                key=f"nnctl-{sweep.path.name}-{trial.name}-{time.time_ns()}")
            futures[fut] = (trial, time.perf_counter())
            trial.status = "running"
            on_update(trial)
        for fut in as_completed(futures):
            trial, t0 = futures[fut]
            try:
                res = fut.result()
            except Exception as exc:  # a worker died or the task raised: this trial failed, not the sweep
                trial.status, trial.error = "failed", f"{type(exc).__name__}: {exc}"
            else:
                trial.status, trial.error = res["status"], res["error"]
                if res["archive"]:
                    with tarfile.open(fileobj=io.BytesIO(res["archive"]), mode="r:gz") as tar:
                        tar.extractall(sweep.path, filter="data")
                    trial.run_dir = str(sweep.path / res["name"])
                trial.metric = final_metric(res["summary"] or {})
            trial.seconds = time.perf_counter() - t0
            sweep.save()
            on_update(trial)
    finally:
        client.close()
