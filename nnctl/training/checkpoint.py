"""Checkpoints: a trainer's whole state <-> checkpoint/checkpoint.npz, one file written whole.

`capture` gathers every component's state_dict into JSON metadata and named arrays, under the
names of the file format (unchanged since format 1: a run interrupted by an earlier nnctl 0.1.0
resumes); `restore` hands them back. A checkpoint taken between two steps of an epoch also holds the batch position,
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

CHECKPOINT_DIR, CHECKPOINT_FILE, CHECKPOINT_FORMAT = "checkpoint", "checkpoint.npz", 1
RESUMED_STREAMS = ("shuffle", "dropout")  # split, init and probe are drawn once, before training


# config keys added after checkpoints of this format were first written, with their defaults, in the
# order they were added: a checkpoint written before a key existed hashed the config without it (and
# without every key added after it)
ADDED_KEYS = {("train", "snapshot_every"): None, ("train", "log_steps"): False, ("train", "log"): "none"}


def config_digest(spec: Spec) -> str:
    """sha256 of the resolved config."""
    return hashlib.sha256(resolved_yaml(spec).encode()).hexdigest()


def config_digests(spec: Spec) -> set[str]:
    """The digests a checkpoint of this config may carry: today's, and the ones earlier versions of
    nnctl wrote (each without the keys of ADDED_KEYS added after it), where those keys are at their
    defaults: a run interrupted by an earlier version resumes."""
    from nnctl.config.load import HEADER
    from nnctl.config.yamlio import dump_yaml

    digests = {config_digest(spec)}
    config = spec.to_config()
    for (section, key), default in reversed(ADDED_KEYS.items()):  # newest first: each older version in turn
        if config.get(section, {}).get(key, default) != default:
            break
        config.get(section, {}).pop(key, None)
        digests.add(hashlib.sha256((HEADER + dump_yaml(config)).encode()).hexdigest())
    return digests


def capture(trainer, row_cache: list | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """(JSON-able metadata, arrays) of everything needed to continue exactly from here.

    The names are the file format's (format 1), whatever the components call their state.
    `row_cache` (a list kept by the caller between checkpoints) holds the metrics rows already
    converted to floats, so each checkpoint converts only the new rows."""
    arrays: dict[str, np.ndarray] = {}

    def put(prefix: str, part: dict[str, np.ndarray]) -> None:
        arrays.update({f"{prefix}/{k}": v for k, v in part.items()})

    put("model", trainer.model.state_arrays())
    opt = trainer.optimizer.state_dict()
    put("optimizer", {k: v for k, v in opt.items() if k != "t"})
    stop_meta, stop_arrays = trainer.stopper.state_dict()  # best, best_value, waited; best/ weights
    put("best", stop_arrays)
    meta = {"epoch": trainer.epoch, "optimizer_t": opt["t"], "schedule": trainer.schedule.state_dict(),
            "rng": {name: trainer.rngs[name].bit_generator.state for name in RESUMED_STREAMS},
            **stop_meta, "train_seconds": trainer.train_seconds}
    if trainer.probe is not None:
        meta["findings"] = trainer.findings.state_dict()
        meta["initial_loss"], arrays["diagnostics"] = trainer.probe.state_dict()
    if trainer.epoch_start_state is not None:
        put("epoch_start", trainer.epoch_start_state)
    if trainer.batches.mid_epoch:  # stopped inside an epoch: where, and the epoch's running sums
        batch_meta, order = trainer.batches.state_dict()  # start, step
        meter_meta, sse = trainer.meter.state_dict()  # loss_sum, rows_used, correct, abs_err
        meta["cursor"] = {**batch_meta, **meter_meta, "elapsed": trainer.epoch_seconds}
        start = trainer.probe.start if trainer.probe is not None else None
        put("cursor", {k: v for k, v in (("order", order), ("sse", sse), ("probe_start", start)) if v is not None})
    # the metrics rows as one float matrix (binary, NaN-exact), columns named in the metadata
    rows = trainer.rows
    columns = list(rows[0]) if rows else []
    cache = row_cache if row_cache is not None else []
    del cache[len(rows):]  # (a cache longer than the rows belongs to another trainer)
    cache.extend([r.get(c, np.nan) for c in columns] for r in rows[len(cache):])
    meta["row_columns"] = columns
    if trainer.step_log is not None:  # train.log_steps: every step's row so far, mid-epoch ones included
        arrays["steps"] = trainer.step_log.state_array()
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
    if arrays["rows"].ndim != 2 or arrays["rows"].shape[1] != len(columns) or arrays["rows"].dtype.kind != "f":
        raise ValueError(f"the metrics rows are a {arrays['rows'].shape} array of {arrays['rows'].dtype}, not "
                         f"{len(columns)} float columns")
    trainer.rows = [{c: (int(v) if c == "epoch" else float(v)) for c, v in zip(columns, r)} for r in arrays["rows"]]
    if len(trainer.rows) != trainer.epoch:
        raise ValueError(f"checkpoint holds {len(trainer.rows)} metrics rows for {trainer.epoch} epochs")
    best = part("best")
    if best:  # the best epoch's weights (restore_best): they must fit this model, as the live ones do
        expected = trainer.model.expected_shapes()
        if set(best) != set(expected) or any(best[k].shape != tuple(s) or best[k].dtype.kind != "f"
                                             or not np.isfinite(best[k]).all() for k, s in expected.items()):
            raise ValueError("the saved best weights do not fit this model")
    trainer.stopper.load_state_dict(meta, best)
    if trainer.probe is not None and "diagnostics" in arrays:
        trainer.probe.load_state_dict(meta.get("initial_loss", np.nan), arrays["diagnostics"])
        trainer.findings.load_state_dict(meta.get("findings", []))
        # what the detectors compare with: the untrained loss and the last measurement's rows
        trainer.findings.initial_loss = trainer.probe.initial_loss
        rows = trainer.probe.rows
        trainer.findings.previous = [r for r in rows if r["epoch"] == rows[-1]["epoch"]] if rows else []
    trainer.train_seconds = float(meta.get("train_seconds", 0.0))
    trainer.epoch_start_state = part("epoch_start") or None
    cursor = meta.get("cursor")
    if trainer.step_log is not None:
        trainer.step_log.load(arrays.get("steps", np.zeros((0, 4))), trainer.epoch, cursor is not None)
    if cursor is not None:
        saved = part("cursor")
        trainer.batches.load_state_dict(cursor, saved.get("order"))
        trainer.meter.load_state_dict(cursor, saved.get("sse"))
        trainer.epoch_seconds = float(cursor["elapsed"])
        if trainer.probe is not None and "probe_start" in saved:
            trainer.probe.start = saved["probe_start"].copy()


class CheckpointWriter:
    """Writes a run's checkpoint/checkpoint.npz whole; keeps the converted metrics rows between writes."""

    def __init__(self, run: RunDir, config_sha256: str):
        self.run, self.config_sha256 = run, config_sha256
        self.path = run.file(CHECKPOINT_DIR) / CHECKPOINT_FILE
        self.epoch: int | None = None  # of the checkpoint on disk, once this writer has written one
        self._rows: list = []

    def write(self, trainer) -> None:
        meta, arrays = capture(trainer, self._rows)
        meta = {"format": CHECKPOINT_FORMAT, "config_sha256": self.config_sha256, **meta}
        arrays["meta"] = np.array(json.dumps(meta))  # NaN kept as NaN: the rows must come back exactly
        self.path.parent.mkdir(exist_ok=True)
        write_npz(self.path, arrays)
        self.epoch = trainer.epoch


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
    problems = meta_problems(meta)
    if problems:
        where = run.file(CHECKPOINT_DIR) / CHECKPOINT_FILE
        raise RunDirError(f"{where}: damaged metadata ({'; '.join(problems)[:200]}); train the config again as a "
                          f"new run")
    return meta, arrays


