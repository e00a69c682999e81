"""Every figure nnctl draws: a run's learning curves and lr with what its model does (the panels are
in plot_model.py; snapshots over training in plot_evolution.py); the validation curves of many runs
(compare); per-layer health (inspect); loss against learning rate (lr-find); gradient descent on a
function (gd). matplotlib is imported through `pyplot()` only, with the Agg backend (no display
needed)."""

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


LOG_SPAN = 100.0  # a loss (or lr, or health) axis whose positive values span more than this factor is logarithmic


def wide(values) -> bool:
    """Do the finite positive `values` span more than LOG_SPAN? One diverged epoch would otherwise press
    every other point of a linear axis flat against its bottom."""
    v = np.asarray([x for x in values if isinstance(x, (int, float))], dtype=np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    return bool(len(v)) and float(v.max()) > LOG_SPAN * float(v.min())


def plot_run(run_dir: Path, output: Path | None = None) -> tuple[Path, list[str]]:
    """Draw a run: loss and metric curves (train, val), the learning rate in a strip under the loss, and what the
    model does: the decision boundary for 2-D classification and the fitted function for 1-D
    regression (over the training rows), a confusion matrix for classification and predicted against
    true values for other regression (on the test rows, or val if the split has no test part).
    Returns (png path, notes)."""
    from nnctl.evaluate import load_run
    from nnctl.plot_model import confusion, decision_boundary, fit_1d, predicted_vs_true, split_rows
    from nnctl.runs import read_run

    loaded = load_run(run_dir)  # checks the run dir first
    info = read_run(Path(run_dir))
    output = Path(output) if output is not None else Path(run_dir) / "plot.png"
    notes: list[str] = []
    n_in = int(loaded.pre.shift.shape[0])
    numeric = bool(loaded.columns) and all(c["kind"] == "numeric" for c in loaded.columns)
    panels = []  # (draw(ax, X, y, part), rows to draw: "train" or "held-out")
    if loaded.task == "classification":
        if n_in == 2 and numeric:
            panels.append((decision_boundary, "train"))
        panels.append((confusion, "held-out"))
    elif n_in == 1 and numeric:
        panels.append((fit_1d, "train"))
    else:
        panels.append((predicted_vs_true, "held-out"))
    data = {}
    for _, rows in panels:
        if rows not in data:
            data[rows] = split_rows(loaded, rows, notes)
    panels = [(draw, rows) for draw, rows in panels if data[rows] is not None]

    plt = pyplot()
    if len(panels) <= 1:  # loss over the lr strip | metric | the model
        cols = 2 + len(panels)
        fig = plt.figure(figsize=(5 * cols, 4.8), layout="constrained")
        outer = fig.add_gridspec(1, cols)
        places = [outer[0, 2]] if panels else []
    else:  # two model panels: a second row
        fig = plt.figure(figsize=(11.5, 9.5), layout="constrained")
        outer = fig.add_gridspec(2, 2, height_ratios=[1, 1.1])
        places = [outer[1, 0], outer[1, 1]]
    left = outer[0, 0].subgridspec(2, 1, height_ratios=[3, 1])
    ax_loss = fig.add_subplot(left[0])  # fig.axes: loss, lr, metric, then the model panels
    ax_lr = fig.add_subplot(left[1], sharex=ax_loss)
    ax_metric = fig.add_subplot(outer[0, 1], sharex=ax_loss)
    model_axes = [fig.add_subplot(place) for place in places]
    _curves(ax_loss, ax_metric, ax_lr, info, Path(run_dir), notes)
    for ax, (draw, rows) in zip(model_axes, panels):
        X, y, part = data[rows]
        draw(ax, loaded, X, y, part)
    save_figure(fig, output)
    return output, notes


def _curves(ax_loss, ax_metric, ax_lr, info, run_dir: Path, notes: list[str]) -> None:
    """Loss and metric per epoch (train dashed, val solid), the lr in its own strip under the loss;
    log axes where the values span more than LOG_SPAN."""
    m = info.metric
    epochs = [r.get("epoch") for r in info.rows]
    steps = _step_losses(ax_loss, run_dir, notes)  # train.log_steps: a light line behind the epoch curves
    losses = list(steps)
    for split, style in (("train", "--"), ("val", "-")):
        values = [r.get(f"{split}_loss") for r in info.rows]
        if any(isinstance(v, (int, float)) for v in values):
            ax_loss.plot(epochs, values, style, label=f"{split} loss")
            losses += values
        values = [r.get(f"{split}_{m}") for r in info.rows]
        if any(isinstance(v, (int, float)) for v in values):
            ax_metric.plot(epochs, values, style, label=f"{split} {m}")
    log = wide(losses)
    if log:
        ax_loss.set_yscale("log", nonpositive="mask")
    ax_loss.set_title(f"{plain(info.name)}: loss" + (" (log scale)" if log else ""))
    ax_metric.set_title(m)
    if m == "r2":  # a diverging regression reaches r2 = -1e6; below -1 the fit is worse than the mean anyway
        low = [v for r in info.rows for k in ("train_r2", "val_r2")
               if isinstance(v := r.get(k), (int, float)) and np.isfinite(v)]
        if low and min(low) < -1:
            ax_metric.set_ylim(-1.05, max(1.0, max(low)) + 0.05)
            ax_metric.set_title("r2 (axis cut at -1)")
    lrs = [r.get("lr") for r in info.rows]
    ax_lr.plot(epochs, lrs, color="0.35", lw=1.2, label="lr")
    ax_lr.set_ylabel("lr")
    numbers = [v for v in lrs if isinstance(v, (int, float)) and np.isfinite(v)]
    if wide(numbers):
        ax_lr.set_yscale("log")
    elif numbers:
        ax_lr.set_ylim(0, max(numbers) * 1.2 or 1.0)  # from 0, so a constant rate reads as constant
    for ax in (ax_metric, ax_lr):
        ax.set_xlabel("epoch")
    ax_loss.tick_params(labelbottom=False)
    for ax in (ax_loss, ax_metric, ax_lr):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8, loc="best")


