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


# ------------------------------------------------------------------------------------ README commands
SHELL_WORDS = {"do", "then", "else", "time", "!", "{", "exec"}


def _logical_lines(block: str) -> list[str]:
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def _segments(line: str) -> list[list[str]]:
    """The simple commands of a shell line: split at | ; && || & ( ) and $( ), leading shell keywords
    and VAR=value assignments dropped."""
    import shlex

    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    out, current = [], []
    for token in lex:
        if token and set(token) <= set("|;&()<>"):
            out.append(current)
            current = []
        else:
            current.append(token)
    out.append(current)
    cleaned = []
    for words in out:
        while words and (words[0] in SHELL_WORDS or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0])):
            words = words[1:]
        if words:
            cleaned.append(words)
    return cleaned


def readme_shell_commands() -> list[list[str]]:
    """Every command the README shows to type: the lines of its ```bash blocks, and the `$ ...`
    lines of its plain blocks (shown with their output)."""
    commands = []
    for lang, block in re.findall(r"```(\w*)\n(.*?)```", README, re.S):
        if lang == "bash":
            lines = _logical_lines(block)
        elif lang == "":
            lines = [line[2:] for line in _logical_lines(block) if line.startswith("$ ")]
            lines += [line for line in _logical_lines(block) if re.match(r"(NNCTL_\w+=\S+ )?nnctl [a-z]", line)
                      and not _is_synopsis(line)]
        else:
            continue
        for line in lines:
            commands += _segments(line)
    return commands


def _is_synopsis(line: str) -> bool:
    """`nnctl train CONFIG [--set KEY=VALUE]...`: a usage line (placeholders in capitals, options in [])."""
    return bool(re.match(r"nnctl [a-z-]+ ([A-Z_.\[]|\[)", line)) or "[" in line.split("#")[0]


def readme_synopses() -> list[tuple[str, list[str]]]:
    """(command, its options) for every usage line of the README's plain blocks."""
    out = []
    for lang, block in re.findall(r"```(\w*)\n(.*?)```", README, re.S):
        if lang != "":
            continue
        current = None
        for line in block.splitlines():
            m = re.match(r"nnctl ([a-z-]+) ", line)
            if m and _is_synopsis(line):
                current = m.group(1)
                out.append((current, re.findall(r"(?<![\w-])(-{1,2}[a-z][a-z0-9-]*)", line.split("#")[0])))
            elif current and line.startswith(" ") and line.strip().startswith("["):  # a continued usage line
                out[-1][1].extend(re.findall(r"(?<![\w-])(-{1,2}[a-z][a-z0-9-]*)", line))
            else:
                current = None
    return out


def test_readme_shell_commands_parse():
    """Each nnctl command the README shows names a real command, and its options, choices and
    arguments parse as nnctl would parse them (without running it); the files it names exist."""
    from typer.main import get_command

    from nnctl.cli import app

    group = get_command(app)
    seen = 0
    for words in readme_shell_commands():
        head, args = words[0], words[1:]
        for arg in args:  # files the examples rely on
            if re.match(r"(configs|datasets|examples)/[\w./-]+$", arg) and not any(c in arg for c in "*?$"):
                assert (ROOT / arg).exists(), f"README: {' '.join(words)}: {arg} does not exist"
        if head == "python" and args[:1] == ["-m"] and args[1].startswith("benchmarks."):
            assert (ROOT / (args[1].replace(".", "/") + ".py")).is_file(), " ".join(words)
        if head != "nnctl":
            continue
        seen += 1
        if args and args[0].startswith("-"):  # nnctl --install-completion, ...
            assert all(a in {o for p in group.params for o in p.opts} or not a.startswith("-") for a in args), words
            continue
        assert args and args[0] in group.commands, f"README: {' '.join(words)}: no such command"
        command = group.commands[args[0]]
        parent = group.context_class(group, info_name="nnctl")
        try:
            command.make_context(args[0], list(args[1:]), parent=parent)
        except Exception as exc:  # click's UsageError, BadParameter, ...
            raise AssertionError(f"README: {' '.join(words)}: {exc}") from None
    assert seen > 25, seen  # the extraction found the README's commands


def test_readme_usage_lines_name_real_options():
    from typer.main import get_command

    from nnctl.cli import app

    commands = get_command(app).commands
    synopses = readme_synopses()
    assert {name for name, _ in synopses} == set(commands), "every command has a usage line in the README"
    for name, flags in synopses:
        params = commands[name].params
        known = {o for p in params for o in (*p.opts, *p.secondary_opts)}
        for flag in flags:
            if flag == "-qq":
                flag = "-q"
            assert flag in known, f"README: nnctl {name} {flag}: no such option"


def readme_outputs() -> list[tuple[list[str], list[str]]]:
    """(command, output lines) of the README's blocks marked `readme-output`."""
    out = []
    for block in re.findall(r"<!-- readme-output:[^>]*-->\n```\n(.*?)```", README, re.S):
        lines = block.rstrip("\n").splitlines()
        assert lines[0].startswith("$ nnctl "), lines[0]
        out.append((lines[0][2:].split()[1:], lines[1:]))
    return out


def _pattern(line: str) -> str:
    """A README output line as a regex over whitespace-normalized output: times and run-dir stamps vary."""
    text = re.escape(" ".join(line.split()))
    text = re.sub(r"\d+\\\.\d+\\ s\b", r"[0-9.]+\\ s", text)  # "in 0.27 s"
    return re.sub(r"\d{8}\\-\d{6}\\-[0-9a-f]{6}", r"\\d{8}-\\d{6}-[0-9a-f]{6}", text)


def test_readme_sample_outputs_are_what_nnctl_prints(tmp_path, monkeypatch):
    """The marked output samples: each line (but `...` and the times) is in what the command prints."""
    import shlex

    from typer.testing import CliRunner

    from nnctl.cli import app

    samples = readme_outputs()
    assert len(samples) >= 3
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    for words, expected in samples:
        args = shlex.split(" ".join(words))
        result = CliRunner().invoke(app, args, env={"COLUMNS": "100"})
        assert result.exit_code == 0, (args, result.output)
        printed = " ".join((result.stdout + "\n" + result.stderr).split())
        for line in expected:
            if line.strip() in ("...", ""):
                continue
            assert re.search(_pattern(line), printed), f"README: `nnctl {' '.join(words)}` no longer prints: {line}"
