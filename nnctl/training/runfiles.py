"""The files a run directory starts with: summary.json's first version, split.npz, preprocess.npz,
and (for rows trained in memory) data.parquet; and what a result depends on (versions, BLAS)."""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from nnctl.build import Prepared
from nnctl.diagnostics import config_findings
from nnctl.runs import RunDir

DATA_FILE = "data.parquet"  # a run trained on rows in memory keeps them here


def keep_rows(run: RunDir, prepared: Prepared, rows) -> None:
    """Write in-memory training rows into the run as data.parquet and make the run's config and
    split name that file (its fingerprint is the file's sha256, as if it had been read from it)."""
    import hashlib

    from nnctl.data.frames import parquet_bytes

    data = parquet_bytes(rows)
    run.write_text(DATA_FILE, data)  # (bytes: written as they are)
    spec = prepared.spec
    # relative: config.yaml's paths are read relative to its folder, so the run still finds its own
    # rows after the runs folder is moved or copied
    prepared.spec = spec.replace(data=spec.data.replace(source=DATA_FILE))
    prepared.dataset.source = str(run.file(DATA_FILE).resolve())
    prepared.dataset.fingerprint = hashlib.sha256(data).hexdigest()


def new_summary(prepared: Prepared, run: RunDir, command: list[str] | None) -> dict:
    """summary.json at the start of a run (status running)."""
    ds, model, spec = prepared.dataset, prepared.model, prepared.spec
    return {
        "status": "running", "name": spec.name, "run_dir": str(run.path), "task": ds.task,
        "loss": spec.train.loss, "classes": ds.class_names, "n_features": int(ds.n_features),
        "n_inputs": int(prepared.pre.n_outputs), "n_outputs": int(model.output_layer.units),
        "n_rows": {k: int(len(v)) for k, v in prepared.split.items()},
        "n_params": int(model.n_params()), "seed": spec.seed, "epochs_planned": spec.train.epochs,
        "epochs_run": 0, "best": None, "final": None, "wall_time_s": None,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "finished_at": None,
        "command": command if command is not None else sys.argv,
        "versions": versions(), "blas": blas_info(), "message": "", "findings": config_findings(spec),
        "data": {"task_reason": ds.task_reason or None, "dropped_rows": dict(ds.dropped), "notes": list(ds.notes),
                 "id": ds.id_name},
    }


def write_setup_files(run: RunDir, prepared: Prepared) -> None:
    """split.npz and preprocess.npz: what eval and predict need besides the weights."""
    ds = prepared.dataset
    run.write_npz(RunDir.SPLIT, {**prepared.split, "fingerprint": np.array(ds.fingerprint),
                                 "source": np.array(ds.source), "n_rows": np.array(len(ds.y))})
    arrays = dict(prepared.pre.arrays())  # the fitted transform, class names and input encoding (no pickles)
    arrays["task"] = np.array(ds.task)
    arrays["classes"] = np.array(ds.class_names if ds.class_names else [], dtype=str)
    arrays["feature_names"] = np.array(ds.feature_names, dtype=str)
    arrays["columns"] = np.array(json.dumps(ds.columns))
    arrays["target_name"] = np.array(ds.target_name or "")
    arrays["id_name"] = np.array(ds.id_name or "")
    arrays["file_columns"] = np.array(ds.file_columns, dtype=str)
    if prepared.target is not None:
        arrays.update(prepared.target.arrays())
    if prepared.class_weight is not None:
        arrays["class_weight"] = prepared.class_weight
    run.write_npz(RunDir.PREPROCESS, arrays)


def versions() -> dict[str, str]:
    """What a result depends on: interpreter, library versions, platform (looked up once per process:
    a sweep worker trains many runs)."""
    if not _versions:
        _versions.update(_look_up_versions())
    return dict(_versions)


_versions: dict[str, str] = {}


def _look_up_versions() -> dict[str, str]:
    import platform
    from importlib import metadata

    import nnctl

    out = {"python": platform.python_version(), "numpy": np.__version__, "nnctl": nnctl.__version__,
           "platform": platform.platform()}
    try:
        out["scikit-learn"] = metadata.version("scikit-learn")
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
