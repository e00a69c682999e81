"""Safe YAML reading for configs: line numbers per key, duplicate keys refused, `1e-3` is a number.

PyYAML implements YAML 1.1, whose float pattern needs a dot, so `lr: 1e-3` would load as the
string "1e-3". We add a resolver for exponent-only floats. Mappings and sequences are built by our
own walk over the composed node tree so that every key's line is known, duplicates are caught, only
plain tags are accepted, and alias expansion ("billion laughs") is bounded.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from nnctl.errors import ConfigError

MAX_NODES = 200_000  # far above any real config; stops alias bombs in milliseconds

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-3` and `-2E5` as floats."""


_EXP_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXP_FLOAT, list("-+0123456789"))


def _construct_int(loader, node):
    """YAML 1.1 reads `010` as octal 8 and `1:30` as base-60 90; we read them as YAML 1.2 does:
    `010` is ten, `1:30` is the string '1:30'. Hex (0x1f) and binary (0b101) stay as they are."""
    text = loader.construct_scalar(node)
    if ":" in text:
        return text
    digits = text.replace("_", "")
    if re.fullmatch(r"[-+]?0[0-9]+", digits):
        return int(digits, 10)
    return yaml.SafeLoader.construct_yaml_int(loader, node)


def _construct_float(loader, node):
    """Base-60 floats (`1:30.5`) stay strings, as in YAML 1.2."""
    text = loader.construct_scalar(node)
    if ":" in text:
        return text
    return yaml.SafeLoader.construct_yaml_float(loader, node)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)

# The same loader on libyaml's parser (when PyYAML has it): about 8x faster on the ~90-line config.yaml
# of a run, which `compare` and a sweep's final table read once per run. Scalars are still resolved
# and built by the Python classes above, so the values are the same; used only for files nnctl
# wrote (`fast=True`), and anything it refuses is read again by the Python parser, whose messages
# (line, problem) the user sees; so is text with a tab or a tag mark (`!`), which the two read
# differently in places (a tab after a value, an empty tag) and nnctl's own files never hold.
_CLoader = None
if getattr(yaml, "__with_libyaml__", False):
    class _CLoader(yaml.CSafeLoader):  # type: ignore[no-redef]
        pass

    _CLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXP_FLOAT, list("-+0123456789"))
    _CLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
    _CLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def _mark(source: str, mark) -> str:
    return f"{source}, line {mark.line + 1}" if mark is not None else source


# Parsed documents by (text, source): a sweep reads the same config and `--set` values for every
# trial (49 parses of configs/moons.yaml cost a 48-trial sweep 0.18 s of its planning). Callers get
# copies; errors are not kept (each parse that fails raises again).
_PARSED: dict[tuple[str, str], tuple[Any, dict[tuple, int]]] = {}
_PARSED_MAX, _PARSED_TEXT_MAX = 256, 1 << 16


def load_yaml(text: str, source: str = "<config>", fast: bool = False) -> tuple[Any, dict[tuple, int]]:
    """Parse one YAML document safely.

    Returns the data and a map from key paths (tuples of keys and list indices) to 1-based lines.
    Raises ConfigError naming `source` and the line for syntax errors, duplicate keys and tags.
    `fast`: parse with libyaml first (a file nnctl wrote: a run's config.yaml).
    """
    key = (text, source)
    hit = _PARSED.get(key)
    if hit is None and fast and _CLoader is not None and "\t" not in text and "!" not in text \
            and not yaml.reader.Reader.NON_PRINTABLE.search(text):  # what the Python reader refuses, tags
        try:
            hit = _parse(text, source, _CLoader)
        except ConfigError:
            hit = None
    if hit is None:
        hit = _parse(text, source)
        if len(text) <= _PARSED_TEXT_MAX:
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[key] = hit
    return _copy(hit[0]), dict(hit[1])


