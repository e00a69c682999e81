"""Scores: the metrics of a task, how they are computed, and the one a task is judged by.

Classification is judged by accuracy, regression by r2 (mae is reported beside it). The same
definitions serve the per-epoch metrics while training (`score`, `EpochMeter`) and `nnctl eval`
(`classification_report`, `regression_report`), and they agree with scikit-learn's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# NumPy is imported inside the scoring functions: compare reads the metric names without it.
TASK_METRIC = {"classification": "accuracy", "regression": "r2"}


def task_metric(task: str) -> str:
    """The metric a task is judged by: accuracy, or r2."""
    return TASK_METRIC[task]


def higher_is_better(column: str) -> bool:
    """Is a larger value better for this metric or column (val_accuracy, best_val_r2, ...)?"""
    return column.rsplit("_", 1)[-1] in TASK_METRIC.values()


def metric_names(task: str) -> list[str]:
    """Per-split metrics besides the loss: accuracy, or r2 and mae."""
    return ["accuracy"] if task == "classification" else ["r2", "mae"]


def metric_columns(task: str) -> list[str]:
    """metrics.csv header: epoch, losses, train_/val_ metrics, lr, epoch time."""
    cols = ["epoch", "train_loss", "val_loss"]
    for m in metric_names(task):
        cols += [f"train_{m}", f"val_{m}"]
    return cols + ["lr", "epoch_time_s"]


def r2_from_sums(sse: np.ndarray, ss_tot: np.ndarray) -> float:
    """Coefficient of determination from per-column residual and total sums of squares, averaged
    over the target columns (sklearn's uniform_average); NaN for a constant column."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.mean(np.where(ss_tot > 0, 1.0 - sse / ss_tot, np.nan)))


def total_sum_of_squares(T: np.ndarray) -> np.ndarray:
    """Per column, sum((t - mean(t))^2) of targets T (n, k), in float64."""
    import numpy as np

    T = T.astype(np.float64)
    return np.sum((T - T.mean(axis=0)) ** 2, axis=0)


def r2_score(T: np.ndarray, P: np.ndarray) -> float:
    """r2 of predictions P against targets T (both (n, k))."""
    import numpy as np

    return r2_from_sums(np.sum((T - P) ** 2, axis=0), total_sum_of_squares(T))


def score(model, X: np.ndarray, Y: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    """Inference-mode loss and metrics of `model` on features X, encoded targets Y, raw targets y."""
    import numpy as np

    if len(X) == 0:
        return {"loss": math.nan, **{m: math.nan for m in metric_names(task)}}
    Z = model.logits(X)
    out = {"loss": model.loss.value(Z, Y)}
    if task == "classification":
        out["accuracy"] = float(np.mean(model.loss.predict(Z) == y))
    else:
        P = model.loss.predict(Z).astype(np.float64)
        T = Y.astype(np.float64)
        out["r2"] = r2_score(T, P)
        out["mae"] = float(np.mean(np.abs(P - T)))
    return out


class EpochMeter:
    """Training metrics summed over an epoch's steps, from each step's own forward pass (dropout on).

    Its sums are part of a mid-epoch checkpoint (`state_dict`), so a resumed epoch reports the same
    numbers as one never interrupted.
    """

    def __init__(self, task: str, Y_train: np.ndarray):
        import numpy as np

        self._np = np  # (imported once here, not on every step)
        self.task = task
        self.ss_tot = total_sum_of_squares(Y_train) if task == "regression" else None
        self.n_targets = Y_train.shape[1]
        self.classification = task == "classification"
        self.reset()

    def reset(self) -> None:
        self.loss_sum, self.rows, self.correct, self.abs_err = 0.0, 0, 0, 0.0
        self.sse = self._np.zeros(self.n_targets) if self.task == "regression" else None

    def add(self, loss: float, Z: np.ndarray, Yb: np.ndarray, yb: np.ndarray, predict) -> None:
        """One step's mean loss, logits Z and targets (encoded Yb, raw yb); `predict` maps logits to
        class indices."""
        n = len(Z)
        if self.classification:
            self.correct += int(self._np.count_nonzero(predict(Z) == yb))
        else:
            np, D = self._np, Z - Yb
            self.sse += np.einsum("ij,ij->j", D, D, dtype=np.float64)
            self.abs_err += float(np.abs(D).sum(dtype=np.float64))
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

    def state_dict(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"loss_sum": self.loss_sum, "rows": self.rows, "correct": self.correct, "abs_err": self.abs_err}
        return meta, ({"sse": self.sse} if self.sse is not None else {})

    def load_state_dict(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        self.loss_sum, self.rows = float(meta["loss_sum"]), int(meta["rows"])
        self.correct, self.abs_err = int(meta["correct"]), float(meta["abs_err"])
        if self.sse is not None:
            self.sse = self._np.array(arrays["sse"], dtype=self._np.float64)


# ------------------------------------------------------------------------------------ nnctl eval
def classification_report(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix."""
    import numpy as np

    k = len(classes)
    cm = np.zeros((k, k), dtype=np.int64)  # rows: true class, columns: predicted class
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(np.float64)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)  # sklearn's zero_division=0
        recall = np.where(actual > 0, tp / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = actual > 0
    per_class = {c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                     "support": int(actual[i])} for i, c in enumerate(classes)}
    return {
        "accuracy": float(tp.sum() / max(len(y_true), 1)),
        # macro over the classes that occur in y_true or y_pred, as sklearn's f1_score(average="macro")
        "macro_f1": float(f1[present | (predicted > 0)].mean()) if len(y_true) else float("nan"),
        "per_class": per_class,
        "confusion_matrix": {"labels": classes, "matrix": cm.tolist()},
    }


def regression_report(T: np.ndarray, P: np.ndarray) -> dict:
    """mse, mae and r2 (averaged over target columns)."""
    import numpy as np

    T = T.reshape(len(T), -1).astype(np.float64)
    P = P.reshape(len(P), -1).astype(np.float64)
    return {"mse": float(np.mean((T - P) ** 2)), "mae": float(np.mean(np.abs(T - P))), "r2": r2_score(T, P)}
