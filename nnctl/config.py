"""The experiment spec: one field table drives validation, defaults, resolution and JSON Schema.

`load_spec` reads a YAML file (or a mapping), applies `--set` overrides, checks every key before any
work starts and fills in defaults. Errors name the file and line (or the `--set` that caused them),
the dotted key, what was expected and what was found. `resolve_data_dependent` fills in what only
the data can decide (task, loss) once it is loaded; `Spec.resolved` is then the config the run
directory stores, and `nnctl train runs/X/config.yaml` reproduces run X.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnctl.errors import ConfigError, did_you_mean
from nnctl.registry import type_name

# YAML 1.1 reads these unquoted words as booleans; a string field that receives a boolean says so.
_YAML_BOOL_WORDS = "yes/no/on/off/true/false"


# ------------------------------------------------------------------------------------ context
class Origins:
    """Where each key path came from: 'file, line N' or '--set key=value'."""

    def __init__(self, source: str, lines: dict[tuple, int] | None = None):
        self.source = source
        self.lines = dict(lines or {})
        self.overrides: dict[tuple, str] = {}

    def where(self, path: tuple) -> str:
        """The location of the closest enclosing key that has one."""
        for over, text in self.overrides.items():  # a key an override introduced (e.g. a typo in --set)
            if len(over) >= len(path) > 0 and over[: len(path)] == path and path not in self.lines:
                return text
        for i in range(len(path), -1, -1):
            prefix = path[:i]
            if prefix in self.overrides:
                return self.overrides[prefix]
            if prefix in self.lines:
                return f"{self.source}, line {self.lines[prefix]}"
        return self.source

    def error(self, path: tuple, message: str) -> ConfigError:
        """A ConfigError 'where: dotted.key message'."""
        where = self.where(path)
        return ConfigError(f"{where}: {dotted(path)} {message}" if path else f"{where}: {message}")


def dotted(path: tuple) -> str:
    """('model', 'layers', 0, 'units') -> 'model.layers[0].units'."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _got(value: Any) -> str:
    if isinstance(value, bool):
        return f"got boolean {str(value).lower()} (YAML reads unquoted {_YAML_BOOL_WORDS} as booleans; quote it)"
    return f"got {type_name(value)}"


# ------------------------------------------------------------------------------------ fields
class Field:
    """One config key: its default, a check that returns the cleaned value, and its schema."""

    def __init__(self, default: Any = None, help: str = "", nullable: bool = False):
        self.default = default
        self.help = help
        self.nullable = nullable

    def check(self, value: Any, path: tuple, origins: Origins) -> Any:
        if value is None and self.nullable:
            return None
        return self.check_value(value, path, origins)

    def check_value(self, value: Any, path: tuple, origins: Origins) -> Any:
        return value

    def fill_default(self) -> Any:
        return _copy(self.default)

    def schema(self) -> dict:
        s = self.value_schema()
        if self.nullable:
            s = {"anyOf": [s, {"type": "null"}]}
        if self.help:
            s["description"] = self.help
        if self.default is not None or self.nullable:
            s["default"] = _copy(self.default)
        return s

    def value_schema(self) -> dict:
        return {}


def _copy(v):
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_copy(x) for x in v]
    return v


class Num(Field):
    """A number (or integer) within bounds; optionally the string 'auto'."""

    def __init__(self, default=None, help="", *, integer=False, gt=None, ge=None, lt=None, le=None,
                 nullable=False, auto=False):
        super().__init__(default, help, nullable)
        self.integer, self.gt, self.ge, self.lt, self.le, self.auto = integer, gt, ge, lt, le, auto

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        bounds = []
        for op, v in ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le)):
            if v is not None:
                bounds.append(f"{op} {v}")
        text = kind + (" " + " and ".join(bounds) if bounds else "")
        if self.auto:
            text += " or 'auto'"
        if self.nullable:
            text += " or null"
        return text

    def check_value(self, value, path, origins):
        if self.auto and value == "auto":
            return "auto"
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and self.integer and not isinstance(value, int):
            ok = isinstance(value, float) and value.is_integer()
            value = int(value) if ok else value
        if ok and not math.isfinite(value):
            ok = False
        if ok:
            ok = ((self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)
                  and (self.lt is None or value < self.lt) and (self.le is None or value <= self.le))
        if not ok:
            raise origins.error(path, f"must be {self.describe()}; {_got(value)}")
        return int(value) if self.integer else float(value)

    def value_schema(self):
        s: dict[str, Any] = {"type": "integer" if self.integer else "number"}
        for key, v in (("exclusiveMinimum", self.gt), ("minimum", self.ge), ("exclusiveMaximum", self.lt),
                       ("maximum", self.le)):
            if v is not None:
                s[key] = v
        if self.auto:
            return {"anyOf": [s, {"const": "auto"}]}
        return s