def _step_losses(ax, run_dir: Path, notes: list[str]) -> list[float]:
    """steps.csv's loss of every gradient step, at epoch e - 1 + k / (steps in e) for its k-th step;
    returns the losses drawn."""
    from nnctl.files import read_csv_rows
    from nnctl.runs import RunDir

    path = run_dir / RunDir.STEPS
    if not path.exists():
        return []
    try:
        rows = read_csv_rows(path, strict=True)
        epochs = np.array([r["epoch"] for r in rows], dtype=np.float64)
        losses = np.array([r["loss"] for r in rows], dtype=np.float64)
    except (NnctlError, ValueError, KeyError, TypeError) as exc:
        notes.append(f"{path}: not drawn ({str(exc)[:120]})")
        return []
    if not len(rows):
        return []
    _, first, counts = np.unique(epochs, return_index=True, return_counts=True)
    within = np.arange(len(rows)) - np.repeat(first, counts) + 1
    x = epochs - 1 + within / np.repeat(counts, counts)
    ax.plot(x, losses, color="C0", alpha=0.25, lw=0.6, label="train loss per step", zorder=0)
    return losses.tolist()


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
        log_y = wide(losses)
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


HEALTH_PANELS = (("act_std", "activation std (hidden)", False), ("dead_frac", "dead ReLU fraction", True),
                 ("saturated_frac", "saturated fraction", True), ("grad_rms", "gradient RMS", False),
                 ("update_ratio", "update / weight ratio", False))  # (column, title, a fraction in [0, 1])


