"""train.log_steps: the loss of every gradient step, for steps.csv.

One row per gradient step taken (a step whose loss or gradient is not finite is not taken, so it
has no row): `epoch` (1-based, the epoch the step belongs to), `step` (1-based and global: it
counts on across epochs and resumes, so the last row's step is the run's number of steps), `loss`
(the batch loss the trainer computed, before the update) and `lr`. The rows travel in the
checkpoint as one float64 matrix, so steps.csv after a resume equals an uninterrupted run's.
"""

from __future__ import annotations

import numpy as np

COLUMNS = ["epoch", "step", "loss", "lr"]


class StepLog:
    """The step rows of a run, kept as tuples; `add` is called once per gradient step."""

    def __init__(self):
        self.rows: list[tuple[int, int, float, float]] = []
        self._matrix = np.zeros((0, 4))  # rows already converted for checkpoints

    def add(self, epoch: int, loss: float, lr: float) -> None:
        rows = self.rows
        rows.append((epoch, len(rows) + 1, loss, lr))

    def dicts(self, start: int) -> list[dict]:
        """Rows from index `start` as steps.csv rows."""
        return [dict(zip(COLUMNS, r)) for r in self.rows[start:]]

    def state_array(self) -> np.ndarray:
        """The rows as an (n, 4) float64 matrix; converts only the rows added since the last call."""
        done = len(self._matrix)
        if done > len(self.rows):  # cannot happen in one trainer; be safe
            done, self._matrix = 0, np.zeros((0, 4))
        if done < len(self.rows):
            new = np.array(self.rows[done:], dtype=np.float64).reshape(-1, 4)
            self._matrix = np.concatenate([self._matrix, new])
        return self._matrix

    def load(self, matrix: np.ndarray, epochs_done: int, mid_epoch: bool) -> None:
        """Put a checkpoint's rows back (ValueError if they are not a step log of this position)."""
        if matrix.ndim != 2 or matrix.shape[1] != 4 or matrix.dtype.kind != "f":
            raise ValueError(f"the step rows are a {matrix.shape} array of {matrix.dtype}, not 4 float columns")
        n = len(matrix)
        last_epoch = epochs_done + (1 if mid_epoch else 0)
        if n and (not np.array_equal(matrix[:, 1], np.arange(1, n + 1)) or matrix[-1, 0] > last_epoch
                  or (np.diff(matrix[:, 0]) < 0).any()):
            raise ValueError("the step rows are not numbered 1, 2, ... within the epochs run")
        self.rows = [(int(e), int(s), float(loss), float(lr)) for e, s, loss, lr in matrix.tolist()]
        self._matrix = matrix.astype(np.float64, copy=True)
