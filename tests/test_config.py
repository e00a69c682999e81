"""Config loading: YAML traps, overrides, auto resolution, per-layer inheritance, schema."""

from __future__ import annotations

import json
import re

import pytest

from nnctl.config.load import config_schema, load_spec, resolved_yaml
from nnctl.config.spec import SCHEMA
from nnctl.config.yamlio import load_yaml
from nnctl.errors import ConfigError

BASE = {"data": {"source": "sklearn:moons"}}


def spec_of(overrides=(), **sections):
    return load_spec(data={**BASE, **sections}, overrides=list(overrides))


def test_defaults_and_auto_values():
    c = spec_of()
    assert c.model.hidden == (16, 16) and [layer.units for layer in c.model.layers] == [16, 16]
    assert c.model.init == "he_normal"  # relu -> He
    assert c.optimizer.name == "adam" and c.optimizer.lr == 0.001  # torch's default
    assert c.optimizer.weight_decay == 0.0
    assert c.train.dtype == "float32" and c.train.epochs == 100
    assert c.data.options["random_state"] == 0  # every generator option recorded
    assert spec_of(optimizer={"name": "adamw"}).optimizer.weight_decay == 0.01
    assert spec_of(optimizer={"name": "rmsprop"}).optimizer.lr == 0.01