def meta_problems(meta: dict) -> list[str]:
    """What is wrong with a checkpoint's metadata, checked before anything is restored from it (a run
    directory is data: a hand-edited checkpoint must give a message, not a traceback mid-training)."""
    def count(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    def number(v, none_ok: bool = True) -> bool:
        return (v is None and none_ok) or (isinstance(v, (int, float)) and not isinstance(v, bool))

    problems = [f"{k!r} is not a count" for k in ("epoch", "optimizer_t", "waited") if not count(meta.get(k))]
    if not isinstance(meta.get("config_sha256"), str):
        problems.append("'config_sha256' is not a digest")
    problems += [f"{k!r} is not an object" for k in ("schedule", "rng") if not isinstance(meta.get(k), dict)]
    rng = meta.get("rng")
    if isinstance(rng, dict) and not all(isinstance(rng.get(n), dict) for n in RESUMED_STREAMS):
        problems.append(f"'rng' does not hold the {' and '.join(RESUMED_STREAMS)} streams")
    columns = meta.get("row_columns")
    if not (isinstance(columns, list) and all(isinstance(c, str) for c in columns)
            and (not columns or {"epoch", "train_loss", "lr", "epoch_time_s"} <= set(columns))):  # [] before epoch 1
        problems.append("'row_columns' is not the list of metrics columns")
    best = meta.get("best")
    if not (best is None or (isinstance(best, dict) and all(number(v) for v in best.values()))):
        problems.append("'best' is not a metrics row")
    problems += [f"{k!r} is not a number" for k in ("best_value", "train_seconds", "initial_loss")
                 if k in meta and not number(meta[k])]
    if "findings" in meta and not (isinstance(meta["findings"], list)
                                   and all(isinstance(f, dict) for f in meta["findings"])):
        problems.append("'findings' is not a list of objects")
    cursor = meta.get("cursor")
    if cursor is not None:
        if not isinstance(cursor, dict):
            problems.append("'cursor' is not an object")
        else:
            problems += [f"'cursor.{k}' is not a count" for k in ("start", "step", "rows_used", "correct")
                         if not count(cursor.get(k))]
            problems += [f"'cursor.{k}' is not a number" for k in ("loss_sum", "abs_err", "elapsed")
                         if not number(cursor.get(k), none_ok=False)]
    return problems