class Bool(Field):
    def check_value(self, value, path, origins):
        if not isinstance(value, bool):
            raise origins.error(path, f"must be true or false; {_got(value)}")
        return value

    def value_schema(self):
        return {"type": "boolean"}


class Text(Field):
    def check_value(self, value, path, origins):
        if not isinstance(value, str) or not value.strip():
            raise origins.error(path, f"must be a non-empty string; {_got(value)}")
        return value

    def value_schema(self):
        return {"type": "string", "minLength": 1}


class Choice(Field):
    """One of a fixed list, or of a registry's names (read lazily, so new entries appear)."""

    def __init__(self, choices, default=None, help="", nullable=False):
        super().__init__(default, help, nullable)
        self._choices = choices

    @property
    def choices(self) -> list[str]:
        c = self._choices
        return list(c() if callable(c) else c)

    def check_value(self, value, path, origins):
        choices = self.choices
        if not isinstance(value, str) or value not in choices:
            hint = did_you_mean(value, choices) if isinstance(value, str) else ""
            hint = hint if "did you mean" in hint else ""  # the choices are listed already
            raise origins.error(path, f"must be one of {', '.join(choices)}; {_got(value)}{hint}")
        return value

    def value_schema(self):
        return {"enum": self.choices}


class Mapping(Field):
    """A free mapping (component options); its keys are checked against a registry later."""

    def __init__(self, help=""):
        super().__init__({}, help)

    def check_value(self, value, path, origins):
        if not isinstance(value, dict):
            raise origins.error(path, f"must be a mapping (e.g. {{alpha: 0.1}}); {_got(value)}")
        for k in value:
            if not isinstance(k, str):
                raise origins.error(path, f"keys must be option names; got {type_name(k)}")
        return dict(value)

    def value_schema(self):
        return {"type": "object"}


MAX_UNITS = 1 << 16  # a layer wider than this is a typo, and would exhaust memory before saying so


class IntList(Field):
    """A list of integers in [minimum, maximum] (hidden layer sizes)."""

    def __init__(self, default=None, help="", minimum=1, nullable=False, maximum=MAX_UNITS):
        super().__init__(default, help, nullable)
        self.minimum, self.maximum = minimum, maximum

    def check_value(self, value, path, origins):
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise origins.error(path, f"must be a list of integers >= {self.minimum} (e.g. [64, 32]); {_got(value)}")
        for i, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, int) or not self.minimum <= v <= self.maximum:
                raise origins.error((*path, i), f"must be an integer from {self.minimum} to {self.maximum}; {_got(v)}")
        return list(value)

    def value_schema(self):
        return {"type": "array", "items": {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}}


class Column(Field):
    """A CSV column: its header name or a 0-based index (negative counts from the end)."""

    def check_value(self, value, path, origins):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise origins.error(path, f"must be a column name or index; {_got(value)}")
        return value

    def value_schema(self):
        return {"type": ["string", "integer"]}


class ColumnList(Field):
    def check_value(self, value, path, origins):
        if not isinstance(value, list) or not value:
            raise origins.error(path, f"must be a non-empty list of column names or indices; {_got(value)}")
        for i, v in enumerate(value):
            Column().check_value(v, (*path, i), origins)
        if len({repr(v) for v in value}) != len(value):
            raise origins.error(path, "lists a column twice")
        return list(value)

    def value_schema(self):
        return {"type": "array", "items": {"type": ["string", "integer"]}, "minItems": 1}


class PcaComponents(Field):
    def check_value(self, value, path, origins):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        if isinstance(value, float) and 0 < value <= 1:
            return value
        raise origins.error(path, f"must be an integer >= 1 (components) or a variance fraction in (0, 1]; "
                                  f"{_got(value)}")

    def value_schema(self):
        return {"anyOf": [{"type": "integer", "minimum": 1},
                          {"type": "number", "exclusiveMinimum": 0, "maximum": 1}]}


