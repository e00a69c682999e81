"""The README stays true: its commands, its config example and its lists of components."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from nnctl.config.load import load_spec
from nnctl.nn.activations import ACTIVATIONS
from nnctl.nn.init import INITS
from nnctl.nn.losses import LOSSES
from nnctl.nn.norms import NORMS
from nnctl.nn.optimizers import OPTIMIZERS
from nnctl.nn.schedules import SCHEDULES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_quick_start_has_exactly_the_two_commands_and_ci_runs_the_test_one():
    block = re.search(r"## Quick start\n\n```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert block == ['pip install -e . && nnctl train configs/moons.yaml',
                     'pip install -e ".[test]" && python -m pytest']
    assert block[1] in (ROOT / ".ci" / "run").read_text()
    assert (ROOT / "configs" / "moons.yaml").is_file()


def test_readme_config_example_is_valid():
    text = re.search(r"## A config\n\n```yaml\n(.*?)```", README, re.S).group(1)
    spec = load_spec(data=yaml.safe_load(text), base_dir=ROOT)
    assert spec.model.hidden == (16, 16)


def test_every_component_is_in_the_readme():
    for registry in (ACTIVATIONS, INITS, LOSSES, NORMS, OPTIMIZERS, SCHEDULES):
        for name in registry.names():
            assert re.search(rf"\b{name}\b", README), f"README does not mention {registry.kind} {name!r}"
    for option_name in {o for r in (ACTIVATIONS, NORMS, OPTIMIZERS, SCHEDULES) for n in r.names()
                        for o in r.option_defaults(n)}:
        assert f"`{option_name}`" in README, f"README does not mention option {option_name!r}"


def test_every_example_config_is_in_the_readme_table():
    for config in (ROOT / "configs").glob("*.yaml"):
        assert f"| {config.stem} |" in README, config.stem


def test_every_command_is_documented():
    from typer.main import get_command

    from nnctl.cli import app

    for name in get_command(app).commands:
        assert f"nnctl {name}" in README, name
