"""Every figure nnctl draws: a run's learning curves and lr with its decision boundary (2-D
classification) or fitted function (1-D regression); the validation curves of many runs (compare);
per-layer health (inspect); loss against learning rate (lr-find). matplotlib is imported here only,
with the Agg backend (no display needed)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from nnctl.errors import NnctlError


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend."""
    try:
        import matplotlib
    except ImportError:
        raise NnctlError("plotting needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plain(text) -> str:
    """Text drawn as written: matplotlib reads a pair of '$' as math and fails on bad math (a run, class
    or column name is data)."""
    return str(text).replace("$", r"\$")


def save_figure(fig, output: Path) -> None:
    """Write a figure as PNG, whole (temp file + rename), then close it."""
    from nnctl.files import write_atomic

    plt = pyplot()
    if Path(output).suffix.lower() != ".png":
        plt.close(fig)
        raise NnctlError(f"{output}: plots are written as PNG; give a file name ending in .png")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    try:
        write_atomic(Path(output), buf.getvalue())
    except OSError as exc:
        raise NnctlError(f"{output}: cannot write ({exc.strerror})") from None


def save_animation(fig, draw_frame, n_frames: int, output: Path, fps: float) -> None:
    """Animate `fig` as a GIF with matplotlib's PillowWriter, one `draw_frame(i)` per frame, written
    whole like every file (write_atomic); the figure is closed."""
    import tempfile

    from matplotlib.animation import FuncAnimation, PillowWriter

    from nnctl.files import write_atomic

    plt = pyplot()
    try:
        with tempfile.TemporaryDirectory(prefix="nnctl-gif-") as tmp:
            gif = Path(tmp) / "animation.gif"
            FuncAnimation(fig, draw_frame, frames=n_frames, repeat=False).save(gif, writer=PillowWriter(fps=fps),
                                                                               dpi=90)
            write_atomic(Path(output), gif.read_bytes())
    except OSError as exc:
        raise NnctlError(f"{output}: cannot write ({exc.strerror})") from None
    finally:
        plt.close(fig)


def plot_run(run_dir: Path, output: Path | None = None) -> tuple[Path, list[str]]:
    """Draw a run's curves (and its boundary or fit for 1-D/2-D inputs); returns (png path, notes)."""
    from nnctl.evaluate import load_run
    from nnctl.runs import read_run

    loaded = load_run(run_dir)  # checks the run dir first
    info = read_run(Path(run_dir))
    output = Path(output) if output is not None else Path(run_dir) / "plot.png"
    notes: list[str] = []
    data = None
    if loaded.pre.shift.shape[0] in (1, 2) and loaded.columns and all(c["kind"] == "numeric"
                                                                        for c in loaded.columns):
        data = _training_data(loaded, notes)
    plt = pyplot()
    panels = 3 if data is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4.2))
    m = info.metric
    epochs = [r.get("epoch") for r in info.rows]
    _step_losses(axes[0], Path(run_dir), notes)  # train.log_steps: a light line behind the epoch curves
    for split, style in (("train", "--"), ("val", "-")):
        axes[0].plot(epochs, [r.get(f"{split}_loss") for r in info.rows], style, label=f"{split} loss")
        axes[1].plot(epochs, [r.get(f"{split}_{m}") for r in info.rows], style, label=f"{split} {m}")
    axes[0].set_title(f"{plain(info.name)}: loss")
    axes[1].set_title(m)
    ax_lr = axes[1].twinx()
    ax_lr.plot(epochs, [r.get("lr") for r in info.rows], color="grey", alpha=0.5, lw=1, label="lr")
    ax_lr.set_ylabel("lr", color="grey")
    lrs = [r.get("lr") for r in info.rows if isinstance(r.get("lr"), (int, float))]
    if lrs:
        ax_lr.set_ylim(0, max(lrs) * 1.15)  # from 0, so a constant rate reads as constant
    for ax in axes[:2]:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    if data is not None:
        X, y = data
        if X.shape[1] == 2 and loaded.task == "classification":
            _decision_boundary(axes[2], loaded, X, y)
        elif X.shape[1] == 1 and loaded.task == "regression":
            _fit_1d(axes[2], loaded, X, y)
        else:
            axes[2].set_visible(False)
    fig.tight_layout()
    save_figure(fig, output)
    return output, notes