class Section(Field):
    """A mapping with a fixed set of keys; unknown keys are errors with a suggestion."""

    def __init__(self, fields: dict[str, Field], help="", nullable=False, default_none=False, required=()):
        super().__init__(None, help, nullable)
        self.fields = fields
        self.default_none = default_none  # the key's default is null (e.g. early_stopping)
        self.required = tuple(required)

    def fill_default(self):
        if self.default_none:
            return None
        return {k: f.fill_default() for k, f in self.fields.items()}

    def check_value(self, value, path, origins):
        if not isinstance(value, dict):
            raise origins.error(path, f"must be a mapping with keys {', '.join(self.fields)}; {_got(value)}")
        for key in value:
            if key not in self.fields:
                where = dotted((*path, key)) if isinstance(key, str) else repr(key)
                raise ConfigError(f"{origins.where((*path, key))}: unknown key {where!r}"
                                  f"{did_you_mean(str(key), self.fields)}")
        for key in self.required:
            if value.get(key) is None:
                raise origins.error(path, f"needs the key '{key}' ({self.fields[key].help})")
        out = {}
        for key, f in self.fields.items():
            out[key] = f.check(value[key], (*path, key), origins) if key in value else f.fill_default()
        return out

    def value_schema(self):
        return {"type": "object", "additionalProperties": False,
                "properties": {k: f.schema() for k, f in self.fields.items()},
                **({"required": list(self.required)} if self.required else {})}

    def schema(self):
        s = super().schema()
        if not self.default_none:
            s.pop("default", None)
        return s


class ListOf(Field):
    def __init__(self, item: Field, help="", nullable=False):
        super().__init__(None, help, nullable)
        self.item = item

    def check_value(self, value, path, origins):
        if not isinstance(value, list):
            raise origins.error(path, f"must be a list; {_got(value)}")
        return [self.item.check(v, (*path, i), origins) for i, v in enumerate(value)]

    def value_schema(self):
        return {"type": "array", "items": self.item.schema()}


class Toggle(Field):
    """null, or `true` meaning the section with its defaults, or the section itself."""

    def __init__(self, section: Section, help=""):
        super().__init__(None, help, nullable=True)
        self.section = section

    def check_value(self, value, path, origins):
        if value is False:
            return None
        if value is True:
            value = {}
        return self.section.check_value(value, path, origins)

    def value_schema(self):
        return {"anyOf": [{"type": "boolean"}, self.section.value_schema()]}


class ScheduleField(Field):
    """{name: <schedule>, warmup_epochs: N, <that schedule's options>...}."""

    def __init__(self, help=""):
        super().__init__({"name": "constant", "warmup_epochs": 0}, help)

    def check_value(self, value, path, origins):
        from nnctl.nn.schedules import SCHEDULES

        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict):
            raise origins.error(path, f"must be a mapping like {{name: cosine}}; {_got(value)}")
        name = Choice(SCHEDULES.names).check(value.get("name", "constant"), (*path, "name"), origins)
        warmup = Num(integer=True, ge=0).check(value.get("warmup_epochs", 0), (*path, "warmup_epochs"), origins)
        options = {k: v for k, v in value.items() if k not in ("name", "warmup_epochs")}
        defaults = SCHEDULES.option_defaults(name)
        for key in options:
            if key not in defaults:
                valid = ", ".join(["name", "warmup_epochs", *defaults])
                raise ConfigError(f"{origins.where((*path, key))}: unknown key {dotted((*path, key))!r} for "
                                  f"schedule '{name}'{did_you_mean(key, [*defaults, 'name', 'warmup_epochs'])}; "
                                  f"valid keys: {valid}")
        opts = _registry_options(SCHEDULES, name, options, path, origins)
        return {"name": name, "warmup_epochs": warmup, **opts}

    def value_schema(self):
        from nnctl.nn.schedules import SCHEDULES

        variants = []
        for name in SCHEDULES.names():
            props = {"name": {"const": name}, "warmup_epochs": {"type": "integer", "minimum": 0}}
            for k, d in SCHEDULES.option_defaults(name).items():
                props[k] = _option_schema(d)
            variants.append({"type": "object", "additionalProperties": False, "properties": props})
        return {"anyOf": [{"enum": SCHEDULES.names()}, *variants]}


def _option_schema(default) -> dict:
    if isinstance(default, bool):
        return {"type": "boolean", "default": default}
    if isinstance(default, int):
        return {"type": "integer", "default": default}
    if isinstance(default, float):
        return {"type": "number", "default": default}
    if isinstance(default, str):
        return {"type": "string", "default": default}
    if isinstance(default, tuple):
        return {"type": "array", "items": {"type": "number"}, "minItems": len(default), "maxItems": len(default),
                "default": list(default)}
    return {}