def _copy(v: Any) -> Any:
    """A deep copy of parsed YAML (mappings and lists of immutable scalars)."""
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def _parse(text: str, source: str, kind=_Loader) -> tuple[Any, dict[tuple, int]]:
    lines: dict[tuple, int] = {}
    budget = [MAX_NODES]
    loader = None
    try:
        loader = kind(text)  # (it reads the text at once: a control character fails here)
        node = loader.get_single_node()
        if node is None:
            return None, lines
        return _build(loader, node, (), lines, budget, source), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if "could not determine a constructor" in problem:
            problem = f"unsupported tag {mark_tag(problem)} (only plain YAML values are allowed)"
        raise ConfigError(f"{_mark(source, mark)}: {problem}") from None
    except yaml.reader.ReaderError as exc:  # a control character, anywhere (a comment too)
        line = text[:exc.position].count("\n") + 1 if isinstance(exc.position, int) else "?"
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
        raise ConfigError(f"{source}, line {line}: the character #x{char:04x} is not allowed in YAML; "
                          f"remove it") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML ({str(exc)[:200]})") from None
    except RecursionError:
        raise ConfigError(f"{source}: YAML nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def mark_tag(problem: str) -> str:
    """Pull the tag out of PyYAML's 'could not determine a constructor for the tag X' message."""
    m = re.search(r"tag '?([^' ]+)'?", problem)
    return f"'{m.group(1)}'" if m else ""


def _build(loader, node, path, lines, budget, source):
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError(f"{source}: YAML expands to more than {MAX_NODES} values (an alias bomb?)")
    if isinstance(node, yaml.MappingNode):
        if node.tag != _MAP_TAG:
            raise ConfigError(f"{_mark(source, node.start_mark)}: unsupported tag '{node.tag}'")
        loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
        out: dict = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(f"{_mark(source, key_node.start_mark)}: a key must be a plain word")
            key = _scalar(loader, key_node, source)
            if isinstance(key, bool) or key is None:  # keys are names: `yes: 5` (a class label) is 'yes', not True
                key = str(key_node.value)
            elif not isinstance(key, str):
                key = str(key)
            dotted = ".".join(str(p) for p in (*path, key))
            if key in out:
                first = lines.get((*path, key))
                raise ConfigError(
                    f"{_mark(source, key_node.start_mark)}: duplicate key '{dotted}'"
                    + (f" (first set on line {first})" if first else "")
                )
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _build(loader, value_node, (*path, key), lines, budget, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _SEQ_TAG:
            raise ConfigError(f"{_mark(source, node.start_mark)}: unsupported tag '{node.tag}'")
        items = []
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            items.append(_build(loader, item, (*path, i), lines, budget, source))
        return items
    return _scalar(loader, node, source)


def _scalar(loader, node, source: str) -> Any:
    """A scalar node's value; an explicit tag whose text does not fit (`!!int abc`) is a ConfigError."""
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:
        tag = node.tag.rsplit(":", 1)[-1]
        shown = str(node.value)[:40]
        raise ConfigError(f"{_mark(source, node.start_mark)}: cannot read {shown!r} as {tag} ({exc})") from None


def parse_value(text: str, where: str) -> Any:
    """Parse a `--set` value as YAML (so `0.01`, `[64,32]`, `null`, `1e-3` all work)."""
    try:
        value, _ = load_yaml(text, where)
    except ConfigError as exc:
        raise ConfigError(f"{where}: cannot parse value {text!r} ({exc})") from None
    return value


class _Dumper(yaml.SafeDumper):
    """Writes short lists of scalars in flow style: `hidden: [16, 16]`."""


def _represent_list(dumper, data):
    flow = all(isinstance(x, (int, float, str, bool)) or x is None for x in data) and len(data) <= 16
    return dumper.represent_sequence(_SEQ_TAG, data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(tuple, _represent_list)


def dump_yaml(data: Any) -> str:
    """Serialize plain data as block YAML with flow-style short lists, keys in insertion order."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)
