"""train.snapshot_every: the model's state arrays at epoch 0, every N epochs and the last epoch.

The trainer keeps them in memory (`Snapshots.take` after an epoch); the session writes them to
snapshots.npz (keys `e{epoch}/W1`, ...) whole, before every checkpoint and at the end, so the file
on disk always holds every snapshot up to the checkpoint's epoch. A resume reads it back and keeps
only the snapshots an uninterrupted run would have at that epoch, so the final file is identical.
"""

from __future__ import annotations

import re

import numpy as np

from nnctl.errors import RunDirError
from nnctl.files import read_npz

SNAPSHOTS_FILE = "snapshots.npz"
SNAPSHOT_KEY = re.compile(r"e(\d{1,9})/(\w{1,40})")


class Snapshots:
    """Epoch -> state arrays (a copy of `model.state_arrays()`); a no-op when `every` is None."""

    def __init__(self, every: int | None):
        self.every = every
        self.taken: dict[int, dict[str, np.ndarray]] = {}
        self.dirty = False  # taken since the file was last written

    def due(self, epoch: int, final: bool = False) -> bool:
        return self.every is not None and epoch not in self.taken and (epoch % self.every == 0 or final)

    def take(self, epoch: int, model, final: bool = False) -> None:
        if self.due(epoch, final):
            self.taken[epoch] = model.state_arrays()
            self.dirty = True

    def arrays(self) -> dict[str, np.ndarray]:
        return {f"e{e}/{k}": v for e in sorted(self.taken) for k, v in self.taken[e].items()}

    def keep_until(self, epoch: int) -> None:
        """Resuming at `epoch`: drop what an uninterrupted run would not hold yet (later epochs, and the
        final snapshot of a finished run that is being extended)."""
        kept = {e: s for e, s in self.taken.items() if e <= epoch and e % self.every == 0}
        self.dirty = self.dirty or kept.keys() != self.taken.keys()
        self.taken = kept

    def resume(self, path, expected: dict[str, tuple[int, ...]], epoch: int) -> None:
        """Read back the snapshots a checkpoint at `epoch` follows (the session writes them first);
        RunDirError if the file is missing, damaged, or lacks one of them."""
        if self.every is None:
            return
        if not path.exists() and not path.is_symlink():
            raise RunDirError(f"{path}: missing, but train.snapshot_every is {self.every} and the checkpoint is at "
                              f"epoch {epoch}; the earlier snapshots cannot be rebuilt: train the config again")
        self.taken = read_snapshots(path, expected)
        self.keep_until(epoch)
        lacking = [e for e in range(0, epoch + 1, self.every) if e not in self.taken]
        if lacking:
            raise RunDirError(f"{path}: has no snapshot of epoch {lacking[0]} (train.snapshot_every: {self.every}, "
                              f"checkpoint at epoch {epoch}); train the config again")


def count(epochs: int, every: int) -> int:
    """How many snapshots a run of `epochs` epochs keeps: epoch 0, the multiples of `every`, the last."""
    return 1 + epochs // every + (1 if epochs % every else 0)


def read_snapshots(path, expected: dict[str, tuple[int, ...]]) -> dict[int, dict[str, np.ndarray]]:
    """snapshots.npz as epoch -> state arrays, each snapshot checked against the model's keys and
    shapes (a run directory is data). RunDirError naming the file and the key otherwise."""
    arrays = read_npz(path, "snapshots file")
    out: dict[int, dict[str, np.ndarray]] = {}
    for key, value in arrays.items():
        m = SNAPSHOT_KEY.fullmatch(key)
        if m is None:
            raise RunDirError(f"{path}: unexpected key {key[:60]!r} (expected e{{epoch}}/W1, ...)")
        name = m.group(2)
        if name not in expected:
            raise RunDirError(f"{path}: key {key!r}: the model has no array {name!r} (it has {', '.join(expected)})")
        if value.shape != tuple(expected[name]) or value.dtype.kind != "f":
            raise RunDirError(f"{path}: key {key!r} is a {value.shape} array of {value.dtype}; the model's {name} "
                              f"is a {tuple(expected[name])} float array")
        out.setdefault(int(m.group(1)), {})[name] = value
    for epoch, snap in out.items():
        missing = [k for k in expected if k not in snap]
        if missing:
            raise RunDirError(f"{path}: snapshot of epoch {epoch} is missing key 'e{epoch}/{missing[0]}'")
    if not out:
        raise RunDirError(f"{path}: holds no snapshots")
    return dict(sorted(out.items()))