def _registry_options(registry, name, options, path, origins) -> dict:
    """Check options for a registry entry and try constructing it; errors point at `path`."""
    where = origins.where(path)
    try:
        opts = registry.check_options(name, options, dotted(path))
        registry.entry(name)(**opts)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{where}: {dotted(path)}: {exc}") from None
    return {k: list(v) if isinstance(v, tuple) else v for k, v in opts.items()}


# ------------------------------------------------------------------------------------ the table
def _activation_names():
    from nnctl.nn.activations import ACTIVATIONS

    return ACTIVATIONS.names()


def _init_names():
    from nnctl.nn.init import INITS

    return ["auto", *INITS.names()]


def _norm_names():
    from nnctl.nn.norms import NORMS

    return ["none", *NORMS.names()]


def _optimizer_names():
    from nnctl.nn.optimizers import OPTIMIZERS

    return OPTIMIZERS.names()


def _loss_names():
    from nnctl.nn.losses import LOSSES

    return ["auto", *LOSSES.names()]


PREPROCESS = ("none", "center", "standardize", "minmax", "pca", "whiten")
MONITORS = ("val_loss", "val_accuracy", "val_r2", "val_mae", "train_loss")


def _layer_fields(model_level: bool) -> dict[str, Field]:
    """Keys that may be set for the whole model or per layer (with `units` per layer)."""
    unset = None  # per-layer keys default to the model-level value
    f: dict[str, Field] = {}
    if not model_level:
        f["units"] = Num(None, "units (neurons) in this layer", integer=True, ge=1, le=MAX_UNITS)
    f.update({
        "activation": Choice(_activation_names, "relu" if model_level else unset, "hidden-layer activation",
                             nullable=not model_level),
        "activation_options": Mapping("options of the activation, e.g. {alpha: 0.01} for leaky_relu"),
        "init": Choice(_init_names, "auto" if model_level else unset,
                       "weight init; auto = He for the ReLU family, Xavier for the others", nullable=not model_level),
        "init_std": Num(0.01 if model_level else unset, "standard deviation for init: normal", gt=0, le=1e6,
                        nullable=not model_level),
        "bias_init": Num(0.0 if model_level else unset, "initial value of every bias", ge=-1e6, le=1e6,
                         nullable=not model_level),
        "norm": Choice(_norm_names, "none" if model_level else unset, "normalization before the activation",
                       nullable=not model_level),
        "norm_options": Mapping("options of the norm, e.g. {momentum: 0.1, eps: 1.0e-5, groups: 4}"),
        "dropout": Num(0.0 if model_level else unset, "probability of zeroing a hidden unit in training",
                       ge=0, lt=1, nullable=not model_level),
    })
    if not model_level:
        f["activation_options"] = Mapping("options of this layer's activation")
        f["activation_options"].nullable = True
        f["activation_options"].default = None
        f["norm_options"] = Mapping("options of this layer's norm")
        f["norm_options"].nullable = True
        f["norm_options"].default = None
    return f


