"""Config fuzzing: hostile mutations through the real YAML loader and CLI never produce a traceback.

Each mutation replaces one key anywhere in a valid config with a value of the wrong type, out of
range, NaN/inf, a huge integer or a nested structure, or adds an unknown key at some depth. The
run must end with exit 0, exit 1 for a training failure it explains (divergence), or exit 2 with
at most three lines on stderr that name the key. NNCTL_FUZZ_EXAMPLES raises the example count.
"""

from __future__ import annotations

import math
import os

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nnctl.cli import app

EXAMPLES = int(os.environ.get("NNCTL_FUZZ_EXAMPLES", "300"))

BASE = {
    "name": "fuzz", "seed": 0,
    "data": {"source": "sklearn:xor", "options": {"n_samples": 60, "noise": 0.1},
             "split": {"val": 0.2, "test": 0.2, "stratify": True}, "preprocess": "standardize"},
    "model": {"hidden": [4], "activation": "relu", "init": "auto", "dropout": 0.0, "norm": "none",
              "layers": None, "bias_init": 0.0, "activation_options": {}, "norm_options": {}},
    "optimizer": {"name": "adam", "lr": 0.01, "weight_decay": 0.0, "options": {},
                  "schedule": {"name": "constant", "warmup_epochs": 0}, "clip_grad_norm": None},
    "train": {"epochs": 2, "gd": "minibatch", "batch_size": 16, "loss": "auto", "shuffle": True,
              "early_stopping": None, "stop_at_loss": None, "checkpoint_every": 1, "dtype": "float32",
              "diagnostics": True},
}


def paths(d, prefix=()):
    for k, v in d.items():
        yield (*prefix, k)
        if isinstance(v, dict):
            yield from paths(v, (*prefix, k))


PATHS = list(paths(BASE))
def lookup(path):
    d = BASE
    for k in path:
        d = d[k]
    return d


SECTIONS = [()] + [p for p in PATHS if isinstance(lookup(p), dict)]

hostile = st.one_of(
    st.sampled_from(["", "auto", "relu", "no", "yes", "1e-3", "[", "{a: 1}", "sklearn:nope", "../../etc/passwd"]),
    st.sampled_from([-1, 0, 1, 2, 10**30, -10**30, 2**63, 3]),
    st.sampled_from([0.0, -0.5, 0.5, 1.0, 1.5, 1e308, -1e308, math.nan, math.inf, -math.inf, 1e-300]),
    st.booleans(), st.none(),
    st.lists(st.integers(-3, 70), max_size=4),
    st.dictionaries(st.sampled_from(["name", "x", "alpha", "units", "momentum"]),
                    st.one_of(st.integers(-2, 5), st.text(max_size=3)), max_size=2),
    st.text(max_size=8),
)


def set_path(d, path, value):
    for k in path[:-1]:
        if not isinstance(d.get(k), dict):
            d[k] = {}
        d = d[k]
    d[path[-1]] = value


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_config_mutations_never_crash(tmp_path_factory, data):
    import copy

    cfg = copy.deepcopy(BASE)
    if data.draw(st.booleans(), label="unknown key"):
        section = data.draw(st.sampled_from(SECTIONS), label="section")
        path = (*section, data.draw(st.sampled_from(["bogus", "epoch", "lr_rate", "hiden", "Seed"]), label="key"))
    else:
        path = data.draw(st.sampled_from(PATHS), label="path")
    value = data.draw(hostile, label="value")
    set_path(cfg, path, value)
    tmp = tmp_path_factory.mktemp("fuzz")
    cfg_file = tmp / "c.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(app, ["train", str(cfg_file), "--runs-dir", str(tmp / "runs"), "-q"])
    err = result.stderr
    assert "Traceback" not in err + result.stdout
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        f"{path}={value!r}: {result.exception!r}"
    assert result.exit_code in (0, 1, 2), (path, value, result.exit_code, err)
    if result.exit_code == 1:
        assert "diverged" in err, (path, value, err)
    if result.exit_code == 2:
        lines = err.strip().splitlines()
        assert 1 <= len(lines) <= 3, (path, value, err)
        named = [str(p) for p in path if isinstance(p, str)]
        assert any(n in err for n in named) or "data.source" in err or "--runs-dir" in err, (path, value, err)
