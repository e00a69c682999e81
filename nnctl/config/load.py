"""Loading a spec: YAML (or a mapping), `--set` overrides, validation, resolution, freezing.

`load_spec` checks every key before any work starts, fills in defaults and resolves every `auto`
the config alone decides (inits, learning rate, weight decay, per-layer settings); the result is a
frozen `Spec`. `resolve_data` settles what only the data decides (task, loss, the early-stopping
mode) and returns a new frozen spec. Errors of either stage name the file and line (or the
`--set`) of the key at fault, what was expected and what was found.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from nnctl.config.fields import Num, Origins, copy_plain, dotted, registry_build
from nnctl.config.spec import SCHEMA, Spec, build
from nnctl.errors import ConfigError, did_you_mean, printable
from nnctl.files import local_path, read_bytes
from nnctl.registry import type_name


def _read_run_config(path: Path) -> str:
    from nnctl.files import read_run_text

    try:
        return read_run_text(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except UnicodeDecodeError:
        raise
    except ValueError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from None


def load_spec(path: Path | str | None = None, overrides: list[str] | dict | None = None, *, data: dict | None = None,
              name: str | None = None, seed: int | None = None, log: str | None = None,
              base_dir: Path | None = None, check_files: bool = True, run_file: bool = False,
              memory: str | None = None) -> Spec:
    """Read, override, validate and resolve a config.

    Parameters: `path` a YAML file, or `data` an already-parsed mapping; `overrides` a list of
    'dotted.key=yaml-value' strings; `name`/`seed`/`log` override name, seed and train.log (the CLI's
    --name/--seed/--log); `check_files=False` skips checking that data and init_from files exist
    (reading a run dir), and spells an unprintable name as escapes instead of refusing it;
    `run_file=True` reads `path` as a file of a run directory (no symbolic link, regular files only);
    `memory` says the data are rows held in memory, named so in messages: data.source becomes that
    name and is not read. `overrides` may also be a mapping of dotted keys to Python values (the
    Python API).
    Returns a frozen Spec with every key. Raises ConfigError naming file, line and key.
    """
    from nnctl.config.yamlio import load_yaml

    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            text = _read_run_config(path) if run_file else read_bytes(path, "config file", ConfigError).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
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
        kind = "text" if isinstance(data, str) else type_name(data)  # text is not quoted: it may not be a config
        raise ConfigError(f"{source}: the config must be a mapping of keys (name, seed, data, model, optimizer, "
                          f"train); got {kind}. Is it a YAML config file?")
    data = copy_plain(data)
    if isinstance(overrides, dict):
        for key, value in overrides.items():
            apply_override(data, str(key), origins, value)
    else:
        for item in overrides or []:
            apply_override(data, item, origins)
    if memory is not None:
        if not isinstance(data.get("data"), dict):
            data["data"] = {}
        data["data"]["source"] = memory
    if name is not None:
        data["name"] = name
        origins.overrides[("name",)] = "--name"
    if seed is not None:
        data["seed"] = seed
        origins.overrides[("seed",)] = "--seed"
    if log is not None:
        if data.get("train") is None:
            data["train"] = {}
        if isinstance(data["train"], dict):  # (a train: that is not a mapping is reported below)
            data["train"]["log"] = log
            origins.overrides[("train", "log")] = f"--log {log}"
    c = SCHEMA.check(data, (), origins)
    c["name"] = _check_name(c["name"], default_name, check_files, origins)
    _check_data(c["data"], base_dir, check_files, origins, memory is not None)
    _resolve_model(c["model"], base_dir, check_files, origins)
    _resolve_optimizer(c["optimizer"], origins)
    spec = build(Spec, c).replace(source=source, base_dir=base_dir, origins=origins.freeze())
    _check_train(spec, origins)
    return spec


def _check_name(name: str | None, default: str, refuse: bool, origins: Origins) -> str:
    """The run name, which summary.json, tables and plots show: text that cannot be written as UTF-8
    (a lone surrogate from a "\\ud800" escape, or undecodable bytes on the command line) is refused
    in a config (`refuse`), and spelled as escapes in one read from a run dir or in a file name."""
    if name is None:
        return printable(default)
    if printable(name) == name:
        return name
    if not refuse:
        return printable(name)
    bad = next(ch for ch in name if printable(ch) != ch)
    raise origins.error(("name",), f"contains {ascii(bad)}, which is not a character (a lone surrogate, from an "
                                   f"escape such as \\ud800 or from bytes that are not UTF-8); write the name in "
                                   f"plain text; got {ascii(name)}")


_PARSE = object()  # apply_override: the value is the YAML text after '=' in `item`


def apply_override(data: dict, item: str, origins: Origins, value: Any = _PARSE) -> None:
    """Apply one 'dotted.key=value' override (value parsed as YAML) to nested `data` in place; with
    `value` given, `item` is the dotted key alone and `value` a Python value (the API's overrides)."""
    from nnctl.config.yamlio import parse_value

    if value is _PARSE and "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set optimizer.lr=0.01")
    key, text = item.split("=", 1) if value is _PARSE else (item, repr(value))
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
    value = parse_value(text, f"--set {key}") if value is _PARSE else copy_plain(value)
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