def test_the_spec_is_frozen_all_the_way_down():
    import dataclasses

    c = spec_of(model={"layers": [{"units": 4}]}, optimizer={"options": {"betas": [0.8, 0.9]}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.train.epochs = 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.model.layers[0].units = 5
    with pytest.raises(TypeError):
        c.optimizer.options["betas"] = (0.5, 0.5)  # read-only mapping
    with pytest.raises(AttributeError, match="immutable"):
        c.model.layers[0].activation.alpha = 0.5  # components are immutable too: config.yaml cannot lie
    assert c.optimizer.options["betas"] == (0.8, 0.9)


def test_a_spec_crosses_processes_intact():
    """Pickled (multiprocessing, Dask) or deep-copied, a spec is equal to itself and still frozen."""
    import copy
    import pickle

    spec = spec_of(model={"layers": [{"units": 4, "norm": "batch"}]}, optimizer={"schedule": "cosine"})
    for again in (pickle.loads(pickle.dumps(spec)), copy.deepcopy(spec)):
        assert again == spec and resolved_yaml(again) == resolved_yaml(spec)
        with pytest.raises(TypeError):
            again.data.options["n_samples"] = 5


def test_specs_compare_by_value():
    data = {"model": {"layers": [{"units": 4, "activation": "leaky_relu", "norm": "group",
                                  "norm_options": {"groups": 2}}]}}
    assert spec_of(**data) == spec_of(**data)
    assert spec_of(**data) != spec_of(model={"layers": [{"units": 4, "activation": "leaky_relu",
                                                          "activation_options": {"alpha": 0.2}}]})


def test_one_activation_object_serves_every_shorthand_layer():
    c = spec_of(model={"hidden": [5, 4, 3], "activation": "leaky_relu", "norm": "layer"})
    acts = {id(layer.activation) for layer in c.model.layers}
    norms = {id(layer.norm) for layer in c.model.layers}
    assert len(acts) == 1 and len(norms) == 1
    assert c.model.layers[0].activation.options == {"alpha": 0.01}


@pytest.mark.parametrize("activation,init", [("tanh", "xavier_uniform"), ("sigmoid", "xavier_uniform"),
                                             ("leaky_relu", "he_normal"), ("selu", "lecun_normal")])
def test_auto_init_follows_the_activation_family(activation, init):
    assert spec_of(model={"activation": activation}).model.init == init


def test_layers_inherit_model_settings_only_where_they_apply():
    spec = spec_of(model={
        "activation": "leaky_relu", "activation_options": {"alpha": 0.2}, "norm": "group",
        "norm_options": {"groups": 2}, "dropout": 0.1,
        "layers": [{"units": 8}, {"units": 6, "activation": "tanh", "norm": "batch"},
                   {"units": 4, "init": "normal", "dropout": 0.0}]})
    a, b, c = (layer.to_config() for layer in spec.model.layers)
    assert a["activation_options"] == {"alpha": 0.2} and a["norm_options"]["groups"] == 2
    assert a["init"] == "he_normal" and a["dropout"] == 0.1
    assert b["activation_options"] == {} and b["init"] == "xavier_uniform"  # tanh's own auto init
    assert b["norm_options"] == {"momentum": 0.1, "eps": 1e-5}  # batch norm's defaults, not group's
    assert c["init"] == "normal" and c["dropout"] == 0.0


def test_explicit_model_init_applies_to_every_layer():
    spec = spec_of(model={"init": "xavier_normal", "layers": [{"units": 3, "activation": "relu"},
                                                             {"units": 3, "activation": "tanh"}]})
    assert [layer.init for layer in spec.model.layers] == ["xavier_normal", "xavier_normal"]


def test_overrides_with_list_indices_and_nested_creation():
    spec = spec_of(["model.layers=[{units: 4}, {units: 3}]", "model.layers[1].units=7",
                    "model.layers.0.activation=tanh", "train.early_stopping.patience=3"])
    assert [layer.units for layer in spec.model.layers] == [4, 7]
    assert spec.model.layers[0].activation.registry_name == "tanh"
    assert spec.train.early_stopping.patience == 3


def test_early_stopping_true_means_defaults():
    from nnctl.config.spec import plain

    es = spec_of(train={"early_stopping": True}).train.early_stopping
    assert plain(es) == {"monitor": "val_loss", "mode": "auto", "patience": 10, "min_delta": 0.0, "restore_best": True}
    assert spec_of(train={"early_stopping": False}).train.early_stopping is None


def test_zeros_init_warns():
    from nnctl.diagnostics import config_findings

    found = config_findings(spec_of(model={"init": "zeros"}))
    assert [f["code"] for f in found] == ["ZEROS_INIT", "ZEROS_INIT"]  # both hidden layers
    assert "same thing" in found[0]["why"]


def test_error_points_at_file_line_and_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("data:\n  source: sklearn:moons\ntrain:\n  epochs: 0\n")
    message = r"c\.yaml, line 4: train\.epochs must be an integer >= 1 and <= 10000000; got number 0"
    with pytest.raises(ConfigError, match=message):
        load_spec(p)


def test_yaml_booleans_explained(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("data: {source: 'sklearn:moons'}\nmodel:\n  norm: off\n")
    with pytest.raises(ConfigError, match="got boolean false .*quote it"):
        load_spec(p)


def test_yaml_loader_safety():
    with pytest.raises(ConfigError, match="duplicate key"):
        load_yaml("a: 1\nb: 2\na: 3\n", "x.yaml")
    with pytest.raises(ConfigError, match="unsupported tag"):
        load_yaml("a: !!python/name:os.system\n", "x.yaml")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefg", "bcdefgh"))
    with pytest.raises(ConfigError):
        load_yaml(bomb, "bomb.yaml")
    data, lines = load_yaml("x:\n  y: 1e-3\n  z: [1, 2]\n", "x.yaml")
    assert data == {"x": {"y": 0.001, "z": [1, 2]}}
    assert lines[("x", "y")] == 2 and lines[("x", "z", 1)] == 3


def test_resolved_yaml_round_trips():
    spec = spec_of(model={"layers": [{"units": 5, "norm": "layer"}]}, optimizer={"schedule": "cosine"})
    again = load_spec(data=load_yaml(resolved_yaml(spec))[0])
    assert again == spec and resolved_yaml(again) == resolved_yaml(spec)


def test_json_schema_covers_every_key():
    schema = config_schema()
    json.dumps(schema)  # serializable
    props = schema["properties"]
    for section, field in SCHEMA.fields.items():
        assert section in props
        if hasattr(field, "fields"):
            sub = props[section]
            sub = sub["anyOf"][0] if "anyOf" in sub else sub  # nullable sections: object or null
            assert set(field.fields) == set(sub["properties"])
    assert "relu" in json.dumps(props["model"]["properties"]["activation"])


@pytest.mark.parametrize("text,message", [
    ("data: {source: sklearn:moons}\n# a comment with \x01 in it\n", "line 2: the character #x0001 is not allowed"),
    ("data: {source: sklearn:moons}\nseed: !!int abc\n", "line 2: cannot read 'abc' as int"),
    ("data: {source: sklearn:moons}\nname: !!timestamp 2001-13-45\n", "line 2: cannot read '2001-13-45' as timestamp"),
    ("data: {source: sklearn:moons}\nseed: !!float [1]\n", "line 2"),
])
def test_yaml_that_pyyaml_refuses_is_one_located_message(tmp_path, text, message):
    from nnctl.errors import ConfigError

    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_spec(p)
    with pytest.raises(ConfigError, match="cannot parse value"):
        load_spec(data={"data": {"source": "sklearn:moons"}}, overrides=["seed=!!int abc"])


def test_a_parsed_config_is_kept_but_every_caller_gets_its_own_copy():
    """load_yaml keeps what it parsed (a sweep reads one config per trial); changing what it returned
    must not change what the next call returns, and a bad document fails every time."""
    from nnctl.config import yamlio
    from nnctl.errors import ConfigError

    text = "name: a\nmodel: {hidden: [4, 2]}\ntrain: {epochs: 3}\n"
    first, lines = yamlio.load_yaml(text, "c.yaml")
    first["model"]["hidden"].append(99)
    first["train"]["epochs"] = 7
    lines.clear()
    again, lines2 = yamlio.load_yaml(text, "c.yaml")
    assert again == {"name": "a", "model": {"hidden": [4, 2]}, "train": {"epochs": 3}}
    assert lines2[("train", "epochs")] == 3
    assert (text, "c.yaml") in yamlio._PARSED
    for _ in range(2):
        with pytest.raises(ConfigError, match="line 2"):
            yamlio.load_yaml("a: 1\na: 2\n", "bad.yaml")


def test_libyaml_reads_what_nnctl_writes_exactly_as_the_python_parser_does():
    """`fast=True` (a run's config.yaml) parses with libyaml: on documents dumped by nnctl, with odd
    strings, exponents, inf/nan, deep nesting and every example config, it gives the same values
    and the same line of every key; text the Python reader refuses falls back to it (same message)."""
    import math
    import random

    from nnctl.config import yamlio

    if yamlio._CLoader is None:
        pytest.skip("PyYAML without libyaml")

    def same(a, b):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
            return math.isnan(b)
        if isinstance(a, dict):
            return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list):
            return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        return type(a) is type(b) and a == b

    rnd = random.Random(0)
    alphabet = "abz :-#'\"\n\t{}[],&*!|>%@`üé✓中\u00a0\u2028\x850123456789.eE+_"

    def text():
        return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 24)))

    def value(depth=0):
        r = rnd.random()
        if depth < 3 and r < 0.2:
            return {text(): value(depth + 1) for _ in range(rnd.randint(0, 4))}
        if depth < 3 and r < 0.35:
            return [value(depth + 1) for _ in range(rnd.randint(0, 18))]
        return rnd.choice([text(), rnd.randint(-10**20, 10**20), rnd.uniform(-1e6, 1e6), True, None,
                           float("inf"), float("nan"), rnd.random() * 1e-300, "1e-3", "010", "1:30", "0x1f"])

    docs = [yamlio.dump_yaml({text() or "k": value() for _ in range(rnd.randint(1, 5))}) for _ in range(400)]
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    docs += [resolved_yaml(load_spec(p)) for p in sorted((root / "configs").glob("*.yaml"))]
    docs.append("lr: 1e-3\nn: 010\nt: 1:30\nh: 0x1f\nl: [1, 2.5e+3]\n")
    by_libyaml = 0
    for i, doc in enumerate(docs):
        slow = yamlio._parse(doc, f"d{i}")
        try:
            c = yamlio._parse(doc, f"c{i}", yamlio._CLoader)
            by_libyaml += 1
        except ConfigError:
            c = slow
        fast = yamlio.load_yaml(doc, f"fast{i}", fast=True)
        assert same(slow[0], c[0]) and slow[1] == c[1], doc
        assert same(slow[0], fast[0]) and slow[1] == fast[1], doc
    assert by_libyaml >= len(docs) - 5
    for odd in ("a: !\nb: 1\n", "lr: 0.01\t# a comment after a tab\n", "a: ! x\n"):  # read alike: the Python parser
        try:
            expected = yamlio._parse(odd, "odd")
        except ConfigError as exc:
            with pytest.raises(ConfigError, match=re.escape(str(exc).split(": ", 1)[1][:20])):
                yamlio.load_yaml(odd, "odd", fast=True)
        else:
            assert same(expected[0], yamlio.load_yaml(odd, "odd", fast=True)[0])
    with pytest.raises(ConfigError, match=r"line 2: the character #x0007"):
        yamlio.load_yaml("a: 1\nb: \x07\n", "run/config.yaml", fast=True)
    with pytest.raises(ConfigError, match=r"line 2: found duplicate key 'a'|line 2.*duplicate"):
        yamlio.load_yaml("a: 1\na: 2\n", "run/config.yaml", fast=True)
