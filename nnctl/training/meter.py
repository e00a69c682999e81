"""Training metrics of an epoch, summed step by step from each step's own forward pass."""

from __future__ import annotations

import numpy as np

from nnctl.metrics import r2_from_sums, total_sum_of_squares


class EpochMeter:
    """Training metrics summed over an epoch's steps, from each step's own forward pass (dropout on).

    Its sums are part of a mid-epoch checkpoint (`state_dict`), so a resumed epoch reports the same
    numbers as one never interrupted.
    """

    def __init__(self, task: str, Y_train: np.ndarray, unit_scale: np.ndarray | None = None):
        """`unit_scale` (k,): regression targets were divided by it (target scaling); train_mae is
        reported in the original units (r2 does not change with the units)."""
        self.task = task
        self.unit_scale = unit_scale
        self.ss_tot = total_sum_of_squares(Y_train) if task == "regression" else None
        self.n_targets = Y_train.shape[1]
        self.classification = task == "classification"
        self.reset()

    def reset(self) -> None:
        self.loss_sum, self.rows, self.correct, self.abs_err = 0.0, 0, 0, 0.0
        self.sse = np.zeros(self.n_targets) if self.task == "regression" else None

    def add(self, loss: float, Z: np.ndarray, Yb: np.ndarray, yb: np.ndarray, predict) -> None:
        """One step's mean loss, logits Z and targets (encoded Yb, raw yb); `predict` maps logits to
        class indices."""
        n = len(Z)
        if self.classification:
            self.correct += int(np.count_nonzero(predict(Z) == yb))
        else:
            D = Z - Yb
            self.sse += np.einsum("ij,ij->j", D, D, dtype=np.float64)
            if self.unit_scale is None:
                self.abs_err += float(np.abs(D).sum(dtype=np.float64))
            else:
                self.abs_err += float(np.abs(D).sum(axis=0, dtype=np.float64) @ self.unit_scale)
        self.loss_sum += loss * n
        self.rows += n

    def row(self) -> dict[str, float]:
        """train_loss and the task's train_ metrics over the rows seen."""
        rows = max(self.rows, 1)
        out = {"train_loss": self.loss_sum / rows}
        if self.classification:
            out["train_accuracy"] = self.correct / rows
        else:
            out["train_r2"] = r2_from_sums(self.sse, self.ss_tot)
            out["train_mae"] = self.abs_err / (rows * self.n_targets)
        return out

    def state_dict(self) -> tuple[dict, np.ndarray | None]:
        """The running sums ({loss_sum, rows_used, correct, abs_err}) and the per-target squared errors."""
        return {"loss_sum": self.loss_sum, "rows_used": self.rows, "correct": self.correct,
                "abs_err": self.abs_err}, self.sse

    def load_state_dict(self, meta: dict, sse) -> None:
        self.loss_sum, self.rows = float(meta["loss_sum"]), int(meta["rows_used"])
        self.correct, self.abs_err = int(meta["correct"]), float(meta["abs_err"])
        if self.sse is not None:
            self.sse = np.array(sse, dtype=np.float64)