def _step_losses(ax, run_dir: Path, notes: list[str]) -> None:
    """steps.csv's loss of every gradient step, at epoch e - 1 + k / (steps in e) for its k-th step."""
    from nnctl.files import read_csv_rows
    from nnctl.runs import RunDir

    path = run_dir / RunDir.STEPS
    if not path.exists():
        return
    try:
        rows = read_csv_rows(path, strict=True)
        epochs = np.array([r["epoch"] for r in rows], dtype=np.float64)
        losses = np.array([r["loss"] for r in rows], dtype=np.float64)
    except (NnctlError, ValueError, KeyError, TypeError) as exc:
        notes.append(f"{path}: not drawn ({str(exc)[:120]})")
        return
    if not len(rows):
        return
    _, first, counts = np.unique(epochs, return_index=True, return_counts=True)
    within = np.arange(len(rows)) - np.repeat(first, counts) + 1
    x = epochs - 1 + within / np.repeat(counts, counts)
    ax.plot(x, losses, color="C0", alpha=0.25, lw=0.6, label="train loss per step", zorder=0)


def _training_data(loaded, notes):
    from nnctl.data.sources import load_dataset
    from nnctl.runs import read_split

    try:
        ds = load_dataset(loaded.spec.data, loaded.model.dtype)
        split = read_split(loaded.run)
        idx = split["train"]
        if len(idx) and int(idx.max()) >= len(ds.y):
            raise NnctlError("the data changed since training")
        return ds.X[idx], ds.y[idx]
    except NnctlError as exc:
        notes.append(f"no boundary/fit panel: cannot re-create the training data ({exc})")
        return None


def _decision_boundary(ax, loaded, X, y):
    pad = 0.1 * (X.max(axis=0) - X.min(axis=0) + 1e-9)
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], 250), np.linspace(lo[1], hi[1], 250))
    grid = np.column_stack([g0.ravel(), g1.ravel()])
    pred = loaded.model.loss.predict(loaded.logits(grid)).reshape(g0.shape)
    k = len(loaded.classes)
    ax.contourf(g0, g1, pred, levels=np.arange(k + 1) - 0.5, cmap="tab10", alpha=0.25, vmin=0, vmax=9)
    for c in range(k):
        sel = y == c
        ax.scatter(X[sel, 0], X[sel, 1], s=8, color=f"C{c}", label=plain(loaded.classes[c]), edgecolors="none")
    ax.set_title("decision boundary (training rows)")
    names = loaded.feature_names
    ax.set_xlabel(plain(names[0]))
    ax.set_ylabel(plain(names[1]))
    ax.legend(fontsize=8, markerscale=2)


def _fit_1d(ax, loaded, X, y):
    xs = np.linspace(X[:, 0].min(), X[:, 0].max(), 400)[:, None]
    pred = loaded.values(loaded.logits(xs))
    ax.scatter(X[:, 0], np.asarray(y).reshape(len(y), -1)[:, 0], s=6, color="C0", alpha=0.5,
               label="training rows")
    ax.plot(xs[:, 0], pred[:, 0], color="C3", lw=2, label="network")
    ax.set_title("fitted function")
    ax.set_xlabel(plain(loaded.feature_names[0]))
    ax.legend(fontsize=8)


LOG_SPAN = 100.0  # compare --plot: a loss axis spanning more than this factor is drawn on a log scale


def plot_curves(runs: list, output: Path, log_y: bool | None = None) -> None:
    """Overlay the validation loss and metric curves of `runs` (RunInfos) into one PNG. The loss axis
    is logarithmic when `log_y`, or (None) when its positive values span more than LOG_SPAN: one
    diverged run would otherwise flatten every other curve against the bottom."""
    from nnctl.compare import curve_labels

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    losses = []
    for run, label in zip(runs, map(plain, curve_labels(runs))):
        epochs = [r.get("epoch") for r in run.rows]
        values = [r.get("val_loss") for r in run.rows]
        losses += [v for v in values if isinstance(v, (int, float)) and np.isfinite(v) and v > 0]
        axes[0].plot(epochs, values, label=label)
        axes[1].plot(epochs, [r.get(f"val_{run.metric}") for r in run.rows], label=label)
    if log_y is None:
        log_y = bool(losses) and max(losses) > LOG_SPAN * min(losses)
    if log_y and losses:
        axes[0].set_yscale("log", nonpositive="mask")
    axes[0].set_title("validation loss" + (" (log scale)" if log_y and losses else ""))
    axes[1].set_title("validation " + ("/".join(sorted({r.metric for r in runs})) or "metric"))
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if len(runs) <= 12:
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, output)