SCHEMA = Section({
    "name": Text(None, "run name (default: the config file's stem)", nullable=True),
    "seed": Num(0, "one seed drives split, init, shuffling and dropout", integer=True, ge=0),
    "data": Section({
        "source": Text(None, "sklearn:<name> (offline toy data) or a path to a .csv, relative to the config"),
        "options": Mapping("options of the sklearn:<name> dataset (see `nnctl datasets`)"),
        "target": Column(None, "CSV target column name or index (default: the last column)", nullable=True),
        "features": ColumnList(None, "CSV feature columns (default: all but the target)", nullable=True),
        "task": Choice(("auto", "classification", "regression"), "auto", "auto guesses from the target"),
        "split": Section({
            "val": Num(0.2, "fraction of rows for validation", ge=0, lt=1),
            "test": Num(0.2, "fraction of rows for the held-out test set", ge=0, lt=1),
            "stratify": Bool(True, "keep class proportions in every split (classification only)"),
        }, "train/val/test fractions"),
        "preprocess": Choice(PREPROCESS, "standardize", "input preprocessing, fitted on the training split"),
        "pca_components": PcaComponents(None, "pca/whiten: a count, or a variance fraction in (0, 1]",
                                        nullable=True),
    }, "where the data comes from and how it is split and scaled", required=("source",)),
    "model": Section({
        "hidden": IntList(None, "hidden layer sizes, e.g. [16, 16]; [] is logistic/linear regression",
                          nullable=True),
        "layers": ListOf(Section(_layer_fields(model_level=False), required=("units",)),
                         "the long form: one mapping per hidden layer", nullable=True),
        **_layer_fields(model_level=True),
        "init_from": Text(None, "a weights.npz to start from (warm start)", nullable=True),
    }, "the network"),
    "optimizer": Section({
        "name": Choice(_optimizer_names, "adam", "gradient-descent update rule (torch.optim semantics)"),
        "lr": Num("auto", "learning rate; auto = torch.optim's default for the optimizer", gt=0, auto=True),
        "options": Mapping("optimizer options: momentum, betas, eps, alpha, amsgrad, ..."),
        "weight_decay": Num("auto", "L2 penalty (AdamW: decoupled); auto = 0.01 for adamw, else 0", ge=0,
                            auto=True),
        "schedule": ScheduleField("learning-rate schedule, stepped once per epoch"),
        "clip_grad_norm": Num(None, "clip the global gradient norm to this value", gt=0, nullable=True),
    }, "how the weights are updated"),
    "train": Section({
        "epochs": Num(100, "passes over the training data", integer=True, ge=1, le=10_000_000),
        "gd": Choice(("batch", "stochastic", "minibatch"), "minibatch",
                     "batch: all rows per step; stochastic: one row; minibatch: batch_size rows"),
        "batch_size": Num(32, "rows per step for gd: minibatch", integer=True, ge=1),
        "loss": Choice(_loss_names, "auto", "auto: cross_entropy (multi-class), bce (binary), mse (regression)"),
        "shuffle": Bool(True, "reshuffle the training rows every epoch"),
        "early_stopping": Toggle(Section({
            "monitor": Choice(MONITORS, "val_loss", "metric to watch"),
            "mode": Choice(("auto", "min", "max"), "auto", "auto: max for accuracy/r2, min otherwise"),
            "patience": Num(10, "epochs without improvement before stopping", integer=True, ge=1),
            "min_delta": Num(0.0, "smallest change that counts as improvement", ge=0),
            "restore_best": Bool(True, "keep the weights of the best epoch"),
        }), "stop when the monitored metric stops improving (null: off; true: defaults)"),
        "stop_at_loss": Num(None, "stop once the training loss is this small", gt=0, nullable=True),
        "checkpoint_every": Num(1, "epochs between resumable checkpoints (at most one a second)", integer=True,
                                ge=1),
        "dtype": Choice(("float32", "float64"), "float32", "float64 is for checks"),
        "threads": Num("auto", "BLAS threads while training; auto: 1 unless the layers' products are large "
                       "enough for a second core to pay off", integer=True, ge=1, le=256, auto=True),
        "diagnostics": Bool(True, "per-epoch layer health (diagnostics.csv) and findings such as DEAD_RELU"),
    }, "the training loop"),
    "sweep": Section({
        "grid": Mapping("key -> list of values; the sweep runs their product, e.g. {optimizer.lr: [0.1, 0.01]}"),
        "random": Num(0, "random points drawn from space", integer=True, ge=0),
        "space": Mapping("key -> distribution: uniform(a,b), loguniform(a,b), int(a,b), choice(a,b,...)"),
        "seeds": Num(1, "replicates of every point, with seeds seed, seed+1, ...", integer=True, ge=1),
    }, "used by nnctl sweep only; nnctl train ignores it", default_none=True, nullable=True),
}, required=("data",))


# ------------------------------------------------------------------------------------ the spec
@dataclass
class Spec:
    """A validated config: `config` is the nested dict with every key present."""

    config: dict
    source: str  # the file (or '<config>') it came from, for messages
    base_dir: Path  # relative data paths are relative to this
    layer_specs: list[dict] = field(default_factory=list)  # resolved hidden layers, shorthand or not
    check_files: bool = True

    @property
    def name(self) -> str:
        return self.config["name"]

    @property
    def seed(self) -> int:
        return self.config["seed"]