def plot_health(report: dict, output: Path) -> None:
    """Per-layer curves of an `inspect_run` report from epoch 0 (the untrained network), one panel per
    measure that applies: activation std (nets with hidden layers), dead fraction (relu layers),
    saturated fraction (sigmoid/tanh layers), gradient RMS and the update ratio. A measure spanning more
    than LOG_SPAN, or with exact zeros among positive values (a dead layer's gradient, the key evidence),
    is drawn on a log axis with each 0 as a hollow marker at the bottom rather than dropped."""
    import math

    plt = pyplot()
    rows = report["all_rows"]

    def number(v) -> bool:
        return isinstance(v, (int, float)) and math.isfinite(v)

    panels = [p for p in HEALTH_PANELS if any(number(r.get(p[0])) for r in rows)]
    n = len(panels)
    ncols = n if n <= 3 else 2 if n == 4 else 3
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.6 * nrows + 0.5), squeeze=False, layout="constrained")
    layers = sorted({r["layer"] for r in rows})
    for ax, (key, title, fraction) in zip(axes.ravel(), panels):
        values = [r.get(key) for r in rows if number(r.get(key))]
        positive = [v for v in values if v > 0]
        log = not fraction and positive and (wide(positive) or any(v == 0 for v in values))
        floor = min(positive) / 10 if positive else 1e-12
        zeros_drawn = False
        for k, layer in enumerate(layers):
            pts = [(r["epoch"], r.get(key)) for r in rows if r["layer"] == layer and number(r.get(key))]
            if not pts:
                continue
            color = f"C{k % 10}"
            if log:
                ax.plot(*zip(*[(e, v if v > 0 else floor) for e, v in pts]), color=color, label=f"layer {layer}")
                zero = [e for e, v in pts if v <= 0]
                if zero:
                    ax.plot(zero, [floor] * len(zero), "v", mfc="none", color=color, ms=5,
                            label=f"layer {layer}: exactly 0")
                    zeros_drawn = True
            else:
                ax.plot(*zip(*pts), color=color, label=f"layer {layer}")
        extra = ["log scale"] * bool(log) + ["v: exactly 0"] * zeros_drawn + ["all exactly 0"] * (not positive)
        ax.set_title(title + (f" ({'; '.join(extra)})" if extra else ""), fontsize=10)
        ax.set_xlabel("epoch (0: before training)")
        if log:
            ax.set_yscale("log")
            _log_labels(ax.yaxis, *ax.get_ylim())
        if fraction:
            ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.suptitle(f"{plain(report['name'])}: layer health")
    save_figure(fig, output)


def _log_labels(axis, lo: float, hi: float) -> None:
    """Plain numbers (0.3, 2) on a log axis from `lo` to `hi`; under two decades the 2 and 5 between
    the powers of ten are labelled too (a loss from 0.2 to 0.9 would otherwise show one label)."""
    import math

    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    if math.log10(hi / lo) < 2:
        axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))
    else:
        axis.set_minor_formatter(NullFormatter())


def plot_lr_find(result: dict, output: Path) -> None:
    """An lr-find result on log-log axes: the loss and its moving average against the learning rate,
    cut where the smoothed loss passes LR_FIND_STOP times its minimum (the rest is the blow-up), with
    the lowest smoothed loss and the suggested rate marked."""
    from nnctl.checks import LR_FIND_STOP, lr_find_head

    plt = pyplot()
    lrs = np.asarray(result["lrs"], dtype=np.float64)
    raw = np.asarray(result["losses"], dtype=np.float64)
    sm = np.asarray(result["smoothed"], dtype=np.float64)
    skip = lr_find_head(len(sm))
    i_low = skip + int(np.argmin(sm[skip:]))
    low = float(sm[i_low])
    beyond = i_low + np.flatnonzero(sm[i_low:] > LR_FIND_STOP * low)
    end = int(beyond[0]) if len(beyond) else len(sm)  # the points drawn: up to the blow-up
    lrs, raw, sm = lrs[:end], raw[:end], sm[:end]
    fig, ax = plt.subplots(figsize=(7, 4.6), layout="constrained")
    ax.plot(lrs, raw, color="C0", alpha=0.3, lw=1, label="loss (each step)")
    ax.plot(lrs, sm, color="C0", lw=2, label="smoothed loss")
    ref = result["reference_lr"]
    i_ref = int(np.argmin(np.abs(np.log(lrs) - np.log(ref))))
    ax.plot([lrs[i_ref]], [sm[i_ref]], "o", color="C2", ms=7,
            label=(f"lowest smoothed loss, lr {ref:.2g}" if result["basis"] == "lowest loss" else
                   f"blow-up starts, lr {ref:.2g} (the loss fell only {max(result['fall'], 0):.0%})"))
    suggestion = result["suggestion"]
    why = {"rise": ", moved down off a rise",
           "cap": f", capped at {result.get('cap') or 0:g} for {result['optimizer']}"}
    ax.axvline(suggestion, color="C3", ls="--", lw=1.5,
               label=f"suggested lr {suggestion:.2g}: a tenth of that{why.get(result['lowered'], '')}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    positive = raw[raw > 0]
    bottom = min(float(np.percentile(positive, 2)) if len(positive) else low, low) * 0.8
    top = max(float(sm.max()), float(np.percentile(raw, 98))) * 1.25
    ax.set_ylim(bottom, top)  # the odd raw step beyond these (a last spike, a lucky batch) is off the axes
    ax.set_xlim(lrs[0], lrs[-1] * 1.2)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(f"lr range test ({result['optimizer']}, batch {result['batch_size']})")
    _log_labels(ax.yaxis, bottom, top)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
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