# ------------------------------------------------------------------------------------ resolution
def _check_data(d: dict, base_dir: Path, check_files: bool, origins: Origins, memory: bool = False) -> None:
    source = d["source"]
    if memory:  # rows in memory (the Python API): nothing to find or read
        if d["options"]:
            raise origins.error(("data", "options"), "applies to sklearn: datasets only, not to rows in memory")
    elif source.startswith("sklearn:"):
        from nnctl.data.builtins import BUILTINS

        name = source[len("sklearn:"):]
        if name not in BUILTINS:
            raise origins.error(("data", "source"), f"names an unknown built-in dataset {name!r}"
                                f"{did_you_mean(name, BUILTINS)}; `nnctl datasets` lists them")
        entry = BUILTINS[name]
        from nnctl.config.spec import DataSpec, config_fields

        fields = config_fields(DataSpec)
        for key in DataSpec.FILE_KEYS:
            if d[key] != fields[key].fill_default():
                raise origins.error(("data", key), f"applies to data files only, not to {source}")
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
            raise origins.error(("data", "options"), "applies to sklearn: datasets only; a data file takes "
                                "target, features, ignore, id, delimiter, ... (see `nnctl schema`)")
        p = _relative_to(source, base_dir)
        local = local_path(p)  # p itself, or a Dask worker's copy of the client's file p
        if check_files and not local.exists():
            hint = " (built-in datasets are written sklearn:<name>)" if "/" not in source and "." not in source \
                else ""
            raise origins.error(("data", "source"), f"file not found: {p}{hint}")
        if check_files and local.is_dir():
            raise origins.error(("data", "source"), f"is a directory, not a data file: {p}")
        if check_files and local.exists() and not local.is_file():
            raise origins.error(("data", "source"), f"is not a regular file (a pipe or a device?): {p}")
        # absolute: the run dir's config.yaml must find it too (a client's path stays as the client wrote it)
        d["source"] = str(p.resolve()) if local == p else str(p)
    s = d["split"]
    if s["val"] + s["test"] >= 0.9:
        raise origins.error(("data", "split"), f"leaves too little for training: val {s['val']} + test "
                            f"{s['test']} must be < 0.9")
    if d["pca_components"] is not None and d["preprocess"] not in ("pca", "whiten"):
        raise origins.error(("data", "pca_components"), f"applies to preprocess pca or whiten, not "
                            f"{d['preprocess']}")


