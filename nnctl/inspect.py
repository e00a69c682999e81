"""`nnctl inspect`: a run's per-layer health over training and its findings, from its files."""

from __future__ import annotations

import csv
from pathlib import Path

from nnctl.errors import RunDirError, printable
from nnctl.runs import RunDir, open_run, read_csv_rows


def inspect_run(path: Path | str, max_epochs: int = 6) -> dict:
    """{'name', 'rows' (selected epochs x layers), 'all_rows', 'findings', 'first_last_grad_ratio'}."""
    run, summary = open_run(path)
    diag = run.file(RunDir.DIAGNOSTICS)
    if not diag.is_file():
        raise RunDirError(f"{run.path}: no diagnostics.csv (train.diagnostics was false, or the run stopped "
                          f"before its first epoch ended)")
    try:
        rows = read_csv_rows(diag, strict=True)
    except (csv.Error, UnicodeDecodeError, ValueError) as exc:
        raise RunDirError(f"{diag}: damaged ({exc})") from None
    epochs = sorted({r["epoch"] for r in rows if isinstance(r.get("epoch"), int)})
    if not epochs:
        raise RunDirError(f"{diag}: no rows")
    if len(epochs) <= max_epochs:
        chosen = set(epochs)
    else:  # first, last and evenly spaced ones between
        chosen = {epochs[round(i * (len(epochs) - 1) / (max_epochs - 1))] for i in range(max_epochs)}
    last = [r for r in rows if r["epoch"] == epochs[-1]]
    return {"name": printable(summary.get("name", run.path.name)), "run_dir": str(run.path),
            "rows": [r for r in rows if r["epoch"] in chosen], "all_rows": rows,
            "findings": summary.get("findings") or [],
            "first_last_grad_ratio": last[0].get("first_last_grad_ratio") if last else None}
