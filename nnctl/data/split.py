"""The train/val/test split: row indices, stratified by class for classification."""

from __future__ import annotations

import math

import numpy as np

from nnctl.errors import DataError


def split_indices(n: int, y: np.ndarray | None, val: float, test: float, stratify: bool,
                  rng: np.random.Generator, source: str = "data") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/val/test row indices (each sorted). Sizes: ceil(fraction * n) for val and test.

    Stratified (y given): each class contributes its share to val and test (largest remainder),
    keeping at least one row of every class in train.
    """
    n_test, n_val = math.ceil(test * n), math.ceil(val * n)
    if n - n_test - n_val < 2:
        raise DataError(
            f"{source}: {n} rows are too few for data.split (val {val}, test {test}): "
            f"training would get {max(n - n_test - n_val, 0)} rows; need at least 2"
        )
    perm = rng.permutation(n)
    if y is None:
        return np.sort(perm[n_val + n_test:]), np.sort(perm[:n_val]), np.sort(perm[n_val:n_val + n_test])
    labels = y[perm]
    groups = [perm[labels == k] for k in np.unique(labels)]
    del perm, labels  # a large data set's split holds few copies of n indices at once (peak memory)
    counts = np.array([len(g) for g in groups])
    t_k = _allocate(n_test, counts * test, counts - 1)
    v_k = _allocate(n_val, counts * val, counts - 1 - t_k)
    train, valid, tst = [], [], []
    for g, t, v in zip(groups, t_k, v_k):
        tst.append(g[:t])
        valid.append(g[t:t + v])
        train.append(g[t + v:])
    del groups
    parts = []
    for part in (train, valid, tst):
        rows = np.concatenate(part)
        part.clear()
        rows.sort()  # in place: no second copy
        parts.append(rows)
    return tuple(parts)


def _allocate(total: int, shares: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Integers summing to (at most) `total`, close to `shares`, each within [0, caps]."""
    base = np.minimum(np.floor(shares).astype(np.int64), caps)
    rest = total - base.sum()
    order = np.argsort(-(shares - np.floor(shares)), kind="stable")
    while rest > 0:
        moved = False
        for k in order:
            if rest > 0 and base[k] < caps[k]:
                base[k] += 1
                rest -= 1
                moved = True
        if not moved:
            break
    return base