def load_spec(path: Path | str | None = None, overrides: list[str] | None = None, *, data: dict | None = None,
              name: str | None = None, seed: int | None = None, base_dir: Path | None = None,
              check_files: bool = True) -> Spec:
    """Read, override, validate and resolve a config.

    Parameters: `path` a YAML file, or `data` an already-parsed mapping; `overrides` a list of
    'dotted.key=yaml-value' strings; `name`/`seed` override those keys (the CLI's --name/--seed);
    `check_files=False` skips checking that data and init_from files exist (reading a run dir).
    Returns a Spec whose config has every key. Raises ConfigError naming file, line and key.
    """
    from nnctl.yamlio import load_yaml

    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except IsADirectoryError:
            raise ConfigError(f"{path}: is a directory, not a config file") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
        data, lines = load_yaml(text, source)
        base_dir = path.resolve().parent
        default_name = path.stem
    else:
        source, lines, default_name = "<config>", {}, "run"
        base_dir = (base_dir or Path.cwd()).resolve()
    origins = Origins(source, lines)
    if data is None:
        raise ConfigError(f"{source}: the config is empty; it needs at least data.source "
                          f"(e.g. 'data: {{source: sklearn:moons}}')")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a mapping of keys (name, seed, data, model, optimizer, "
                          f"train); got {type_name(data)}")
    data = _copy(data)
    for item in overrides or []:
        apply_override(data, item, origins)
    if name is not None:
        data["name"] = name
        origins.overrides[("name",)] = "--name"
    if seed is not None:
        data["seed"] = seed
        origins.overrides[("seed",)] = "--seed"
    config = SCHEMA.check(data, (), origins)
    if config["name"] is None:
        config["name"] = default_name
    spec = Spec(config, source, base_dir, check_files=check_files)
    _check_data(spec, origins)
    _resolve_model(spec, origins)
    _resolve_optimizer(spec, origins)
    _check_train(spec, origins)
    return spec


def apply_override(data: dict, item: str, origins: Origins) -> None:
    """Apply one 'dotted.key=value' override (value parsed as YAML) to nested `data` in place."""
    from nnctl.yamlio import parse_value

    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set optimizer.lr=0.01")
    key, text = item.split("=", 1)
    key = key.strip()
    parts: list[Any] = []
    for p in key.split("."):
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)", p)
        if not m and p.isdigit():
            parts.append(int(p))
            continue
        if not m:
            raise ConfigError(f"--set {item!r}: {key!r} is not a dotted key path (e.g. optimizer.lr, "
                              f"model.layers.0.units)")
        parts.append(m.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    value = parse_value(text, f"--set {key}")
    node: Any = data
    for i, p in enumerate(parts[:-1]):
        here = dotted(tuple(parts[: i + 1]))
        if isinstance(p, int):
            if not isinstance(node, list) or p >= len(node):
                raise ConfigError(f"--set {item!r}: {here} does not exist (the list has "
                                  f"{len(node) if isinstance(node, list) else 0} items)")
            node = node[p]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"--set {item!r}: {dotted(tuple(parts[:i]))} is not a mapping")
        if not isinstance(node.get(p), (dict, list)):
            node[p] = {}
        node = node[p]
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ConfigError(f"--set {item!r}: {dotted(tuple(parts))} does not exist")
    elif not isinstance(node, dict):
        raise ConfigError(f"--set {item!r}: {dotted(tuple(parts[:-1]))} is not a mapping")
    node[last] = value
    origins.overrides[tuple(parts)] = f"--set {key}={text}"


# ------------------------------------------------------------------------------------ cross-field checks
def _check_data(spec: Spec, origins: Origins) -> None:
    d = spec.config["data"]
    source = d["source"]
    if source.startswith("sklearn:"):
        from nnctl.datasets import BUILTINS

        name = source[len("sklearn:"):]
        if name not in BUILTINS:
            raise origins.error(("data", "source"), f"names an unknown built-in dataset {name!r}"
                                f"{did_you_mean(name, BUILTINS)}; `nnctl datasets` lists them")
        entry = BUILTINS[name]
        for key in ("target", "features"):
            if d[key] is not None:
                raise origins.error(("data", key), f"applies to CSV files only, not to {source}")
        for key, value in d["options"].items():
            if key not in entry.options:
                valid = ", ".join(entry.options) or "none"
                raise ConfigError(f"{origins.where(('data', 'options', key))}: unknown option {key!r} for "
                                  f"{source}{did_you_mean(key, entry.options) if entry.options else ''}; "
                                  f"valid options: {valid}")
            default = entry.options[key]
            if default is not None and not isinstance(default, bool) and isinstance(default, (int, float)):
                # bounded: 10**30 samples would exhaust memory long before any message
                Num(integer=isinstance(default, int), nullable=True, ge=-1e7, le=1e7).check(
                    value, ("data", "options", key), origins)
        # the resolved config lists every option, so the run records exactly what data it saw
        d["options"] = {**entry.options, **d["options"]}
    else:
        if d["options"]:
            raise origins.error(("data", "options"), "applies to sklearn: datasets only; a CSV takes target, "
                                "features and task")
        from nnctl.data import resolve_path

        p = resolve_path(source, spec.base_dir)
        if spec.check_files and not p.exists():
            hint = " (built-in datasets are written sklearn:<name>)" if "/" not in source and "." not in source \
                else ""
            raise origins.error(("data", "source"), f"file not found: {p}{hint}")
        if spec.check_files and p.is_dir():
            raise origins.error(("data", "source"), f"is a directory, not a CSV file: {p}")
        d["source"] = str(p.resolve())  # absolute: the run dir's config.yaml must find it too
    s = d["split"]
    if s["val"] + s["test"] >= 0.9:
        raise origins.error(("data", "split"), f"leaves too little for training: val {s['val']} + test "
                            f"{s['test']} must be < 0.9")
    if d["pca_components"] is not None and d["preprocess"] not in ("pca", "whiten"):
        raise origins.error(("data", "pca_components"), f"applies to preprocess pca or whiten, not "
                            f"{d['preprocess']}")


