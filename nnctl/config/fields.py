"""Config keys: what each one accepts, its default, its help, and its JSON Schema, in one object.

A `Field` checks a value read from YAML or `--set` and returns it cleaned, or raises a
ConfigError that says where the value came from (`Origins`: the file and line, or the `--set`),
the dotted key, what was expected and what was found. `Section` checks a mapping against a
table of fields: the config keys of a spec record (see spec.py), so the record, its validation
and its schema are one declaration.
"""

from __future__ import annotations

import math
from typing import Any

from nnctl.errors import ConfigError, did_you_mean
from nnctl.registry import type_name

# YAML 1.1 reads these unquoted words as booleans; a string field that receives a boolean says so.
_YAML_BOOL_WORDS = "yes/no/on/off/true/false"
MAX_UNITS = 1 << 16  # a layer wider than this is a typo, and would exhaust memory before saying so
MAX_LAYERS = 1000  # deeper is a typo (or an attack): each layer costs Python time every step


class FrozenDict(dict):
    """A dict that refuses changes: the mappings of a loaded spec. (Unlike mappingproxy, it pickles
    and deep-copies, so a spec can cross to another process.)"""

    def _read_only(self, *args, **kwargs):
        raise TypeError("a loaded spec is frozen: this mapping is read-only")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _read_only

    def __reduce__(self):
        return type(self), (dict(self),)


# ------------------------------------------------------------------------------------ where values come from
class Origins:
    """Where each key path came from: 'file, line N' or '--set key=value'."""

    def __init__(self, source: str, lines: dict[tuple, int] | None = None):
        self.source = source
        self.lines = dict(lines or {})
        self.overrides: dict[tuple, str] = {}

    def freeze(self) -> Origins:
        """Read-only from here on (the loaded spec keeps it for located errors)."""
        self.lines, self.overrides = FrozenDict(self.lines), FrozenDict(self.overrides)
        return self

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


def got(value: Any) -> str:
    """'got <what the value is>', with the YAML-boolean hint for booleans."""
    if isinstance(value, bool):
        return f"got boolean {str(value).lower()} (YAML reads unquoted {_YAML_BOOL_WORDS} as booleans; quote it)"
    return f"got {type_name(value)}"


def copy_plain(v):
    """A deep copy of plain YAML data (dicts and lists)."""
    if isinstance(v, dict):
        return {k: copy_plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [copy_plain(x) for x in v]
    if type(v).__module__ == "numpy" and getattr(v, "ndim", None) == 0:
        return v.item()  # a NumPy scalar (from Python code, e.g. np.float64(0.01)) as the plain number
    return v


def registry_build(registry, name: str, options, path: tuple, origins: Origins):
    """(the built entry, its options with defaults filled in) from config options; errors point at
    `path`, the key that holds the options."""
    try:
        return registry.get(name, options, dotted(path)), registry.check_options(name, options, dotted(path))
    except ConfigError as exc:
        raise ConfigError(f"{origins.where(path)}: {exc}") from None


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
        return copy_plain(self.default)

    def schema(self) -> dict:
        s = self.value_schema()
        if self.nullable:
            s = {"anyOf": [s, {"type": "null"}]}
        if self.help:
            s["description"] = self.help
        if self.default is not None or self.nullable:
            s["default"] = copy_plain(self.default)
        return s

    def value_schema(self) -> dict:
        return {}


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
            raise origins.error(path, f"must be {self.describe()}; {got(value)}")
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
            raise origins.error(path, f"must be true or false; {got(value)}")
        return value

    def value_schema(self):
        return {"type": "boolean"}


class Text(Field):
    def check_value(self, value, path, origins):
        if not isinstance(value, str) or not value.strip():
            raise origins.error(path, f"must be a non-empty string; {got(value)}")
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
            raise origins.error(path, f"must be one of {', '.join(choices)}; {got(value)}{hint}")
        return value

    def value_schema(self):
        return {"enum": self.choices}


class Mapping(Field):
    """A free mapping (component options); its keys are checked against a registry later."""

    def __init__(self, help="", nullable=False):
        super().__init__(None if nullable else {}, help, nullable)

    def check_value(self, value, path, origins):
        if not isinstance(value, dict):
            raise origins.error(path, f"must be a mapping (e.g. {{alpha: 0.1}}); {got(value)}")
        for k in value:
            if not isinstance(k, str):
                raise origins.error(path, f"keys must be option names; got {type_name(k)}")
        return dict(value)

    def value_schema(self):
        return {"type": "object"}


class IntList(Field):
    """A list of integers in [minimum, maximum] (hidden layer sizes)."""

    def __init__(self, default=None, help="", minimum=1, nullable=False, maximum=MAX_UNITS, max_len=MAX_LAYERS):
        super().__init__(default, help, nullable)
        self.minimum, self.maximum, self.max_len = minimum, maximum, max_len

    def check_value(self, value, path, origins):
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise origins.error(path, f"must be a list of integers >= {self.minimum} (e.g. [64, 32]); {got(value)}")
        if len(value) > self.max_len:
            raise origins.error(path, f"has {len(value):,} entries; at most {self.max_len:,}")
        for i, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, int) or not self.minimum <= v <= self.maximum:
                raise origins.error((*path, i), f"must be an integer from {self.minimum} to {self.maximum}; {got(v)}")
        return list(value)

    def value_schema(self):
        return {"type": "array", "items": {"type": "integer", "minimum": self.minimum, "maximum": self.maximum},
                "maxItems": self.max_len}


