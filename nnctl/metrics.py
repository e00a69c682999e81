"""Scores: the metrics of a task, how they are computed, and the one a task is judged by.

Classification is judged by accuracy, regression by r2 (mae is reported beside it). The same
definitions serve the per-epoch metrics while training (`score`, and training/meter.py's sums)
and `nnctl eval` (`classification_report`, `regression_report`), and they agree with
scikit-learn's. NumPy is imported inside the scoring functions only: compare reads the metric
names of a run without it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

TASK_METRIC = {"classification": "accuracy", "regression": "r2"}
HIGHER_IS_BETTER = ("accuracy", "r2")  # every other metric, and every loss, is better smaller


def task_metric(task: str) -> str:
    """The metric a task is judged by: accuracy, or r2."""
    return TASK_METRIC[task]


def higher_is_better(column: str) -> bool:
    """Is a larger value better for this metric or column (accuracy, val_accuracy, best_val_r2, ...)?"""
    return any(column == m or column.endswith(f"_{m}") for m in HIGHER_IS_BETTER)


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


def score(model, X: np.ndarray, Y: np.ndarray, y: np.ndarray, task: str, target=None) -> dict[str, float]:
    """Inference-mode loss and metrics of `model` on features X, encoded targets Y, raw targets y.

    With a `target` scaler (regression), the loss is in the scaled units the model learns and r2 and
    mae are in the original units of y."""
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
        if target is not None:
            P, T = target.unscale(P), y.reshape(len(y), -1).astype(np.float64)
        out["r2"] = r2_score(T, P)
        out["mae"] = float(np.mean(np.abs(P - T)))
    return out


# ------------------------------------------------------------------------------------ nnctl eval
def classification_report(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str],
                          scores: np.ndarray | None = None) -> dict:
    """Accuracy, balanced accuracy, macro-F1, per-class precision/recall/F1/support and the confusion
    matrix; for a binary task with `scores` (the probability of the second class), ROC-AUC and
    average precision (None when the rows hold one class only)."""
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
    out = {
        "accuracy": float(tp.sum() / max(len(y_true), 1)),
        # mean recall over the classes present in y_true, as sklearn's balanced_accuracy_score
        "balanced_accuracy": float(recall[actual > 0].mean()) if len(y_true) else None,
        # macro over the classes that occur in y_true or y_pred, as sklearn's f1_score(average="macro")
        "macro_f1": float(f1[present | (predicted > 0)].mean()) if len(y_true) else float("nan"),
        "per_class": per_class,
        "confusion_matrix": {"labels": classes, "matrix": cm.tolist()},
    }
    if k == 2 and scores is not None:
        out["roc_auc"] = roc_auc(y_true == 1, scores)
        out["average_precision"] = average_precision(y_true == 1, scores)
    return out


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve: the chance that a random positive row scores above a random
    negative one, ties counting half (Mann-Whitney U with average ranks; equals sklearn's
    roc_auc_score). None if the rows hold one class only."""
    import numpy as np

    n_pos = int(np.count_nonzero(positive))
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    s = np.asarray(scores, dtype=np.float64)[order]
    ranks = np.empty(len(s))
    starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1]  # runs of equal scores share their average rank
    ends = np.r_[starts[1:], len(s)]
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """sum over score thresholds of (recall step) x precision, as sklearn's average_precision_score.
    None without a positive row."""
    import numpy as np

    if not np.any(positive):
        return None
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    s, t = np.asarray(scores)[order], np.asarray(positive)[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last row of each run of equal scores
    tps = np.cumsum(t)[last].astype(np.float64)
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def regression_report(T: np.ndarray, P: np.ndarray) -> dict:
    """mse, rmse, mae and r2 (averaged over target columns)."""
    import numpy as np

    T = T.reshape(len(T), -1).astype(np.float64)
    P = P.reshape(len(P), -1).astype(np.float64)
    mse = float(np.mean((T - P) ** 2))
    return {"mse": mse, "rmse": math.sqrt(mse), "mae": float(np.mean(np.abs(T - P))), "r2": r2_score(T, P)}
