"""The panels of `nnctl plot` that show what a run's model does, each drawn into a given axes: the
decision boundary (2-D classification) and fitted function (1-D regression) over the training rows,
the confusion matrix (classification) and predicted against true values (other regression) over the
held-out rows. The rows are re-created from the run's data and split as eval does."""

from __future__ import annotations

import numpy as np

from nnctl.errors import NnctlError
from nnctl.plot import plain


def training_data(loaded, notes):
    """The training rows (X, y) as training encoded them, or None with a note saying why not."""
    rows = split_rows(loaded, "train", notes)
    return None if rows is None else rows[:2]


def split_rows(loaded, which: str, notes: list[str]):
    """(X, y, part) of the run's split: "train", or "held-out" (the test rows, else val, else train,
    as eval re-creates them); None with a note if the data cannot be re-created."""
    from nnctl.evaluate import _test_split
    from nnctl.runs import read_split

    try:
        split = read_split(loaded.run)
        part = "train" if which == "train" else next((p for p in ("test", "val") if len(split[p])), "train")
        X, y, _, more = _test_split(loaded, part, hint="")
    except NnctlError as exc:
        what = "boundary/fit" if which == "train" else "confusion matrix" if loaded.task == "classification" \
            else "predicted-vs-true"
        notes.append(f"no {what} panel: {exc}")
        return None
    notes += [n for n in more if n not in notes]
    return np.asarray(X, dtype=np.float64), y, part


def decision_boundary(ax, loaded, X, y, part):
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
    ax.set_title(f"decision boundary ({part} rows)")
    names = loaded.feature_names
    ax.set_xlabel(plain(names[0]))
    ax.set_ylabel(plain(names[1]))
    ax.legend(fontsize=8, markerscale=2)


def fit_1d(ax, loaded, X, y, part):
    xs = np.linspace(X[:, 0].min(), X[:, 0].max(), 400)[:, None]
    pred = loaded.values(loaded.logits(xs))
    ax.scatter(X[:, 0], np.asarray(y).reshape(len(y), -1)[:, 0], s=6, color="C0", alpha=0.5,
               label=f"{part} rows")
    ax.plot(xs[:, 0], pred[:, 0], color="C3", lw=2, label="network")
    ax.set_title("fitted function")
    ax.set_xlabel(plain(loaded.feature_names[0]))
    ax.set_ylabel(plain(loaded.target_name or "target"))
    ax.legend(fontsize=8)


def short(name, width: int = 14) -> str:
    """A class or column name cut to `width` characters for an axis label."""
    text = plain(name)
    return text if len(text) <= width else text[:width - 1] + "…"


def confusion(ax, loaded, X, y, part):
    """Counts of (true, predicted) class, coloured by the share of each true class (a row sums to 1),
    so a small class's errors show as clearly as a large one's."""
    k = len(loaded.classes)
    pred = loaded.model.loss.predict(loaded.logits(X))
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)), 1)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros((k, k)), where=totals > 0)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    cbar = ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("share of the true class", fontsize=8)
    if k <= 20:
        size = 9 if k <= 10 else 7
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=size,
                        color="white" if share[i, j] > 0.5 else "black")
    names = [short(c) for c in loaded.classes]
    ticks = np.arange(k) if k <= 30 else np.arange(0, k, max(k // 30, 1))
    crowded = max(map(len, names)) * len(ticks) > 36  # the names would run into each other across the bottom
    ax.set_xticks(ticks, [names[t] for t in ticks], fontsize=9, rotation=45 if crowded else 0,
                  ha="right" if crowded else "center")
    ax.set_yticks(ticks, [names[t] for t in ticks], fontsize=9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"confusion matrix ({part}, {len(y)} rows)\naccuracy {accuracy:.3f}")


def predicted_vs_true(ax, loaded, X, y, part):
    """Each held-out row at (true, predicted) value, one colour per target, with the line y = x."""
    from nnctl.metrics import r2_score

    T = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    P = loaded.values(loaded.logits(X)).reshape(len(y), -1)
    names = [loaded.target_name] if T.shape[1] == 1 else [f"output {i + 1}" for i in range(T.shape[1])]
    for i in range(T.shape[1]):
        ax.scatter(T[:, i], P[:, i], s=10, alpha=0.6, color=f"C{i % 10}", edgecolors="none",
                   label=f"{part} rows" if T.shape[1] == 1 else plain(names[i]))
    finite = np.concatenate([T[np.isfinite(T)], P[np.isfinite(P)]])
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "--", color="0.4", lw=1, label="y = x (perfect)")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal", adjustable="box")
    r2 = r2_score(T, P) if len(T) > 1 else float("nan")
    ax.set_title(f"predicted vs true ({part}, {len(T)} rows)\nr2 {r2:.3f}")
    target = plain(loaded.target_name) if T.shape[1] == 1 and loaded.target_name else "target"
    ax.set_xlabel(f"true {target}")
    ax.set_ylabel(f"predicted {target}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