def plot_health(report: dict, output: Path) -> None:
    """Per-layer curves of an `inspect_run` report from epoch 0 (the untrained network): activation
    std, dead and saturated fractions (only where some layer can die or saturate), gradient RMS and the
    update ratio. On the log axes a value of exactly 0 (a dead layer's gradient, the key evidence) is
    drawn at the bottom of the axis with a hollow marker, not dropped."""
    import math

    plt = pyplot()
    rows = report["all_rows"]

    def has(key: str) -> bool:
        return any(isinstance(r.get(key), (int, float)) and math.isfinite(r[key]) for r in rows)

    panels = [("act_std", "activation std (hidden layers)", True)]
    panels += [(k, t, False) for k, t in (("dead_frac", "dead ReLU fraction"), ("saturated_frac", "saturated fraction"))
               if has(k)]
    panels += [("grad_rms", "gradient RMS", True), ("update_ratio", "update / weight ratio", True)]
    ncols = 2 if len(panels) <= 4 else 3
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.5 * nrows), squeeze=False)
    layers = sorted({r["layer"] for r in rows})
    for ax, (key, title, log) in zip(axes.ravel(), panels):
        values = [r.get(key) for r in rows]
        positive = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v) and v > 0]
        floor = min(positive) / 10 if positive else 1e-12
        zeros_drawn = False
        for k, layer in enumerate(layers):
            pts = [(r["epoch"], r.get(key)) for r in rows if r["layer"] == layer]
            pts = [(e, v) for e, v in pts if isinstance(v, (int, float)) and math.isfinite(v)]
            if not pts:
                continue
            color = f"C{k % 10}"
            if log:
                ax.plot(*zip(*[(e, v if v > 0 else floor) for e, v in pts]), color=color, label=f"layer {layer}")
                zero = [e for e, v in pts if v <= 0]
                if zero:
                    ax.plot(zero, [floor] * len(zero), "v", mfc="none", color=color, ms=5)
                    zeros_drawn = True
            else:
                ax.plot(*zip(*pts), color=color, label=f"layer {layer}")
        ax.set_title(title + ("  (v: exactly 0)" if zeros_drawn else ""), fontsize=10)
        ax.set_xlabel("epoch (0: before training)")
        if log and ax.lines:
            ax.set_yscale("log")
        if not log:
            ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(f"{plain(report['name'])}: layer health")
    fig.tight_layout()
    save_figure(fig, output)