def _relative_to(path: str, base_dir: Path) -> Path:
    """A path as the config writes it: relative to the config file's folder (absolute unchanged)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir / p


def _auto_init(activation) -> str:
    from nnctl.nn.init import AUTO_INIT

    return AUTO_INIT[activation.init_family]


def _resolve_model(m: dict, base_dir: Path, check_files: bool, origins: Origins) -> None:
    """Build every hidden layer's LayerDef (each activation and norm object once), resolve inits."""
    from nnctl.nn.activations import ACTIVATIONS
    from nnctl.nn.model import LayerDef
    from nnctl.nn.norms import NORMS

    if m["hidden"] is not None and m["layers"] is not None:
        raise origins.error(("model",), "sets both hidden and layers; use hidden for the shorthand or layers for "
                            "per-layer settings, not both")
    model_act, m["activation_options"] = registry_build(ACTIVATIONS, m["activation"], m["activation_options"],
                                                        ("model", "activation_options"), origins)
    model_norm = None
    if m["norm"] != "none":
        model_norm, m["norm_options"] = registry_build(NORMS, m["norm"], m["norm_options"], ("model", "norm_options"),
                                                       origins)
    elif m["norm_options"]:
        raise origins.error(("model", "norm_options"), "is set but model.norm is none")
    init_written = m["init"]
    if m["init"] == "auto":  # the output layer's init follows the model-level activation
        m["init"] = _auto_init(model_act)

    shorthand = m["layers"] is None
    if shorthand:
        if m["hidden"] is None and (("model", "hidden") in origins.lines or ("model", "hidden") in origins.overrides):
            raise origins.error(("model", "hidden"), "is null; give the hidden layer sizes, e.g. [16, 16], [] for no "
                                "hidden layer, or use model.layers")
        if m["hidden"] is None:
            m["hidden"] = [16, 16]
        entries = [{"units": u} for u in m["hidden"]]
    else:
        entries = m["layers"]
    layers = []
    for i, entry in enumerate(entries):
        # shorthand layers take their options from model-level keys, so errors point there
        path = ("model",) if shorthand else ("model", "layers", i)
        act_name = entry.get("activation") or m["activation"]
        opts = entry.get("activation_options")
        if opts is None and act_name == m["activation"]:
            act = model_act  # the model-level object: activations hold no state, layers can share one
        else:
            act, _ = registry_build(ACTIVATIONS, act_name, opts or {}, (*path, "activation_options"), origins)
        init = entry.get("init") or init_written
        norm_name = entry.get("norm") or m["norm"]
        nopts = entry.get("norm_options")
        norm = None
        if norm_name == "none":
            if nopts:
                raise origins.error((*path, "norm_options"), "is set but this layer has no norm")
        else:
            if nopts is None and norm_name == m["norm"]:
                norm = model_norm
            else:
                norm, _ = registry_build(NORMS, norm_name, nopts or {}, (*path, "norm_options"), origins)
            try:
                norm.check_width(entry["units"] * act.pieces)
            except ValueError as exc:
                where = dotted((*path, "norm_options"))
                raise ConfigError(f"{origins.where((*path, 'norm_options'))}: {where}: layer {i + 1}: {exc}") from None
        inherit = {k: (entry.get(k) if entry.get(k) is not None else m[k]) for k in ("init_std", "bias_init",
                                                                                   "dropout")}
        layers.append(LayerDef(units=entry["units"], activation=act, init=_auto_init(act) if init == "auto" else init,
                               norm=norm, **inherit))
    m["layers"] = layers
    if m["init_from"] is not None:
        p = _relative_to(m["init_from"], base_dir)
        local = local_path(p)
        if check_files and not local.is_file():
            raise origins.error(("model", "init_from"), f"file not found: {p}")
        m["init_from"] = str(p.resolve()) if local == p else str(p)


def _resolve_optimizer(o: dict, origins: Origins) -> None:
    from nnctl.nn.optimizers import OPTIMIZERS

    built, options = registry_build(OPTIMIZERS, o["name"], o["options"], ("optimizer", "options"), origins)
    o["options"] = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    if o["lr"] == "auto":
        o["lr"] = built.default_lr
    if o["weight_decay"] == "auto":
        o["weight_decay"] = built.default_weight_decay


def _check_train(spec: Spec, origins: Origins) -> None:
    t = spec.train
    norm = spec.model.batch_stats_norm
    if norm is not None and t.rows_per_step(n_rows=2) == 1:  # gd stochastic, or minibatch of 1 row
        raise origins.error(("train", "gd"), f"gives 1 row per step ({t.gd}"
                            f"{', batch_size 1' if t.gd == 'minibatch' else ''}), but {norm} norm needs at "
                            "least 2 rows to compute batch statistics; use minibatch with batch_size >= 2, or "
                            "norm: layer")
    es = t.early_stopping
    if es is not None and es.monitor.startswith("val_") and spec.data.split.val == 0:
        raise origins.error(("train", "early_stopping", "monitor"), f"is {es.monitor}, but data.split.val is 0 "
                            "(no validation rows); set a val fraction or monitor train_loss")