def config_fields(cls) -> dict[str, Field]:
    """The config keys of a spec record (spec.py), in order, with their checks."""
    return cls.__config_fields__


class Section(Field):
    """A mapping with a fixed set of keys; unknown keys are errors with a suggestion.

    The keys are the config keys of the record class `table` (or a dict of fields for a mapping
    that is resolved into something else, like one entry of model.layers). `check` returns a
    plain dict; spec.build turns the resolved dict into the frozen record.
    """

    def __init__(self, table, help="", nullable=False, default_none=False, required=()):
        super().__init__(None, help, nullable)
        self.cls = table if isinstance(table, type) else None
        self._fields = None if self.cls else table
        self.default_none = default_none  # the key's default is null (e.g. sweep)
        self.required = tuple(required)

    @property
    def fields(self) -> dict[str, Field]:
        return config_fields(self.cls) if self.cls else self._fields

    def fill_default(self):
        if self.default_none:
            return None
        return {k: f.fill_default() for k, f in self.fields.items()}

    def check_value(self, value, path, origins):
        fields = self.fields
        if not isinstance(value, dict):
            raise origins.error(path, f"must be a mapping with keys {', '.join(fields)}; {got(value)}")
        for key in value:
            if key not in fields:
                where = dotted((*path, key)) if isinstance(key, str) else repr(key)
                raise ConfigError(f"{origins.where((*path, key))}: unknown key {where!r}"
                                  f"{did_you_mean(str(key), fields)}")
        for key in self.required:
            if value.get(key) is None:
                raise origins.error(path, f"needs the key '{key}' ({fields[key].help})")
        return {key: f.check(value[key], (*path, key), origins) if key in value else f.fill_default()
                for key, f in fields.items()}

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
    def __init__(self, item: Field, help="", nullable=False, max_len=MAX_LAYERS):
        super().__init__(None, help, nullable)
        self.item, self.max_len = item, max_len

    def check_value(self, value, path, origins):
        if not isinstance(value, list):
            raise origins.error(path, f"must be a list; {got(value)}")
        if len(value) > self.max_len:
            raise origins.error(path, f"has {len(value):,} entries; at most {self.max_len:,}")
        return [self.item.check(v, (*path, i), origins) for i, v in enumerate(value)]

    def value_schema(self):
        return {"type": "array", "items": self.item.schema(), "maxItems": self.max_len}


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
    """{name: <schedule>, warmup_epochs: N, <that schedule's options>...}, or just the name."""

    def __init__(self, help=""):
        super().__init__({"name": "constant", "warmup_epochs": 0}, help)

    def check_value(self, value, path, origins):
        from nnctl.nn.schedules import SCHEDULES

        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict):
            raise origins.error(path, f"must be a mapping like {{name: cosine}}; {got(value)}")
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
        _, filled = registry_build(SCHEDULES, name, options, path, origins)
        return {"name": name, "warmup_epochs": warmup, **filled}

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
