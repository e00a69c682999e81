"""`nnctl inspect`: a run's per-layer health over training and its findings, from its files."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from nnctl.errors import RunDirError


def inspect_run(path: Path | str, max_epochs: int = 6) -> dict:
    """{'name', 'rows' (selected epochs x layers), 'all_rows', 'findings', 'first_last_grad_ratio'}."""
    from nnctl.runs import RunDir, open_run

    run, summary = open_run(path)
    diag = run.file(RunDir.DIAGNOSTICS)
    if not diag.is_file():
        raise RunDirError(f"{run.path}: no diagnostics.csv (train.diagnostics was false, or the run stopped "
                          f"before its first epoch ended)")
    rows = []
    try:
        with open(diag, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                rows.append({k: _num(v) for k, v in r.items()})
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
    return {"name": summary.get("name", run.path.name), "run_dir": str(run.path),
            "rows": [r for r in rows if r["epoch"] in chosen], "all_rows": rows,
            "findings": summary.get("findings") or [],
            "first_last_grad_ratio": last[0].get("first_last_grad_ratio") if last else None}


def _num(v):
    if v is None or v == "":
        return None
    f = float(v)
    return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() and "n" not in v.lower() else f


def plot_health(report: dict, output: Path) -> None:
    """Per-layer curves: dead fraction, saturated fraction, gradient RMS, update ratio."""
    from nnctl.plot import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    panels = [("dead_frac", "dead ReLU fraction", False), ("saturated_frac", "saturated fraction", False),
              ("grad_rms", "gradient RMS", True), ("update_ratio", "update / weight ratio", True)]
    layers = sorted({r["layer"] for r in report["all_rows"]})
    for ax, (key, title, log) in zip(axes.ravel(), panels):
        for layer in layers:
            pts = [(r["epoch"], r.get(key)) for r in report["all_rows"] if r["layer"] == layer]
            pts = [(e, v) for e, v in pts if isinstance(v, (int, float)) and math.isfinite(v) and (v > 0 or not log)]
            if pts:
                ax.plot(*zip(*pts), label=f"layer {layer}")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if log and ax.lines:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.suptitle(f"{report['name']}: layer health")
    fig.tight_layout()
    save_figure(fig, output)
