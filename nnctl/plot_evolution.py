"""`nnctl plot --evolution` and `--units`: how a small network's function forms, from a run dir alone.

--evolution reads snapshots.npz (train.snapshot_every) and draws the decision boundary (2-D
classification) or the fitted curve (1-D regression) at up to MAX_PANELS evenly spaced snapshot
epochs as a grid of panels (PNG), or every snapshot up to MAX_FRAMES as a GIF, one frame each.
--units draws what each first-layer hidden unit computes over the input plane (2-D inputs): its
activation, coloured around 0, and the line where its pre-activation changes sign.
Figures are drawn with plot.pyplot (matplotlib is imported in plot.py only).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from nnctl.errors import DataError, NnctlError, RunDirError

MAX_PANELS = 12  # snapshots in the PNG grid, evenly spaced, first and last included
MAX_FRAMES = 100  # frames in a GIF, chosen the same way
MAX_UNITS = 16  # first-layer units drawn by --units
GRID = 160  # points per side of the input-plane grid


def evenly(items: list, n: int) -> list:
    """At most `n` of `items`, evenly spaced, the first and the last always included."""
    if len(items) <= n:
        return list(items)
    return [items[i] for i in np.unique(np.round(np.linspace(0, len(items) - 1, n)).astype(int))]


def _setup(run_dir: Path, what: str, need_2d: bool = False):
    """The loaded run, its metrics rows, the training rows (X, y) and the kind of plot it allows."""
    from nnctl.evaluate import load_run
    from nnctl.plot_model import training_data
    from nnctl.runs import read_run

    loaded = load_run(run_dir)
    n_in = int(loaded.pre.shift.shape[0])
    numeric = bool(loaded.columns) and all(c["kind"] == "numeric" for c in loaded.columns)
    kind = ("boundary" if n_in == 2 and loaded.task == "classification" and not need_2d else
            "curve" if n_in == 1 and loaded.task == "regression" and not need_2d else
            "plane" if n_in == 2 and need_2d else None)
    if not numeric or kind is None:
        needs = ("2-D numeric inputs" if need_2d else
                 "2-D numeric inputs (classification) or 1-D numeric inputs (regression)")
        raise NnctlError(f"{loaded.run.path}: plot {what} needs {needs}; this run is {loaded.task} on {n_in} "
                         f"input column{'s' * (n_in != 1)}{'' if numeric else ' (not all numeric)'}")
    notes: list[str] = []
    data = training_data(loaded, notes)
    if data is None:
        raise DataError(f"{loaded.run.path}: plot {what} draws the training rows, but {notes[0].split(': ', 1)[1]}")
    X, y = data
    return loaded, read_run(Path(run_dir)).rows, np.asarray(X, dtype=np.float64), y, kind


def _plane(X: np.ndarray):
    pad = 0.1 * (X.max(axis=0) - X.min(axis=0) + 1e-9)
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], GRID), np.linspace(lo[1], hi[1], GRID))
    return g0, g1, np.column_stack([g0.ravel(), g1.ravel()])


def _title(epoch: int, row: dict | None, task: str) -> str:
    if epoch == 0:
        return "epoch 0 (initial weights)"
    key, short = ("accuracy", "acc") if task == "classification" else ("loss", "loss")
    parts = [f"epoch {epoch}"]
    for split in ("train", "val"):
        v = (row or {}).get(f"{split}_{key}")
        if isinstance(v, (int, float)) and math.isfinite(v):
            parts.append(f"{split} {short} {v:.3g}")
    return " · ".join(parts)


def plot_evolution(run_dir: Path, output: Path | None = None) -> tuple[Path, list[str]]:
    """Draw the boundary (or fit) at the snapshot epochs into a PNG grid or a GIF; (path, notes)."""
    from nnctl.plot import pyplot, save_animation, save_figure
    from nnctl.snapshots import SNAPSHOTS_FILE, read_snapshots

    loaded, rows, X, y, kind = _setup(run_dir, "--evolution")
    path = loaded.run.file(SNAPSHOTS_FILE)
    if not path.exists() and not path.is_symlink():
        raise RunDirError(f"{loaded.run.path}: no {SNAPSHOTS_FILE}; plot --evolution needs the weights kept during "
                          f"training: train with train.snapshot_every: N (e.g. --set train.snapshot_every=5)")
    output = Path(output) if output is not None else loaded.run.path / "evolution.png"
    gif = output.suffix.lower() == ".gif"
    if not gif and output.suffix.lower() != ".png":
        raise NnctlError(f"{output}: plot --evolution writes a .png (a grid) or a .gif (an animation)")
    snaps = read_snapshots(path, loaded.model.expected_shapes())
    every = loaded.spec.train.snapshot_every
    epochs = evenly(sorted(snaps), MAX_FRAMES if gif else MAX_PANELS)
    notes = []
    if len(epochs) < len(snaps):
        notes.append(f"{len(epochs)} of the {len(snaps)} snapshots, evenly spaced (the first and last included)")
    by_epoch = {r.get("epoch"): r for r in rows}
    frames = [_frame(loaded, snaps[e], X, kind) for e in epochs]
    title = (f"{loaded.spec.name}: {'decision boundary' if kind == 'boundary' else 'fitted function'} "
             f"during training (train.snapshot_every: {every})")
    plt = pyplot()
    ylim = _curve_limits(y) if kind == "curve" else None
    if gif:
        fig, ax = plt.subplots(figsize=(5.2, 4.6))

        def draw(i):
            ax.clear()
            _panel(ax, loaded, X, y, kind, frames[i], _title(epochs[i], by_epoch.get(epochs[i]), loaded.task),
                   legend=True, ylim=ylim)
            fig.suptitle(loaded.spec.name, fontsize=10)
            return []

        draw(0)
        fig.tight_layout()
        save_animation(fig, draw, len(epochs), output, fps=min(10.0, max(2.0, len(epochs) / 8)))
        return output, notes
    ncols = min(4, len(epochs))
    nrows = math.ceil(len(epochs) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.3 * nrows + 0.4), squeeze=False)
    for i, (ax, e) in enumerate(zip(axes.ravel(), epochs)):
        _panel(ax, loaded, X, y, kind, frames[i], _title(e, by_epoch.get(e), loaded.task), legend=i == 0,
               ylim=ylim)
    for ax in axes.ravel()[len(epochs):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save_figure(fig, output)
    return output, notes


def _frame(loaded, snapshot: dict[str, np.ndarray], X: np.ndarray, kind: str):
    """What one panel draws: (grid, predicted class per grid point) or (xs, fitted values)."""
    try:
        loaded.model.load_state_arrays(snapshot)
    except ValueError as exc:
        raise RunDirError(f"{loaded.run.path}: snapshots.npz: {exc}") from None
    if kind == "boundary":
        g0, g1, grid = _plane(X)
        return g0, g1, loaded.model.loss.predict(loaded.logits(grid)).reshape(g0.shape)
    xs = np.linspace(X[:, 0].min(), X[:, 0].max(), 400)[:, None]
    return xs[:, 0], loaded.values(loaded.logits(xs))[:, 0]


def _curve_limits(y) -> tuple[float, float]:
    """One y range for every panel: the targets, with room for a fit that overshoots a little."""
    t = np.asarray(y, dtype=np.float64).reshape(len(y), -1)[:, 0]
    lo, hi = float(t.min()), float(t.max())
    pad = 0.25 * (hi - lo + 1e-9)
    return lo - pad, hi + pad


def _panel(ax, loaded, X, y, kind, frame, title, legend, ylim):
    if kind == "boundary":
        g0, g1, pred = frame
        k = len(loaded.classes)
        ax.contourf(g0, g1, pred, levels=np.arange(k + 1) - 0.5, cmap="tab10", alpha=0.25, vmin=0, vmax=9)
        ax.contour(g0, g1, pred, levels=np.arange(k - 1) + 0.5, colors="k", linewidths=0.7)
        for c in range(k):
            sel = y == c
            ax.scatter(X[sel, 0], X[sel, 1], s=6, color=f"C{c}", label=loaded.classes[c], edgecolors="none")
        ax.set_xlim(g0.min(), g0.max())
        ax.set_ylim(g1.min(), g1.max())
        ax.set_xlabel(loaded.feature_names[0], fontsize=8)
        ax.set_ylabel(loaded.feature_names[1], fontsize=8)
    else:
        xs, fit = frame
        t = np.asarray(y).reshape(len(y), -1)[:, 0]
        ax.scatter(X[:, 0], t, s=5, color="C0", alpha=0.5, label="training rows", edgecolors="none")
        ax.plot(xs, fit, color="C3", lw=2, label="network")
        ax.set_ylim(*ylim)
        ax.set_xlabel(loaded.feature_names[0], fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    if legend:
        ax.legend(fontsize=7, markerscale=2, loc="upper right")


def plot_units(run_dir: Path, output: Path | None = None) -> tuple[Path, list[str]]:
    """What each first-layer hidden unit computes over the input plane (2-D inputs), trained weights."""
    from nnctl.plot import pyplot, save_figure

    loaded, _, X, y, _ = _setup(run_dir, "--units", need_2d=True)
    model = loaded.model
    if not model.hidden:
        raise NnctlError(f"{loaded.run.path}: plot --units draws the first hidden layer's units, and this model has "
                         f"no hidden layer (model.hidden: [])")
    output = Path(output) if output is not None else loaded.run.path / "units.png"
    g0, g1, grid = _plane(X)
    with np.errstate(over="ignore", invalid="ignore"):
        _, cache = model.forward(np.ascontiguousarray(loaded.pre.transform(grid), dtype=model.dtype))
        _, on_rows = model.forward(np.ascontiguousarray(loaded.pre.transform(X), dtype=model.dtype))
    first = cache.hidden[0]
    H, Z = first.H.astype(np.float64), first.Z.astype(np.float64)
    layer = loaded.spec.model.layers[0]
    units = H.shape[1]
    shown = min(units, MAX_UNITS)
    notes = [f"the first {shown} of {units} first-layer units"] if shown < units else []
    ncols = min(4, shown)
    nrows = math.ceil(shown / ncols)
    plt = pyplot()
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.0 * nrows + 0.5), squeeze=False)
    act = getattr(layer.activation, "registry_name", None) or str(layer.activation)
    dies = act in ("relu", "relu6")
    for j, ax in enumerate(axes.ravel()[:shown]):
        h = H[:, j].reshape(g0.shape)
        v = float(np.nanmax(np.abs(h))) or 1.0
        ax.contourf(g0, g1, h, levels=np.linspace(-v, v, 21), cmap="RdBu_r", vmin=-v, vmax=v)
        if Z.shape[1] == units and np.nanmin(Z[:, j]) < 0 < np.nanmax(Z[:, j]):  # (maxout has k pieces a unit)
            ax.contour(g0, g1, Z[:, j].reshape(g0.shape), levels=[0.0], colors="k", linewidths=0.9,
                       linestyles="--")
        colors = [f"C{int(c)}" for c in y] if loaded.task == "classification" else "0.3"
        ax.scatter(X[:, 0], X[:, 1], s=3, c=colors, alpha=0.35, edgecolors="none")
        title = f"unit {j + 1}"
        if dies:
            active = float(np.mean(on_rows.hidden[0].H[:, j] > 0))
            title += f": active on {active:.0%} of rows" if active > 0 else ": dead on every row"
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[shown:]:
        ax.set_visible(False)
    fig.suptitle(f"{loaded.spec.name}: first-layer units ({act}); colour = activation "
                 f"(red > 0 > blue, each unit its own scale), dashed = pre-activation 0", fontsize=10)
    fig.tight_layout()
    save_figure(fig, output)
    return output, notes
