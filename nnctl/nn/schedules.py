"""Learning-rate schedules, stepped once per epoch, with torch.optim.lr_scheduler's formulas.

`lr(epoch)` is the rate used during epoch `epoch` (0-based). An optional linear warmup of w epochs
uses base * (e + 1) / w for e < w (torch's LinearLR with start_factor 1/w over w - 1 steps,
chained with SequentialLR); the main schedule then starts its own count at epoch w, and cosine
anneals over the remaining epochs - w.
"""

from __future__ import annotations

import math

from nnctl.registry import Registry, require

SCHEDULES = Registry("schedule")


class Schedule:
    """Base: a closed-form schedule; `observe` is for schedules that react to metrics."""

    needs_metric = False

    def setup(self, base_lr: float, epochs: int, warmup_epochs: int = 0) -> Schedule:
        self.base_lr, self.epochs, self.warmup = base_lr, epochs, warmup_epochs
        return self

    def lr(self, epoch: int) -> float:
        """Learning rate for epoch `epoch` (0-based)."""
        if epoch < self.warmup:
            return self.base_lr * (epoch + 1) / self.warmup
        return self.main_lr(epoch - self.warmup)

    def main_lr(self, e: int) -> float:
        raise NotImplementedError

    def observe(self, epoch: int, value: float) -> None:
        """Called after each epoch with the monitored value (plateau uses it)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


@SCHEDULES.register("constant")
class Constant(Schedule):
    """lr = base."""

    def main_lr(self, e):
        return self.base_lr


@SCHEDULES.register("step")
class Step(Schedule):
    """lr = base * gamma ** floor(e / step_size) (torch StepLR)."""

    def __init__(self, step_size: int = 10, gamma: float = 0.1):
        require(step_size >= 1, f"step_size must be an integer >= 1; got {step_size}")
        require(gamma > 0, f"gamma must be > 0; got {gamma}")
        self.step_size, self.gamma = step_size, gamma

    def main_lr(self, e):
        return self.base_lr * self.gamma ** (e // self.step_size)


@SCHEDULES.register("exponential")
class Exponential(Schedule):
    """lr = base * gamma ** e (torch ExponentialLR)."""

    def __init__(self, gamma: float = 0.95):
        require(gamma > 0, f"gamma must be > 0; got {gamma}")
        self.gamma = gamma

    def main_lr(self, e):
        return self.base_lr * self.gamma**e


@SCHEDULES.register("cosine")
class Cosine(Schedule):
    """lr = min_lr + (base - min_lr) (1 + cos(pi e / T)) / 2, T = epochs - warmup (torch CosineAnnealingLR)."""

    def __init__(self, min_lr: float = 0.0):
        require(min_lr >= 0, f"min_lr must be >= 0; got {min_lr}")
        self.min_lr = min_lr

    def main_lr(self, e):
        T = max(self.epochs - self.warmup, 1)
        return self.min_lr + (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * e / T)) / 2


@SCHEDULES.register("plateau")
class Plateau(Schedule):
    """Multiply lr by `factor` when val_loss has not improved for `patience` epochs (torch
    ReduceLROnPlateau, mode min, threshold_mode rel)."""

    needs_metric = True

    def __init__(self, factor: float = 0.1, patience: int = 10, threshold: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0, eps: float = 1e-8):
        require(0.0 < factor < 1.0, f"factor must be in (0, 1); got {factor}")
        require(patience >= 0 and cooldown >= 0, "patience and cooldown must be integers >= 0")
        require(threshold >= 0 and min_lr >= 0 and eps >= 0, "threshold, min_lr and eps must be >= 0")
        self.factor, self.patience, self.threshold = factor, patience, threshold
        self.cooldown, self.min_lr, self.eps = cooldown, min_lr, eps

    def setup(self, base_lr, epochs, warmup_epochs=0):
        super().setup(base_lr, epochs, warmup_epochs)
        self.current = base_lr
        self.best = math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        return self

    def main_lr(self, e):
        return self.current

    def observe(self, epoch, value):
        if epoch < self.warmup:
            return
        if value < self.best * (1.0 - self.threshold):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            new = max(self.current * self.factor, self.min_lr)
            if self.current - new > self.eps:
                self.current = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

    def state_dict(self):
        return {"current": self.current, "best": self.best, "num_bad_epochs": self.num_bad_epochs,
                "cooldown_counter": self.cooldown_counter}

    def load_state_dict(self, state):
        self.current, self.best = float(state["current"]), float(state["best"])
        self.num_bad_epochs, self.cooldown_counter = int(state["num_bad_epochs"]), int(state["cooldown_counter"])