def _activation_entry(name):
    from nnctl.nn.activations import ACTIVATIONS

    return ACTIVATIONS.entry(name)


def _auto_init(activation: str) -> str:
    from nnctl.nn.init import AUTO_INIT

    return AUTO_INIT[_activation_entry(activation).init_family]


def _resolve_model(spec: Spec, origins: Origins) -> None:
    """Resolve inits and per-layer settings; check options against the registries."""
    from nnctl.nn.activations import ACTIVATIONS
    from nnctl.nn.norms import NORMS

    m = spec.config["model"]
    if m["hidden"] is not None and m["layers"] is not None:
        raise origins.error(("model",), "sets both hidden and layers; use hidden for the shorthand or layers for "
                            "per-layer settings, not both")
    m["activation_options"] = _registry_options(ACTIVATIONS, m["activation"], m["activation_options"],
                                                ("model", "activation_options"), origins)
    if m["norm"] != "none":
        m["norm_options"] = _registry_options(NORMS, m["norm"], m["norm_options"], ("model", "norm_options"),
                                              origins)
    elif m["norm_options"]:
        raise origins.error(("model", "norm_options"), "is set but model.norm is none")
    init_written = m["init"]
    if m["init"] == "auto":  # the output layer's init follows the model-level activation
        m["init"] = _auto_init(m["activation"])

    if m["layers"] is None:
        if m["hidden"] is None and (("model", "hidden") in origins.lines or ("model", "hidden") in origins.overrides):
            raise origins.error(("model", "hidden"), "is null; give the hidden layer sizes, e.g. [16, 16], [] for no "
                                "hidden layer, or use model.layers")
        if m["hidden"] is None:
            m["hidden"] = [16, 16]
        layers = [{"units": u} for u in m["hidden"]]
        shorthand = True
    else:
        layers = m["layers"]
        shorthand = False
    resolved = []
    for i, layer in enumerate(layers):
        # shorthand layers take their options from model-level keys, so errors point there
        path = ("model", "layers", i) if not shorthand else ("model",)
        r = {"units": layer["units"]}
        act = layer.get("activation") or m["activation"]
        r["activation"] = act
        opts = layer.get("activation_options")
        if opts is None:
            opts = m["activation_options"] if act == m["activation"] else {}
        r["activation_options"] = _registry_options(ACTIVATIONS, act, opts, (*path, "activation_options"), origins)
        init = layer.get("init") or init_written
        r["init"] = _auto_init(act) if init == "auto" else init
        for key in ("init_std", "bias_init"):
            r[key] = layer.get(key) if layer.get(key) is not None else m[key]
        norm = layer.get("norm") or m["norm"]
        r["norm"] = norm
        nopts = layer.get("norm_options")
        if nopts is None:
            nopts = m["norm_options"] if norm == m["norm"] else {}
        if norm == "none":
            if nopts:
                raise origins.error((*path, "norm_options"), "is set but this layer has no norm")
            r["norm_options"] = {}
        else:
            r["norm_options"] = _registry_options(NORMS, norm, nopts, (*path, "norm_options"), origins)
            width = r["units"] * _activation_entry(act)(**r["activation_options"]).pieces
            try:
                NORMS.get(norm, r["norm_options"]).setup(width, "float64", where=f"layer {i + 1}")
            except ValueError as exc:
                where = dotted((*path, "norm_options"))
                raise ConfigError(f"{origins.where((*path, 'norm_options'))}: {where}: {exc}") from None
        r["dropout"] = layer.get("dropout") if layer.get("dropout") is not None else m["dropout"]
        resolved.append(r)
    if not shorthand:
        m["layers"] = resolved
    spec.layer_specs = resolved
    if m["init_from"] is not None:
        p = Path(m["init_from"]).expanduser()
        p = p if p.is_absolute() else spec.base_dir / p
        if spec.check_files and not p.is_file():
            raise origins.error(("model", "init_from"), f"file not found: {p}")
        m["init_from"] = str(p.resolve())


