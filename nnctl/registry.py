"""Name -> component tables with option checking and "did you mean" suggestions.

Every activation, initializer, loss, optimizer, schedule and normalization is one entry in a
`Registry`. The config's choices, its option checks and `nnctl schema` are read from the
registries, so a new entry is accepted, validated and documented in the schema with no other edit.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator
from types import MappingProxyType
from typing import Any

from nnctl.errors import ConfigError, did_you_mean


class Registry:
    """A named table of components; `get` builds one from a name and an options dict."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def register(self, name: str) -> Callable:
        """Decorator: add a class or factory to the table under `name`."""

        def add(entry):
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._entries[name] = entry
            entry.registry_name = name
            return entry

        return add

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def entry(self, name: str, where: str = ""):
        """The registered class or factory for `name`; ConfigError with a suggestion if unknown."""
        if not isinstance(name, str) or name not in self._entries:
            where = where or self.kind
            raise ConfigError(f"{where}: unknown {self.kind} {name!r}{did_you_mean(name, self.names())}")
        return self._entries[name]

    def option_defaults(self, name: str) -> dict[str, Any]:
        """The options an entry accepts, with their defaults (from its constructor signature)."""
        return option_defaults(self.entry(name))

    def check_options(self, name: str, options: Any, where: str) -> dict[str, Any]:
        """Validate `options` for entry `name`; return them with defaults filled in."""
        return check_options(self.entry(name, where), options, where, f"{self.kind} '{name}'")

    def get(self, name: str, options: dict | None = None, where: str = ""):
        """Build the entry `name` with validated `options`."""
        where = where or self.kind
        opts = self.check_options(name, options or {}, where)
        try:
            return self.entry(name, where)(**opts)
        except ValueError as exc:  # entries reject out-of-range options with ValueError
            raise ConfigError(f"{where}: {exc}") from None


class Component:
    """Base of the stateless entries (activations, norms). A component's options are the parameters
    of its __init__, kept under the same names and never changed afterwards: __init__ stores them
    with `_set_options`, and setting an attribute later raises. Two components are equal when they
    are of one type with equal options, so specs holding them compare by value. (Not dataclasses:
    sixteen frozen dataclasses cost 5 ms of every start-up.)"""

    def _set_options(self, **options) -> None:
        vars(self).update(options)  # the one way in: __setattr__ refuses

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; build another one with the options you want")

    def __delattr__(self, name: str) -> None:
        self.__setattr__(name, None)

    @property
    def options(self) -> MappingProxyType:
        """The options it was built with, as the resolved config records them."""
        return MappingProxyType({name: getattr(self, name) for name in option_defaults(type(self))})

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.options == other.options

    def __hash__(self) -> int:
        return hash((type(self), tuple(self.options.items())))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.options.items())})"


def require(ok: bool, message: str) -> None:
    """One range rule of an entry's options: a ValueError with `message` unless `ok` (the registry
    turns it into a ConfigError naming the option's key)."""
    if not ok:
        raise ValueError(message)


_DEFAULTS: dict[Any, dict[str, Any]] = {}  # entry -> its defaults (inspect.signature costs a config ~0.4 ms)


def option_defaults(entry) -> dict[str, Any]:
    """Keyword parameters of a class or function, with their defaults (required ones as None)."""
    known = _DEFAULTS.get(entry)
    if known is None:
        target = entry.__init__ if inspect.isclass(entry) else entry
        known = {}
        for p in list(inspect.signature(target).parameters.values()):
            if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            known[p.name] = None if p.default is p.empty else p.default
        _DEFAULTS[entry] = known
    return dict(known)


def check_options(entry, options: Any, where: str, what: str) -> dict[str, Any]:
    """Check option names and value types against `entry`'s signature defaults."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ConfigError(f"{where} must be a mapping of options; got {type_name(options)}")
    defaults = option_defaults(entry)
    out = dict(defaults)
    for key, value in options.items():
        if key not in defaults:
            valid = ", ".join(defaults) if defaults else "none"
            hint = did_you_mean(key, defaults) if defaults else ""
            raise ConfigError(f"{where}: unknown option {key!r} for {what}{hint}; valid options: {valid}")
        out[key] = coerce_like(value, defaults[key], f"{where}.{key}")
    return out


def type_name(value: Any) -> str:
    """A user-facing name for the YAML type of `value`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value[:60]!r}" + ("..." if len(value) > 60 else "")
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def coerce_like(value: Any, default: Any, where: str) -> Any:
    """Check `value` has the type of `default` (int, float, bool, str, tuple of numbers)."""
    if default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false; got {type_name(value)}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer; got {type_name(value)}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number; got {type_name(value)}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string; got {type_name(value)}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or len(value) != len(default):
            raise ConfigError(f"{where} must be a list of {len(default)} numbers; got {type_name(value)}")
        return tuple(coerce_like(v, d, f"{where}[{i}]") for i, (v, d) in enumerate(zip(value, default)))
    return value
