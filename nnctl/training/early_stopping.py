"""The best epoch so far, and early stopping when the monitored metric stops improving."""

from __future__ import annotations

import math

import numpy as np

from nnctl.config.spec import EarlyStoppingSpec


class EarlyStopping:
    """Tracks the best epoch by the monitored metric (val_loss by default, train_loss without
    validation rows); with `train.early_stopping` set, also counts epochs without improvement and
    keeps the best weights when `restore_best` asks for them."""

    def __init__(self, spec: EarlyStoppingSpec | None, has_val: bool):
        if spec is not None and spec.mode not in ("min", "max"):
            raise ValueError(f"early_stopping.mode {spec.mode!r} is not resolved (load.resolve_data settles auto)")
        self.patience = spec.patience if spec else None
        self.monitor = spec.monitor if spec else ("val_loss" if has_val else "train_loss")
        self.sign = -1.0 if (spec and spec.mode == "max") else 1.0  # compare sign * value: smaller is better
        self.min_delta = spec.min_delta if spec else 0.0
        self.restore_best = bool(spec and spec.restore_best)
        self.best: dict | None = None  # the best epoch's metrics row
        self.best_value = math.inf
        self.waited = 0  # epochs since the best
        self.best_state: dict[str, np.ndarray] | None = None  # its weights (restore_best)

    def update(self, row: dict, model) -> None:
        """After an epoch: is its row the best so far?"""
        value = row.get(self.monitor, math.nan)
        if math.isfinite(value) and self.sign * value < self.best_value - self.min_delta:
            self.best_value, self.best, self.waited = self.sign * value, dict(row), 0
            if self.restore_best:
                self.best_state = model.state_arrays()
        else:
            self.waited += 1

    @property
    def criterion(self) -> dict:
        """What "best" means for this run, as summary.json's `best_by` says it: {"metric", "mode"}."""
        return {"metric": self.monitor, "mode": "max" if self.sign < 0 else "min"}

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.waited >= self.patience

    def message(self, epoch: int) -> str:
        """Why training stopped at `epoch`."""
        return (f"stopped at epoch {epoch}: {self.monitor} did not improve by more than {self.min_delta:g} for "
                f"{self.patience} epochs; best {self.monitor} {self.best[self.monitor]:.4g} at epoch "
                f"{self.best['epoch']}" + (" (weights restored from it)" if self.restore_best else ""))

    def state_dict(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"best": self.best, "best_value": self.best_value, "waited": self.waited}
        return meta, dict(self.best_state or {})

    def load_state_dict(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        self.best, self.best_value, self.waited = meta["best"], float(meta["best_value"]), int(meta["waited"])
        self.best_state = arrays or None