def _resolve_optimizer(spec: Spec, origins: Origins) -> None:
    from nnctl.nn.optimizers import DEFAULT_LR, OPTIMIZERS

    o = spec.config["optimizer"]
    o["options"] = _registry_options(OPTIMIZERS, o["name"], o["options"], ("optimizer", "options"), origins)
    if o["lr"] == "auto":
        o["lr"] = DEFAULT_LR[o["name"]]
    if o["weight_decay"] == "auto":
        o["weight_decay"] = OPTIMIZERS.entry(o["name"]).default_weight_decay


def _check_train(spec: Spec, origins: Origins) -> None:
    t = spec.config["train"]
    rows_per_step = {"stochastic": 1, "minibatch": t["batch_size"]}.get(t["gd"])
    if rows_per_step == 1 and any(r["norm"] == "batch" for r in spec.layer_specs):
        raise origins.error(("train", "gd"), f"gives 1 row per step ({t['gd']}"
                            f"{', batch_size 1' if t['gd'] == 'minibatch' else ''}), but batch norm needs at "
                            "least 2 rows to compute batch statistics; use minibatch with batch_size >= 2, or "
                            "norm: layer")
    es = t["early_stopping"]
    if es is not None and es["monitor"].startswith("val_") and spec.config["data"]["split"]["val"] == 0:
        raise origins.error(("train", "early_stopping", "monitor"), f"is {es['monitor']}, but data.split.val is 0 "
                            "(no validation rows); set a val fraction or monitor train_loss")


def resolve_data_dependent(spec: Spec, task: str, n_classes: int) -> None:
    """Fill in what needs the data: task and loss; check they fit together."""
    from nnctl.nn.losses import LOSSES, auto_loss

    c = spec.config
    c["data"]["task"] = task
    t = c["train"]
    if t["loss"] == "auto":
        t["loss"] = auto_loss(task, n_classes)
    loss_task = LOSSES.entry(t["loss"]).task
    if loss_task != task:
        kinds = "cross_entropy or bce" if task == "classification" else "mse, mae or huber"
        raise ConfigError(f"{spec.source}: train.loss is {t['loss']}, a {loss_task} loss, but the data is a "
                          f"{task} task; use auto or {kinds}")
    if task == "classification" and n_classes < 2:
        raise ConfigError(f"{spec.source}: data.source has a single class; classification needs at least 2")
    if t["loss"] == "bce" and n_classes != 2:
        raise ConfigError(f"{spec.source}: train.loss bce is for binary tasks (one sigmoid unit); this data has "
                          f"{n_classes} classes: use cross_entropy or auto")
    es = t["early_stopping"]
    if es is not None:
        if es["monitor"] == "val_accuracy" and task != "classification":
            raise ConfigError(f"{spec.source}: train.early_stopping.monitor is val_accuracy, but this is a "
                              f"regression task; use val_loss, val_r2 or val_mae")
        if es["monitor"] in ("val_r2", "val_mae") and task != "regression":
            raise ConfigError(f"{spec.source}: train.early_stopping.monitor is {es['monitor']}, but this is a "
                              f"classification task; use val_loss or val_accuracy")
        if es["mode"] == "auto":
            es["mode"] = "max" if es["monitor"] in ("val_accuracy", "val_r2") else "min"


def resolved_yaml(spec: Spec) -> str:
    """The resolved config as YAML, with a header saying what it is."""
    from nnctl.yamlio import dump_yaml

    c = _copy(spec.config)
    if c["model"]["layers"] is None:
        c["model"].pop("layers")
    else:
        c["model"].pop("hidden")
    return ("# Resolved by nnctl: every default filled in. `nnctl train` on this file reruns the experiment.\n"
            + dump_yaml(c))


def config_schema() -> dict:
    """JSON Schema (draft 2020-12) of the config format, generated from the field table."""
    s = SCHEMA.value_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "nnctl experiment config", **s}