def resolve_data(spec: Spec, task: str, n_classes: int) -> Spec:
    """The spec with what needs the data filled in: task, loss, the early-stopping mode.

    Raises ConfigError at the key that does not fit the data (a loss for the other task, bce on
    more than two classes, a monitored metric the task lacks).
    """
    from nnctl.metrics import higher_is_better, metric_names
    from nnctl.nn.losses import LOSSES, auto_loss

    origins = spec.origins or Origins(spec.source)
    t = spec.train
    loss = auto_loss(task, n_classes) if t.loss == "auto" else t.loss
    loss_task = LOSSES.entry(loss).task
    # mse on a classification task, asked for explicitly: squared error of the probabilities
    # (losses.ProbabilityMSE); `auto` never picks it, and config_findings warns MSE_CLASSIFICATION
    if loss_task != task and not (loss == "mse" and task == "classification"):
        kinds = "cross_entropy, bce, mse, hinge or perceptron" if task == "classification" else "mse, mae or huber"
        raise origins.error(("train", "loss"), f"is {loss}, a {loss_task} loss, but the data is a {task} task; use "
                            f"auto or {kinds}")
    if task == "classification" and n_classes < 2:
        raise origins.error(("data", "source"), "has a single class; classification needs at least 2")
    if loss == "bce" and n_classes != 2:
        raise origins.error(("train", "loss"), f"bce is for binary tasks (one sigmoid unit); this data has "
                            f"{n_classes} classes: use cross_entropy or auto")
    if loss in ("hinge", "perceptron"):
        _check_margin_loss(spec, origins, loss, n_classes)
    es = t.early_stopping
    if es is not None:
        watchable = ["val_loss", *(f"val_{m}" for m in metric_names(task))]
        if es.monitor not in ("train_loss", *watchable):
            raise origins.error(("train", "early_stopping", "monitor"), f"is {es.monitor}, but this is a {task} "
                                f"task; use {', '.join(watchable[:-1])} or {watchable[-1]}")
        if es.mode == "auto":
            es = es.replace(mode="max" if higher_is_better(es.monitor) else "min")
    return spec.replace(data=spec.data.replace(task=task), train=t.replace(loss=loss, early_stopping=es))


def _check_margin_loss(spec: Spec, origins: Origins, loss: str, n_classes: int) -> None:
    """hinge and perceptron learn raw scores: no class weights; the perceptron is one binary neuron."""
    if spec.train.class_weight != "none":
        raise origins.error(("train", "class_weight"), f"is not supported with loss {loss}; use none, or "
                            "cross_entropy/bce for a weighted loss")
    if loss != "perceptron":
        return
    if n_classes != 2:
        raise origins.error(("train", "loss"), f"perceptron is Rosenblatt's binary classifier (one unit, step "
                            f"output); this data has {n_classes} classes: use hinge, cross_entropy or auto")
    if spec.model.layers:
        raise origins.error(("model", "hidden"), f"has {len(spec.model.layers)} hidden layer(s), but loss "
                            "perceptron is a single neuron (its step has no gradient to pass back): set "
                            "model.hidden: [], or use bce or hinge for a network with hidden layers")


def resolved_yaml(spec: Spec) -> str:
    """The resolved config as YAML, with a header saying what it is. A run asks for it twice (its
    config.yaml, its checkpoint's digest); the last one is kept: a spec is frozen."""
    from nnctl.config.yamlio import dump_yaml

    last = _resolved[0]
    if last is not None and last[0] is spec:
        return last[1]
    text = HEADER + dump_yaml(spec.to_config())
    _resolved[0] = (spec, text)
    return text


_resolved: list[tuple[Spec, str] | None] = [None]


HEADER = "# Resolved by nnctl: every default filled in. `nnctl train` on this file reruns the experiment.\n"


def config_schema() -> dict:
    """JSON Schema (draft 2020-12) of the config format, generated from the spec's field table."""
    s = SCHEMA.value_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "nnctl experiment config", **s}