def plot_lr_find(result: dict, output: Path) -> None:
    """Loss against learning rate of an lr-find result, with the suggested rate."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result["lrs"], result["losses"], alpha=0.3, label="loss")
    ax.plot(result["lrs"], result["smoothed"], label="smoothed")
    ax.axvline(result["suggestion"], color="C3", ls="--", label=f"suggested {result['suggestion']:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, output)


def _gd_view(result: dict, axis: int) -> tuple[float, float]:
    """The range of coordinate `axis` to draw: the start, the minimum and the iterates of the runs that
    did not diverge (a diverging path leaves the frame), padded by 15%."""
    pts = [result["x0"][axis]] + ([result["minimum"][axis]] if result["minimum"] is not None else [])
    for r in result["runs"]:
        if r["stopped"] != "diverged":
            pts += [float(x[axis]) for x in r["x"]]
    lo, hi = min(pts), max(pts)
    pad = 0.15 * (hi - lo) or 1.0
    return lo - pad, hi + pad


def plot_gd(result: dict, output: Path) -> None:
    """`nnctl gd --plot`: the function (a curve for one variable, contour lines for two) with each
    run's iterates as connected points, and f(x_k) against the step k (minus f(x*) on a log axis
    when it spans orders of magnitude)."""
    from nnctl.gd import FUNCTIONS, behaviour

    plt = pyplot()
    fn = FUNCTIONS.entry(result["function"])
    names, runs = result["names"], result["runs"]
    fig, (ax, ax_f) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1.15, 1]})
    with np.errstate(all="ignore"):
        if len(names) == 1:
            lo, hi = _gd_view(result, 0)
            grid = np.linspace(lo, hi, 400)
            ax.plot(grid, [fn.f([g]) for g in grid], color="0.35", lw=1.5, label=result["formula"], zorder=1)
            ax.set_xlim(lo, hi)
            ax.set_xlabel(names[0])
            ax.set_ylabel("f")
        else:
            (x_lo, x_hi), (y_lo, y_hi) = _gd_view(result, 0), _gd_view(result, 1)
            gx, gy = np.meshgrid(np.linspace(x_lo, x_hi, 200), np.linspace(y_lo, y_hi, 200))
            F = np.array([[fn.f((a, b)) for a, b in zip(ra, rb)] for ra, rb in zip(gx, gy)])  # (200, 200)
            low = result["minimum"] is not None and fn.f(result["minimum"])
            gap = F - (low if low is not False else F.min())
            levels = np.geomspace(max(gap.max() * 1e-4, 1e-3), gap.max(), 14)  # log-spaced: valleys show
            cs = ax.contour(gx, gy, gap, levels=levels, colors="0.6", linewidths=0.8, zorder=1)
            ax.clabel(cs, cs.levels[::3], fontsize=7, fmt="%.3g")
            ax.set_xlim(x_lo, x_hi)
            ax.set_ylim(y_lo, y_hi)
            ax.set_xlabel(names[0])
            ax.set_ylabel(names[1])
            ax.set_title(result["formula"] + "  (contours of f - min f)", fontsize=10)
        positive = []
        for i, r in enumerate(runs):
            X = np.array(r["x"], dtype=float)  # (steps + 1, dim)
            if r["stopped"] == "diverged":  # draw it until it leaves the frame: the rest is off the axes
                views = [_gd_view(result, a) for a in range(len(names))]
                inside = np.all([(X[:, a] >= lo_) & (X[:, a] <= hi_) for a, (lo_, hi_) in enumerate(views)], axis=0)
                out = np.flatnonzero(~inside)
                X = X[:out[0] + 1] if len(out) else X
            label = f"lr {r['lr']:g}" + (f" {r['gd']}" if "gd" in r else "") + \
                f": {r['stopped']}, {r['steps']} steps" + (f" ({behaviour(r)})" if behaviour(r) else "")
            many = len(X) > 80
            style = {"color": f"C{i}", "lw": 0.9 if many else 1.2, "marker": "." if many else "o",
                     "ms": 2 if many else 4, "alpha": 0.85, "zorder": 2 + i}
            if len(names) == 1:
                ax.plot(X[:, 0], r["f"][:len(X)], label=label, **style)
            else:
                ax.plot(X[:, 0], X[:, 1], label=label, **style)
            f = np.array(r["f"], dtype=float)
            if result["minimum"] is not None:
                f = f - fn.f(result["minimum"])
            positive.append(f[np.isfinite(f) & (f > 0)])
            ax_f.plot(np.arange(len(f)), f, color=f"C{i}", lw=1.2, label=label)
        start = result["x0"]
        ax.plot(*(start if len(names) == 2 else (start[0], fn.f(start))), "ks", ms=6, label="start", zorder=20)
        if result["minimum"] is not None:
            m = result["minimum"]
            ax.plot(*(m if len(names) == 2 else (m[0], fn.f(m))), "k*", ms=12, label="minimum", zorder=20)
    if len(names) == 1:
        ax.set_title(result["formula"], fontsize=10)
        _, top = ax.get_ylim()
        bottom = min(fn.f([g]) for g in grid)
        ax.set_ylim(bottom - 0.08 * (max(fn.f([lo]), fn.f([hi])) - bottom), max(fn.f([lo]), fn.f([hi])) * 1.05 + 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    values = np.concatenate(positive) if positive else np.array([])
    gap_name = "f(x_k) - f(x*)" if result["minimum"] is not None else "f(x_k)"
    if len(values) and values.max() / max(values.min(), 1e-300) > 100:
        ax_f.set_yscale("log")
        top = min(values.max() * 2, 1e12)  # a diverging run would squash the others
        ax_f.set_ylim(max(values.min() / 2, top * 1e-20), top)
        ax_f.set_title(f"{gap_name} against the step (log scale)", fontsize=10)
    else:
        ax_f.set_title(f"{gap_name} against the step", fontsize=10)
    ax_f.set_xlabel("step k")
    ax_f.set_ylabel(gap_name)
    ax_f.grid(alpha=0.3, which="both")
    fig.tight_layout()
    save_figure(fig, output)
