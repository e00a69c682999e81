"""From a spec to the objects that train: data prepared, model, optimizer, schedule, batch size.

This is the one place those decisions are made; training, `gradcheck`, `lr-find` and `eval` all
build through it. One seed drives five independent random streams (SeedSequence.spawn): the split,
the weight init, the per-epoch shuffle, the dropout masks and the diagnostics probe, so changing
dropout never changes the split or the initial weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl.config.load import resolve_data
from nnctl.config.spec import Spec
from nnctl.data.preprocess import Preprocessor, TargetScaler, fit_preprocessor
from nnctl.data.sources import Dataset, load_dataset
from nnctl.data.split import split_indices
from nnctl.errors import DataError, RunDirError
from nnctl.files import local_path, read_npz
from nnctl.nn.losses import loss_for
from nnctl.nn.model import MLP, LayerDef
from nnctl.nn.optimizers import OPTIMIZERS, Optimizer
from nnctl.nn.schedules import SCHEDULES, Schedule

STREAMS = ("split", "init", "shuffle", "dropout", "probe")  # append only: earlier streams stay the same


def random_streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators for split, init, shuffle, dropout and the probe, all from one seed."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(ss) for name, ss in zip(STREAMS, children)}


def build_model(spec: Spec, n_inputs: int, n_outputs: int, class_weight: np.ndarray | None = None) -> MLP:
    """The MLP a resolved spec describes (weights not yet initialised); `class_weight` (k,) weights
    the loss per class (train.class_weight, resolved by `class_weights`)."""
    m = spec.model
    output = LayerDef(units=n_outputs, init=m.init, init_std=m.init_std, bias_init=m.bias_init)
    # a classifier has one unit per class, except a binary one (one sigmoid unit)
    loss = loss_for(spec.train.loss, spec.data.task, n_outputs if n_outputs > 1 else 2)
    if class_weight is not None:
        loss.class_weight = np.asarray(class_weight, dtype=np.dtype(spec.train.dtype))
    return MLP(n_inputs, list(m.layers), output, loss, dtype=np.dtype(spec.train.dtype))


def check_model_size(spec: Spec, n_inputs: int, n_outputs: int, n_rows: int) -> None:
    """ConfigError at model.hidden, before anything is allocated, if training this network would
    need more memory than the machine has available (parameters, gradients and optimizer state,
    and a batch's activations through every layer)."""
    from nnctl.config.fields import Origins

    itemsize = np.dtype(spec.train.dtype).itemsize
    fan_in, params, activations = n_inputs, 0, 0
    for layer in spec.model.layers:
        width = layer.width  # units, or units * pieces for maxout
        params += fan_in * width + width
        activations += 4 * width  # Z, A, dZ, dA
        fan_in = layer.units
    params += fan_in * n_outputs + n_outputs
    rows = spec.train.rows_per_step(n_rows)
    need = itemsize * (5 * params + rows * (activations + 4 * n_outputs))
    available = _available_memory()
    if available is not None and need > available:
        origins = spec.origins or Origins(spec.source)
        raise origins.error(("model", "hidden"), f"makes a network of {params:,} parameters that needs about "
                            f"{need / 2**30:.1f} GB to train, more than the {available / 2**30:.1f} GB available; "
                            f"use fewer or smaller layers (or a smaller batch)")


SNAPSHOTS_LIMIT = 256 << 20  # bytes: the most train.snapshot_every may keep (in memory and in snapshots.npz)


def check_snapshot_size(spec: Spec, model: MLP) -> None:
    """ConfigError at train.snapshot_every if the snapshots would exceed SNAPSHOTS_LIMIT."""
    from nnctl.config.fields import Origins
    from nnctl.snapshots import count

    every, epochs = spec.train.snapshot_every, spec.train.epochs
    if every is None:
        return
    per = sum(int(np.prod(s)) for s in model.expected_shapes().values()) * model.dtype.itemsize
    if count(epochs, every) * per <= SNAPSHOTS_LIMIT:
        return
    most = SNAPSHOTS_LIMIT // per  # snapshots that fit; epoch 0 and the last are two of them
    smallest = -(-epochs // (most - 1)) if most >= 2 else None  # ceil(epochs / (most - 1))
    fix = f"use snapshot_every: {smallest} or more" if smallest else "the model alone is too large to snapshot"
    origins = spec.origins or Origins(spec.source)
    raise origins.error(("train", "snapshot_every"), f"{every} keeps {count(epochs, every):,} snapshots of "
                        f"{per / 2**20:.3g} MB over {epochs:,} epochs, {count(epochs, every) * per / 2**20:,.0f} MB "
                        f"in all, more than the {SNAPSHOTS_LIMIT >> 20} MB limit; {fix}")


def _available_memory() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes (None where there is no such file)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def class_weights(spec: Spec, ds: Dataset, train: np.ndarray) -> np.ndarray | None:
    """train.class_weight as one weight per class (None: unweighted). balanced = n / (k n_c) on the
    training rows, as scikit-learn's compute_class_weight; a mapping names classes (others get 1)."""
    cw = spec.train.class_weight
    if cw == "none":
        return None
    from nnctl.config.fields import Origins

    origins = spec.origins or Origins(spec.source)
    if ds.task != "classification":
        raise origins.error(("train", "class_weight"), "applies to classification; this is a regression task")
    if cw == "balanced":
        counts = np.bincount(ds.y[train], minlength=ds.n_classes).astype(np.float64)
        return len(train) / (ds.n_classes * np.maximum(counts, 1))
    unknown = [k for k in cw if k not in ds.class_names]
    if unknown:
        raise origins.error(("train", "class_weight"), f"names {unknown[0]!r}, not a class; the classes are "
                            f"{', '.join(ds.class_names)}")
    return np.array([float(cw.get(c, 1.0)) for c in ds.class_names])


def build_optimizer(spec: Spec, theta: np.ndarray) -> Optimizer:
    """The optimizer, with state vectors allocated for the flat parameter vector `theta`."""
    o = spec.optimizer
    return OPTIMIZERS.get(o.name, dict(o.options)).bind(theta, o.weight_decay)


def build_schedule(spec: Spec) -> Schedule:
    """The learning-rate schedule over the spec's epochs."""
    s = spec.optimizer.schedule
    return SCHEDULES.get(s.name, dict(s.options)).setup(spec.optimizer.lr, spec.train.epochs, s.warmup_epochs)


def batch_size(spec: Spec, n_train: int) -> int:
    """Rows per gradient step (train.gd, train.batch_size)."""
    return int(spec.train.rows_per_step(n_train))


@dataclass
class Prepared:
    """Everything training needs, loaded and checked, before any file is written."""

    spec: Spec  # resolved for the data: task and loss are known
    dataset: Dataset
    split: dict[str, np.ndarray]  # train / val / test row indices
    pre: Preprocessor
    model: MLP
    X: dict[str, np.ndarray]  # per split, preprocessed, model dtype
    Y: dict[str, np.ndarray]  # per split, encoded targets for the loss
    y: dict[str, np.ndarray]  # per split, class indices or target values
    rngs: dict[str, np.random.Generator]
    target: TargetScaler | None = None  # regression targets standardized on the training rows
    class_weight: np.ndarray | None = None  # one loss weight per class (train.class_weight)


def prepare(spec: Spec, rows=None, min_class_rows: int = 2) -> Prepared:
    """Load data, resolve the spec for it, split, fit preprocessing on train, build and initialise the model.
    `rows`: an Arrow table held in memory, in place of the data file (the Python API). `min_class_rows`:
    the fewest training rows a class may have (the scikit-learn estimators accept 1, as scikit-learn does)."""
    dtype = np.dtype(spec.train.dtype)
    spec, ds, split, rngs = load_and_split(spec, rows, min_class_rows)
    train = split["train"]
    pre = fit_preprocessor(spec.data.preprocess, ds.X, spec.data.pca_components, rows=train)
    loss = loss_for(spec.train.loss, ds.task, ds.n_classes)
    check_model_size(spec, pre.n_outputs, loss.n_outputs(ds.n_classes, ds.n_targets), len(train))
    weights = class_weights(spec, ds, train)
    model = build_model(spec, pre.n_outputs, loss.n_outputs(ds.n_classes, ds.n_targets), weights)
    check_snapshot_size(spec, model)
    loss = model.loss
    model.initialize(rngs["init"])
    if spec.model.init_from:
        load_weights_into(model, local_path(spec.model.init_from), "model.init_from")  # (a Dask worker's copy)
    target = None
    if ds.task == "regression" and spec.data.target_scale == "auto":
        target = TargetScaler.fit(ds.y[train])
    X, Y, y = {}, {}, {}
    for part in ("val", "test", "train"):  # train last: it may be written over the raw features' memory
        idx = split[part]
        X[part] = pre.transform_rows(ds.X, idx, dtype, consume=part == "train")
        y[part] = ds.y[idx]  # original units: metrics are computed in them
        Y[part] = loss.encode(target.apply(y[part]) if target else y[part], ds.n_classes, dtype)
    X, Y, y = ({part: d[part] for part in ("train", "val", "test")} for d in (X, Y, y))
    ds.n_features = ds.X.shape[1]
    ds.X = None  # the raw features are not needed once split and transformed: free them for training
    ds.fingerprint = str(ds.fingerprint)  # a data file's sha256, hashed on a thread meanwhile: waited for here
    return Prepared(spec, ds, split, pre, model, X, Y, y, rngs, target, weights)


def load_and_split(spec: Spec, rows=None, min_class_rows: int = 2):
    """The data loaded, the spec resolved for it, the split drawn and checked, the features encoded
    (encoders fitted on the training rows): (spec, dataset, split, random streams). The part of
    `prepare` that can refuse the data; `nnctl init` runs it on the config it writes."""
    dtype = np.dtype(spec.train.dtype)
    ds = load_dataset(spec.data, dtype, rows)
    spec = resolve_data(spec, ds.task, ds.n_classes)
    rngs = random_streams(spec.seed)
    s = spec.data.split
    stratify_y = ds.y if ds.task == "classification" and s.stratify else None
    train, val, test = split_indices(len(ds.y), stratify_y, s.val, s.test, s.stratify, rngs["split"],
                                     spec.data.source)
    split = {"train": train, "val": val, "test": test}
    check_split(ds, split, s, min_class_rows)
    ds.encode(spec.data, train, dtype)
    return spec, ds, split, rngs


def check_split(ds, split: dict, s, min_class_rows: int = 2) -> None:
    """DataError for a class with < 2 training rows, or a val or test part that is asked for but
    empty. Classes first: a stratified split of classes that small is what leaves a part empty."""
    if ds.task == "classification":
        counts = np.bincount(ds.y[split["train"]], minlength=ds.n_classes)
        small = [(ds.class_names[k], int(c)) for k, c in enumerate(counts) if c < min_class_rows]
        if small:
            listed = ", ".join(f"{name!r} ({c})" for name, c in small[:5])
            more = f" and {len(small) - 5} more ({len(small)} of {ds.n_classes} classes)" if len(small) > 5 else ""
            raise DataError(f"{ds.source}: class{'es' * (len(small) > 1)} with fewer than 2 training rows: "
                            f"{listed}{more}; each class needs at least 2. Add rows, merge rare classes, or drop "
                            f"them")
    for part, share in (("val", s.val), ("test", s.test)):
        n = len(split[part])
        if share > 0 and (n == 0 or (ds.task == "regression" and n < 2)):
            raise DataError(f"{ds.source}: data.split.{part} is {share}, but the {part} part gets {n} row"
                            f"{'s' * (n != 1)} of {len(ds.y)}{' (r2 needs 2)' if n == 1 else ''}; use more rows, "
                            f"a larger share, or 0 to have no {part} part")


def load_weights_into(model: MLP, path: Path, what: str) -> None:
    """Load a weights.npz into `model`; RunDirError naming the file and key on any mismatch."""
    arrays = read_npz(path, "weights file", follow=True)  # a path the user named: a link is fine
    try:  # every array must match: parameters and norm statistics alike
        model.load_state_arrays(arrays)
    except ValueError as exc:
        raise RunDirError(f"{path} ({what}): {exc}") from None
