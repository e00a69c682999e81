"""Checkpoints: a trainer's whole state <-> checkpoint/checkpoint.npz, one file written whole.

`capture` gathers every component's state_dict into JSON metadata and named arrays; `restore`
hands them back. A checkpoint taken between two steps of an epoch also holds the batch position,
the epoch's running sums and the probe's epoch-start weights, so resuming it is bit-identical to
never stopping. The metadata records the sha256 of the resolved config, so a checkpoint is never
applied to a different experiment.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from nnctl.config.load import resolved_yaml
from nnctl.config.spec import Spec
from nnctl.errors import RunDirError
from nnctl.files import read_npz, write_npz
from nnctl.runs import RunDir

CHECKPOINT_DIR, CHECKPOINT_FILE, CHECKPOINT_FORMAT = "checkpoint", "checkpoint.npz", 2
RESUMED_STREAMS = ("shuffle", "dropout")  # split, init and probe are drawn once, before training


def config_digest(spec: Spec) -> str:
    """sha256 of the resolved config."""
    return hashlib.sha256(resolved_yaml(spec).encode()).hexdigest()


def capture(trainer, row_cache: list | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """(JSON-able metadata, arrays) of everything needed to continue exactly from here.

    `row_cache` (a list kept by the caller between checkpoints) holds the metrics rows already
    converted to floats, so each checkpoint converts only the new rows."""
    arrays: dict[str, np.ndarray] = {}

    def put(prefix: str, part: dict[str, np.ndarray]) -> None:
        arrays.update({f"{prefix}/{k}": v for k, v in part.items()})

    put("model", trainer.model.state_arrays())
    opt = trainer.optimizer.state_dict()
    put("optimizer", {k: v for k, v in opt.items() if k != "t"})
    stop_meta, stop_arrays = trainer.stopper.state_dict()
    put("best", stop_arrays)
    meta = {
        "epoch": trainer.epoch, "optimizer_t": opt["t"], "schedule": trainer.schedule.state_dict(),
        "rng": {name: trainer.rngs[name].bit_generator.state for name in RESUMED_STREAMS},
        "early_stopping": stop_meta, "train_seconds": trainer.train_seconds,
    }
    if trainer.probe is not None:
        probe_meta, probe_arrays = trainer.probe.state_dict()
        put("probe", probe_arrays)
        meta["probe"], meta["findings"] = probe_meta, trainer.findings.state_dict()
    if trainer.epoch_start_state is not None:
        put("epoch_start", trainer.epoch_start_state)
    if trainer.batches.mid_epoch:  # stopped inside an epoch: where, and the epoch's running sums
        batch_meta, batch_arrays = trainer.batches.state_dict()
        meter_meta, meter_arrays = trainer.meter.state_dict()
        put("batches", batch_arrays)
        put("meter", meter_arrays)
        if trainer.probe is not None:
            arrays["probe_start"] = trainer.probe.start
        meta["mid_epoch"] = {"batches": batch_meta, "meter": meter_meta, "seconds": trainer.epoch_seconds}
    # the metrics rows as one float matrix (binary, NaN-exact), columns named in the metadata
    rows = trainer.rows
    columns = list(rows[0]) if rows else []
    cache = row_cache if row_cache is not None else []
    del cache[len(rows):]  # (a cache longer than the rows belongs to another trainer)
    cache.extend([r.get(c, np.nan) for c in columns] for r in rows[len(cache):])
    meta["row_columns"] = columns
    arrays["rows"] = np.array(cache, dtype=np.float64).reshape(len(rows), len(columns))
    return meta, arrays


def restore(trainer, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Put `capture`'s output back into a freshly built trainer (ValueError/KeyError on any mismatch)."""
    def part(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix) + 1:]: v for k, v in arrays.items() if k.startswith(prefix + "/")}

    trainer.model.load_state_arrays(part("model"))
    trainer.optimizer.load_state_dict({"t": meta["optimizer_t"], **part("optimizer")})
    trainer.schedule.load_state_dict(meta["schedule"])
    for name in RESUMED_STREAMS:
        trainer.rngs[name].bit_generator.state = meta["rng"][name]
    trainer.epoch = int(meta["epoch"])
    columns = meta["row_columns"]
    trainer.rows = [{c: (int(v) if c == "epoch" else float(v)) for c, v in zip(columns, r)} for r in arrays["rows"]]
    if len(trainer.rows) != trainer.epoch:
        raise ValueError(f"checkpoint holds {len(trainer.rows)} metrics rows for {trainer.epoch} epochs")
    trainer.stopper.load_state_dict(meta["early_stopping"], part("best"))
    if trainer.probe is not None and "probe" in meta:
        trainer.probe.load_state_dict(meta["probe"], part("probe"))
        trainer.findings.load_state_dict(meta["findings"])
    trainer.train_seconds = float(meta["train_seconds"])
    trainer.epoch_start_state = part("epoch_start") or None
    mid = meta.get("mid_epoch")
    if mid is not None:
        trainer.batches.load_state_dict(mid["batches"], part("batches"))
        trainer.meter.load_state_dict(mid["meter"], part("meter"))
        trainer.epoch_seconds = float(mid["seconds"])
        if trainer.probe is not None and "probe_start" in arrays:
            trainer.probe.start = arrays["probe_start"].copy()


class CheckpointWriter:
    """Writes a run's checkpoint/checkpoint.npz whole; keeps the converted metrics rows between writes."""

    def __init__(self, run: RunDir, config_sha256: str):
        self.run, self.config_sha256 = run, config_sha256
        self._rows: list = []

    def write(self, trainer) -> None:
        meta, arrays = capture(trainer, self._rows)
        meta = {"format": CHECKPOINT_FORMAT, "config_sha256": self.config_sha256, **meta}
        arrays["meta"] = np.array(json.dumps(meta))  # NaN kept as NaN: the rows must come back exactly
        folder = self.run.file(CHECKPOINT_DIR)
        folder.mkdir(exist_ok=True)
        write_npz(folder / CHECKPOINT_FILE, arrays)


def read_checkpoint(run: RunDir) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of a run's checkpoint; RunDirError if missing, damaged or of another format."""
    arrays = read_npz(run.file(CHECKPOINT_DIR) / CHECKPOINT_FILE, "checkpoint")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, ValueError):
        raise RunDirError(f"{run.path}: the checkpoint has no readable metadata") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise RunDirError(f"{run.path}: checkpoint format {found!r} is not {CHECKPOINT_FORMAT} (written by another "
                          f"version of nnctl); train the config again as a new run")
    return meta, arrays
