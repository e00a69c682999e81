"""The experiment spec as frozen, typed records; each config key is declared once, here.

A config key is an annotated attribute of a `Record` whose value is `key(check)` (fields.py): the
check gives its default, its help, its validation and its JSON Schema, and the annotation gives its
type in the loaded spec. Loading (load.py) validates and resolves plain dicts, then `build` freezes
them: mappings become read-only, lists become tuples, and nothing changes a spec afterwards (a
stage that resolves more, like the data-dependent task and loss, makes a new one with `replace`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping as MappingType
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from nnctl.config.datafields import ClassWeight, Column, ColumnList, Delimiter, NaValues, PcaComponents
from nnctl.config.fields import (
    MAX_UNITS,
    Bool,
    Choice,
    Field,
    FrozenDict,
    IntList,
    ListOf,
    Mapping,
    Num,
    Origins,
    ScheduleField,
    Section,
    Text,
    Toggle,
    config_fields,
)
from nnctl.metrics import TASK_METRIC, metric_names

if TYPE_CHECKING:
    from nnctl.nn.model import LayerDef


try:
    from typing import Self, dataclass_transform
except ImportError:  # Python 3.10: type checkers then see plain classes
    Self = Any

    def dataclass_transform(**kwargs):
        return lambda f: f


class _Key:
    __slots__ = ("check",)

    def __init__(self, check: Field):
        self.check = check


def key(check: Field) -> Any:
    """A config key of a spec record: `check` is the one description of it."""
    return _Key(check)


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(key,))
class Record:
    """Base of the spec sections: frozen records, as @dataclass(frozen=True, kw_only=True) would make
    them (a keyword constructor, read-only attributes, equality by value, a repr and `replace`), but
    without generating code at import: nine frozen dataclasses cost 4 ms of every nnctl start-up.

    A subclass's config keys are the attributes declared with `key(...)`; its other annotated
    attributes (where a spec came from) are carried along, default None, and not compared."""

    __config_fields__: dict[str, Field] = {}
    __record_extras__: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.__config_fields__ = {n: v.check for n, v in vars(cls).items() if isinstance(v, _Key)}
        cls.__record_extras__ = {n: vars(cls).get(n) for n in cls.__annotations__ if n not in cls.__config_fields__}
        for name in cls.__config_fields__:
            delattr(cls, name)

    def __init__(self, **values):
        names, extras = self.__config_fields__, self.__record_extras__
        if set(values) - set(names) - set(extras) or set(names) - set(values):
            raise TypeError(f"{type(self).__name__} takes the keys {', '.join(names)}; got {', '.join(values)}")
        for name, default in extras.items():
            object.__setattr__(self, name, values.get(name, default))
        for name in names:
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}: a loaded spec is frozen")

    def __delattr__(self, name: str) -> None:
        self.__setattr__(name, None)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__config_fields__)

    __hash__ = None  # it holds mappings, which do not hash

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self.__config_fields__)})"

    def replace(self, **changes: Any) -> Self:
        """A copy with some keys changed."""
        values = {n: getattr(self, n) for n in [*self.__record_extras__, *self.__config_fields__]}
        return type(self)(**{**values, **changes})


# ------------------------------------------------------------------------------------ choices
def _names(module: str, table: str, extra: tuple = ()):
    """Lazily read choices from a registry, so importing the config never imports NumPy."""
    def names():
        import importlib

        return [*extra, *getattr(importlib.import_module(module), table).names()]

    return names


PREPROCESS = ("none", "center", "standardize", "minmax", "pca", "whiten")
# what early stopping may watch: the validation loss and metrics of either task, or the training loss
MONITORS = ("val_loss", *(f"val_{m}" for task in TASK_METRIC for m in metric_names(task)), "train_loss")
GD = ("batch", "stochastic", "minibatch")
TRACKERS = ("none", "mlflow")  # train.log: where a run is tracked besides its run directory


def layer_fields(model_level: bool) -> dict[str, Field]:
    """Keys that may be set for the whole model, or per layer (with `units`; unset = the model's)."""
    level = model_level  # model-level keys have defaults; per-layer ones default to null (inherit)
    f: dict[str, Field] = {}
    if not level:
        f["units"] = Num(None, "units (neurons) in this layer", integer=True, ge=1, le=MAX_UNITS)
    f.update({
        "activation": Choice(_names("nnctl.nn.activations", "ACTIVATIONS"), "relu" if level else None,
                             "hidden-layer activation", nullable=not level),
        "activation_options": Mapping("options of the activation, e.g. {alpha: 0.01} for leaky_relu" if level
                                      else "options of this layer's activation", nullable=not level),
        "init": Choice(_names("nnctl.nn.init", "INITS", ("auto",)), "auto" if level else None,
                       "weight init; auto = He for the ReLU family, Xavier for the others", nullable=not level),
        "init_std": Num(0.01 if level else None, "standard deviation for init: normal", gt=0, le=1e6,
                        nullable=not level),
        "bias_init": Num(0.0 if level else None, "initial value of every bias", ge=-1e6, le=1e6, nullable=not level),
        "norm": Choice(_names("nnctl.nn.norms", "NORMS", ("none",)), "none" if level else None,
                       "normalization before the activation", nullable=not level),
        "norm_options": Mapping("options of the norm, e.g. {momentum: 0.1, eps: 1.0e-5, groups: 4}" if level
                                else "options of this layer's norm", nullable=not level),
        "dropout": Num(0.0 if level else None, "probability of zeroing a hidden unit in training", ge=0, lt=1,
                       nullable=not level),
    })
    return f


_MODEL_LEVEL = layer_fields(model_level=True)


# ------------------------------------------------------------------------------------ sections
class SplitSpec(Record):
    val: float = key(Num(0.2, "fraction of rows for validation", ge=0, lt=1))
    test: float = key(Num(0.2, "fraction of rows for the held-out test set", ge=0, lt=1))
    stratify: bool = key(Bool(True, "keep class proportions in every split (classification only)"))


class ImputeSpec(Record):
    numeric: str = key(Choice(("median", "mean", "zero"), "median", "value for a missing number, from the training "
                                                                     "rows"))
    categorical: str = key(Choice(("most_frequent", "missing"), "most_frequent",
                                  "most_frequent training level, or 'missing': a level of its own"))
    indicator: bool = key(Bool(False, "add a 0/1 column per imputed column saying the value was missing"))


class CategoricalSpec(Record):
    max_levels: int = key(Num(100, "a string column with more training levels stops the run (an id? free text?)",
                              integer=True, ge=1, le=100_000))
    min_frequency: int = key(Num(1, "levels seen in fewer training rows share one 'other' column", integer=True,
                                 ge=1))
    unknown: str = key(Choice(("ignore", "error"), "ignore", "a level not seen in training: ignore (all zeros, "
                                                               "counted and reported) or error"))


class DataSpec(Record):
    source: str = key(Text(None, "sklearn:<name> (offline toy data) or a data file (.csv .tsv .txt, optionally "
                                 ".gz .bz2 .xz .zip; .parquet), relative to the config"))
    options: MappingType[str, Any] = key(Mapping("options of the sklearn:<name> dataset (see `nnctl datasets`)"))
    target: str | int | None = key(Column(None, "file: target column name or index (default: the last column)",
                                          nullable=True))
    features: tuple[str | int, ...] | None = key(ColumnList(None, "file: feature columns (default: all but the "
                                                                  "target, id and ignore)", nullable=True))
    ignore: tuple[str | int, ...] = key(ColumnList([], "file: columns never used (free text, row numbers, leaks)",
                                                   allow_empty=True))
    id: str | int | None = key(Column(None, "file: a column naming each row: never a feature; carried to "
                                            "predict's output", nullable=True))
    delimiter: str = key(Delimiter("auto", "file: auto (sniffed among , ; tab | and runs of spaces) or one "
                                           "character; ' ' means runs of spaces"))
    decimal: str = key(Choice((".", ","), ".", "file: the decimal mark of numbers"))
    header: bool = key(Bool(True, "file: the first row names the columns; false: columns are c0, c1, ..."))
    na_values: str | tuple[str, ...] = key(NaValues("auto", "file: strings that mean missing; auto: empty, NA, "
                                                            "N/A, NaN, nan, null, None, ?, -"))
    missing: str = key(Choice(("error", "drop", "impute"), "error", "missing values: stop (listing them), drop "
                                                                    "the rows, or impute from the training rows"))
    impute: ImputeSpec = key(Section(ImputeSpec, "how missing features are filled when missing: impute"))
    categorical: CategoricalSpec = key(Section(CategoricalSpec, "string feature columns (one-hot encoded)"))
    dates: str = key(Choice(("expand", "ignore", "error"), "expand", "date columns: expand to year, month, day, "
                                                                     "weekday, day of year; ignore; or error"))
    target_scale: str = key(Choice(("auto", "none"), "auto", "regression: auto standardizes the target on the "
                                                             "training rows (metrics in original units)"))
    task: str = key(Choice(("auto", "classification", "regression"), "auto", "auto guesses from the target "
                                                                             "(and says why)"))
    split: SplitSpec = key(Section(SplitSpec, "train/val/test fractions"))
    preprocess: str = key(Choice(PREPROCESS, "standardize", "input preprocessing, fitted on the training split"))
    pca_components: int | float | None = key(PcaComponents(None, "pca/whiten: a count, or a variance fraction "
                                                                 "in (0, 1]", nullable=True))

    FILE_KEYS = ("target", "features", "ignore", "id", "delimiter", "decimal", "header", "na_values")

    @property
    def builtin(self) -> str | None:
        """The name of a built-in dataset (sklearn:<name>), or None for a file."""
        return self.source[len("sklearn:"):] if self.source.startswith("sklearn:") else None


class ModelSpec(Record):
    hidden: tuple[int, ...] | None = key(IntList(None, "hidden layer sizes, e.g. [16, 16]; [] is logistic/linear "
                                                       "regression", nullable=True))
    # resolved: every hidden layer, whether written as `hidden` (the shorthand) or `layers`
    layers: tuple[LayerDef, ...] = key(ListOf(Section(layer_fields(model_level=False), required=("units",)),
                                              "the long form: one mapping per hidden layer", nullable=True))
    activation: str = key(_MODEL_LEVEL["activation"])
    activation_options: MappingType[str, Any] = key(_MODEL_LEVEL["activation_options"])
    init: str = key(_MODEL_LEVEL["init"])
    init_std: float = key(_MODEL_LEVEL["init_std"])
    bias_init: float = key(_MODEL_LEVEL["bias_init"])
    norm: str = key(_MODEL_LEVEL["norm"])
    norm_options: MappingType[str, Any] = key(_MODEL_LEVEL["norm_options"])
    dropout: float = key(_MODEL_LEVEL["dropout"])
    init_from: str | None = key(Text(None, "a weights.npz to start from (warm start)", nullable=True))

    @property
    def batch_stats_norm(self) -> str | None:
        """The name of a norm that normalises with statistics over the batch (so every training step
        needs >= 2 rows), if a layer has one."""
        return next((layer.norm.registry_name for layer in self.layers
                     if layer.norm is not None and layer.norm.needs_batch_stats), None)

    @property
    def needs_batch_stats(self) -> bool:
        return self.batch_stats_norm is not None

    def to_config(self) -> dict:
        out = _plain_fields(self)
        out.pop("layers" if self.hidden is not None else "hidden")  # as the user wrote it: shorthand or long
        return out


class ScheduleSpec(NamedTuple):
    """A learning-rate schedule: its name, warmup epochs and its own options (immutable)."""

    name: str
    warmup_epochs: int
    options: MappingType[str, Any]

    def to_config(self) -> dict:
        return {"name": self.name, "warmup_epochs": self.warmup_epochs, **plain(self.options)}


class OptimizerSpec(Record):
    name: str = key(Choice(_names("nnctl.nn.optimizers", "OPTIMIZERS"), "adam",
                           "gradient-descent update rule (torch.optim semantics)"))
    lr: float = key(Num("auto", "learning rate; auto = torch.optim's default for the optimizer", gt=0, auto=True))
    options: MappingType[str, Any] = key(Mapping("optimizer options: momentum, betas, eps, alpha, amsgrad, ..."))
    weight_decay: float = key(Num("auto", "L2 penalty (AdamW: decoupled); auto = 0.01 for adamw, else 0", ge=0,
                                  auto=True))
    schedule: ScheduleSpec = key(ScheduleField("learning-rate schedule, stepped once per epoch"))
    clip_grad_norm: float | None = key(Num(None, "clip the global gradient norm to this value", gt=0, nullable=True))


class EarlyStoppingSpec(Record):
    monitor: str = key(Choice(MONITORS, "val_loss", "metric to watch"))
    mode: str = key(Choice(("auto", "min", "max"), "auto", "auto: max for accuracy/r2, min otherwise"))
    patience: int = key(Num(10, "epochs without improvement before stopping", integer=True, ge=1))
    min_delta: float = key(Num(0.0, "smallest change that counts as improvement", ge=0))
    restore_best: bool = key(Bool(True, "keep the weights of the best epoch"))


class TrainSpec(Record):
    epochs: int = key(Num(100, "passes over the training data", integer=True, ge=1, le=10_000_000))
    gd: str = key(Choice(GD, "minibatch", "batch: all rows per step; stochastic: one row; minibatch: batch_size "
                                          "rows"))
    batch_size: int = key(Num(32, "rows per step for gd: minibatch", integer=True, ge=1))
    loss: str = key(Choice(_names("nnctl.nn.losses", "LOSSES", ("auto",)), "auto",
                           "auto: cross_entropy (multi-class), bce (binary), mse (regression)"))
    class_weight: str | MappingType[str, float] = key(ClassWeight("none", "classification: none, balanced "
                                                                           "(n / (k n_c)), or {label: weight}"))
    shuffle: bool = key(Bool(True, "reshuffle the training rows every epoch"))
    early_stopping: EarlyStoppingSpec | None = key(Toggle(
        Section(EarlyStoppingSpec), "stop when the monitored metric stops improving (null: off; true: defaults)"))
    stop_at_loss: float | None = key(Num(None, "stop once the training loss is this small", gt=0, nullable=True))
    snapshot_every: int | None = key(Num(None, "N: also keep the weights at epoch 0 (the initial ones), every N "
                                               "epochs and the last epoch, in snapshots.npz (for plot --evolution)",
                                         integer=True, ge=1, nullable=True))
    checkpoint_every: int = key(Num(1, "epochs between resumable checkpoints (at most one a second)", integer=True,
                                    ge=1))
    dtype: str = key(Choice(("float32", "float64"), "float32", "float64 is for checks"))
    threads: int | str = key(Num("auto", "BLAS threads while training; auto: 1 unless the layers' products are "
                                         "large enough for a second core to pay off", integer=True, ge=1, le=256,
                                 auto=True))
    diagnostics: bool = key(Bool(True, "per-epoch layer health (diagnostics.csv) and findings such as DEAD_RELU"))
    log_steps: bool = key(Bool(False, "steps.csv: epoch, step (global, from 1), loss and lr of every gradient step"))
    log: str = key(Choice(TRACKERS, "none", "mlflow: also log params, per-epoch metrics, findings and the run dir's "
                                            "files to MLflow (MLFLOW_TRACKING_URI, else MLflow's local default)"))

    def rows_per_step(self, n_rows: int | float) -> int | float:
        """Training rows in one gradient step (gd: batch is every row; a last batch may be smaller)."""
        return {"batch": n_rows, "stochastic": 1, "minibatch": min(self.batch_size, n_rows)}[self.gd]


class SweepSpec(Record):
    grid: MappingType[str, Any] = key(Mapping("key -> list of values; the sweep runs their product, e.g. "
                                              "{optimizer.lr: [0.1, 0.01]}"))
    random: int = key(Num(0, "random points drawn from space", integer=True, ge=0))
    space: MappingType[str, Any] = key(Mapping("key -> distribution: uniform(a,b), loguniform(a,b), int(a,b), "
                                               "choice(a,b,...)"))
    seeds: int = key(Num(1, "replicates of every point, with seeds seed, seed+1, ...", integer=True, ge=1))


class Spec(Record):
    """A validated, resolved experiment: every key present, every `auto` the loader could settle
    settled (task and loss need the data: `load.resolve_data` makes the spec that has them)."""

    name: str = key(Text(None, "run name (default: the config file's stem)", nullable=True))
    seed: int = key(Num(0, "one seed drives split, init, shuffling and dropout", integer=True, ge=0))
    data: DataSpec = key(Section(DataSpec, "where the data comes from and how it is split and scaled",
                                 required=("source",)))
    model: ModelSpec = key(Section(ModelSpec, "the network"))
    optimizer: OptimizerSpec = key(Section(OptimizerSpec, "how the weights are updated"))
    train: TrainSpec = key(Section(TrainSpec, "the training loop"))
    sweep: SweepSpec | None = key(Section(SweepSpec, "used by nnctl sweep only; nnctl train ignores it",
                                          default_none=True, nullable=True))
    source: str = "<config>"  # the file it came from, for messages
    base_dir: Path = Path(".")  # relative paths are relative to this
    origins: Origins | None = None  # the line or --set of every key, for errors found later

    def to_config(self) -> dict:
        """The config as plain data, as the run's config.yaml holds it."""
        return _plain_fields(self)


SCHEMA = Section(Spec, required=("data",))


# ------------------------------------------------------------------------------------ plain <-> frozen
def build(cls, values: dict):
    """The frozen `cls` from its checked, resolved dict (sections recursively)."""
    kwargs = {}
    for name, check in config_fields(cls).items():
        value = values[name]
        if value is None:
            kwargs[name] = None
        elif isinstance(check, Toggle):
            kwargs[name] = build(check.section.cls, value)
        elif isinstance(check, Section) and check.cls is not None:
            kwargs[name] = build(check.cls, value)
        elif isinstance(check, ScheduleField):
            options = {k: v for k, v in value.items() if k not in ("name", "warmup_epochs")}
            kwargs[name] = ScheduleSpec(value["name"], value["warmup_epochs"], freeze(options))
        else:
            kwargs[name] = freeze(value)
    return cls(**kwargs)


def freeze(value):
    """Plain data made read-only: dicts -> FrozenDict, lists -> tuples (recursively)."""
    if isinstance(value, dict):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def plain(value):
    """Frozen spec data back to plain YAML data (dicts and lists)."""
    if hasattr(value, "to_config"):
        return value.to_config()
    if hasattr(value, "__config_fields__") and not isinstance(value, type):
        return _plain_fields(value)
    if isinstance(value, MappingType):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _plain_fields(obj) -> dict:
    return {name: plain(getattr(obj, name)) for name in config_fields(type(obj))}
