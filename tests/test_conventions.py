"""The conventions every command keeps (README "Conventions"): strict --json everywhere, -o for
output files, -q/-qq, choices, NNCTL_RUNS_DIR and the other environment variables, help with
examples and plain metavars, a closed pipe ends quietly with exit 0, a missing path exits 2 after
the rest, and shell completion in bash."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from nnctl.cli import app
from nnctl.cli.app import is_path_option, option_choices

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
COMMANDS = get_command(app).commands  # name -> click command


def run(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def strict_json(text: str):
    """json.loads that refuses NaN, Infinity and -Infinity, as strict parsers (jq, JavaScript) do."""

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


MOONS = """
data:
  source: sklearn:moons
  options: {n_samples: 120, noise: 0.2}
model: {hidden: [6], bias_init: -3}   # dead ReLUs from the start: a DEAD_RELU finding
optimizer: {name: adam, lr: 0.01}
train: {epochs: 3}
"""
DIVERGES = """
data: {source: 'sklearn:moons', options: {n_samples: 120}}
model: {hidden: [6]}
optimizer: {name: sgd, lr: 1.0e+8}
train: {epochs: 3}
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A folder with a config, a finished run, a diverged one (NaN losses) and rows to predict."""
    root = tmp_path_factory.mktemp("conventions")
    (root / "moons.yaml").write_text(MOONS)
    (root / "diverges.yaml").write_text(DIVERGES)
    (root / "rows.csv").write_text("x0,x1\n" + "0.5,0.2\n-1.0,0.8\n" * 5000)  # more than a pipe holds
    (root / "data.csv").write_text("a,b,label\n" + "".join(f"{i % 7},{(i * 3) % 5}.5,{'yn'[i % 2]}\n"
                                                           for i in range(40)))
    runs = root / "runs"
    ok = run("train", root / "moons.yaml", "--runs-dir", runs, "-qq")
    assert ok.exit_code == 0, ok.output
    bad = run("train", root / "diverges.yaml", "--runs-dir", runs, "-qq")
    assert bad.exit_code == 1, bad.output
    return {"root": root, "runs": runs, "run": Path(ok.stdout.strip().splitlines()[-1]),
            "diverged": Path(bad.stdout.strip().splitlines()[-1])}


# every command, with the arguments that make it print its JSON, and the exit code to expect
def json_cases(w) -> dict[str, list[tuple[list, int]]]:
    root, runs, r = w["root"], w["runs"], w["run"]
    return {
        "train": [(["train", root / "moons.yaml", "--runs-dir", root / "more", "--json", "-qq"], 0),
                  (["train", root / "diverges.yaml", "--runs-dir", root / "more", "--json", "-qq"], 1)],
        "resume": [(["resume", r, "--epochs", 4, "--json", "-qq"], 0)],
        "sweep": [(["sweep", root / "diverges.yaml", "--grid", "optimizer.lr=0.01,1e8", "--jobs", 2,
                    "--runs-dir", root / "sweeps", "--json", "-q"], 1)],  # sgd at lr 1e8 diverges: NaN metrics
        "eval": [(["eval", r, "--json"], 0)],
        "predict": [(["predict", r, root / "rows.csv", "--proba", "--json"], 0)],
        "compare": [(["compare", runs, "--json"], 0), (["compare", runs, "--format", "json"], 0)],
        "plot": [(["plot", r, "-o", root / "p.png", "--json"], 0)],
        "inspect": [(["inspect", r, "--json"], 0), (["inspect", w["diverged"], "--json"], 0)],
        "report": [(["report", runs, "-o", root / "r.html", "--json"], 0)],
        "export": [(["export", r, "-o", root / "m.onnx", "--json"], 0)],
        "explain": [(["explain", "--json"], 0), (["explain", "he", "--json"], 0),
                    (["explain", "DEAD_RELU", "--lang", "vi", "--json"], 0)],
        "gradcheck": [(["gradcheck", root / "moons.yaml", "--json"], 0)],
        "lr-find": [(["lr-find", root / "moons.yaml", "--steps", 20, "--json"], 0)],
        "trace": [(["trace", root / "moons.yaml", "--set", "model.bias_init=0", "--json"], 0)],
        "gd": [(["gd", "x^2", "--json"], 0), (["gd", "x^2", "--lr", "1.5", "--steps", 2000, "--json"], 0)],
        "schema": [(["schema", "--json"], 0)],
        "datasets": [(["datasets", "--json"], 0)],
        "init": [(["init", root / "data.csv", "--json"], 0)],
    }


def test_json_cases_cover_every_command(world):
    assert set(json_cases(world)) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_json_output_is_one_strict_document(world, command):
    for args, code in json_cases(world)[command]:
        result = run(*args)
        assert result.exit_code == code, (args, result.stdout[-2000:], result.stderr[-2000:])
        assert "Traceback" not in result.stdout + result.stderr
        strict_json(result.stdout)  # the whole of stdout: one document, no NaN or Infinity


def test_json_nulls_the_non_finite_numbers(world):
    """The cases above are not vacuous: these documents do hold non-finite numbers, as null."""
    rows = strict_json(run("compare", world["diverged"], "--json").stdout)
    assert rows[0]["status"] == "diverged" and None in rows[0].values()
    layers = strict_json(run("inspect", world["run"], "--json").stdout)
    assert "null" in json.dumps(layers)  # update_ratio at epoch 0 is NaN in diagnostics.csv
    runs = strict_json(run("gd", "x^2", "--lr", "1.5", "--steps", 2000, "--json").stdout)["runs"]
    assert runs[0]["stopped"] == "diverged"


def test_predict_json_has_numbers_for_predictions(world):
    rows = strict_json(run("predict", world["run"], world["root"] / "rows.csv", "--proba", "--json").stdout)
    assert len(rows) == 10000 and rows[0]["x0"] == "0.5"
    assert rows[0]["prediction"] in ("0", "1") and abs(rows[0]["p_0"] + rows[0]["p_1"] - 1) < 1e-5


def test_compare_json_and_format_json_agree_and_conflict_is_an_error(world):
    assert run("compare", world["runs"], "--json").stdout == run("compare", world["runs"], "-f", "json").stdout
    clash = run("compare", world["runs"], "--json", "--format", "csv")
    assert clash.exit_code == 2 and "two formats" in clash.stderr


# ------------------------------------------------------------------------------------ options
def options(command) -> dict[str, object]:
    return {o: p for p in command.params for o in (*p.opts, *p.secondary_opts)}


def test_every_command_has_json_and_quiet():
    for name, command in COMMANDS.items():
        opts = options(command)
        assert "--json" in opts, name
        assert "-q" in opts and opts["-q"].count, f"{name}: -q must count (-qq)"


# path options that are not files a command writes: inputs, and folders runs go into
PATH_INPUTS = {("eval", "--data"), ("train", "--runs-dir"), ("sweep", "--runs-dir"), ("sweep", "--resume")}


def test_every_output_file_is_dash_o():
    """-o/--output names the file a command writes; the figure options of text commands are -o too,
    with --plot kept as the same option. A new path option must be -o or be listed as an input."""
    for name, command in COMMANDS.items():
        opts = options(command)
        for p in command.params:
            if p.param_type_name != "option" or not is_path_option(p):
                continue
            long = max(p.opts, key=len)
            assert p is opts.get("-o") or (name, long) in PATH_INPUTS, f"{name} {long}: an output file not -o"
    for name in ("compare", "inspect", "lr-find", "gd"):
        opts = options(COMMANDS[name])
        assert opts["--plot"] is opts["-o"] is opts["--output"], name


def test_figure_via_dash_o_and_the_older_plot_spelling(world, tmp_path):
    for flag in ("-o", "--plot"):
        png = tmp_path / f"curves{flag}.png"
        result = run("compare", world["runs"], flag, png, "-q")
        assert result.exit_code == 0, result.output
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fixed_choices_are_enums_listed_in_help_and_others_exit_2(world):
    for args, flag in ((["compare", world["runs"]], "--format"), (["explain", "he"], "--lang"),
                       (["train", world["root"] / "moons.yaml"], "--log"),
                       (["init", world["root"] / "data.csv"], "--decimal")):
        choices = option_choices(options(COMMANDS[args[0]])[flag])
        assert choices, (args[0], flag)
        help_text = run(args[0], "--help").stdout
        shown = "[" + "|".join(str(getattr(c, "value", c)) for c in choices) + "]"
        assert shown in help_text, (args[0], flag, shown)
        bad = run(*args, flag, "bogus")
        assert bad.exit_code == 2 and "bogus" in bad.output, (args[0], flag, bad.output)


def test_log_choices_are_the_configs():
    from nnctl.cli.app import Tracker
    from nnctl.config.spec import TRACKERS

    assert tuple(t.value for t in Tracker) == TRACKERS


# ------------------------------------------------------------------------------------ quiet
def test_quiet_keeps_findings_and_double_quiet_hides_them(tmp_path, world):
    cfg = world["root"] / "moons.yaml"
    loud = run("train", cfg, "--runs-dir", tmp_path)
    quiet = run("train", cfg, "--runs-dir", tmp_path, "-q")
    silent = run("train", cfg, "--runs-dir", tmp_path, "-qq")
    assert "completed:" in loud.stderr and "DEAD_RELU" in loud.stderr
    assert "DEAD_RELU" in quiet.stderr  # -q: findings still shown
    assert "completed:" not in quiet.stderr
    assert silent.stderr == ""
    assert all(r.exit_code == 0 and r.stdout.strip() for r in (loud, quiet, silent))


def test_quiet_hides_notes_but_not_errors(world, tmp_path):
    (tmp_path / "not-a-run").mkdir()
    loud = run("compare", world["runs"], tmp_path / "not-a-run")
    quiet = run("compare", world["runs"], tmp_path / "not-a-run", "-q")
    assert "note:" in loud.stderr and quiet.stderr == ""
    missing = run("compare", world["runs"], tmp_path / "gone", "-q")
    assert missing.exit_code == 2 and "gone: no such file or directory" in missing.stderr


# ------------------------------------------------------------------------------------ environment
def test_runs_dir_defaults_to_nnctl_runs_dir(world, tmp_path):
    target = tmp_path / "from-env"
    result = run("train", world["root"] / "moons.yaml", "-qq", env={"NNCTL_RUNS_DIR": str(target)})
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip()).parent == target
    for name in ("train", "sweep"):
        assert "env var: NNCTL_RUNS_DIR" in " ".join(run(name, "--help").stdout.split())


def test_every_environment_variable_the_code_reads_is_in_the_readme_table():
    section = re.search(r"### Environment variables\n(.*?)\n#", README, re.S).group(1)
    first_cells = re.findall(r"^\| ([^|]*`[A-Z_]+`[^|]*)\|", section, re.M)
    table = {name for cell in first_cells for name in re.findall(r"`([A-Z_]+)`", cell)}
    names = set()
    for path in (ROOT / "nnctl").rglob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r"[\"']((?:NNCTL|MLFLOW|XDG)_[A-Z_]+)[\"']", text))
        names |= set(re.findall(r"environ(?:\.get)?[(\[]\s*[\"']([A-Z_]+)[\"']", text))
    names |= {"_NNCTL_COMPLETE"}  # read by typer on nnctl's behalf
    assert names - table == set(), "README's environment table lacks these"
    assert table - names == set(), "README's environment table names variables nnctl does not read"


# ------------------------------------------------------------------------------------ help
def test_every_help_has_examples_plain_metavars_and_no_internal_references():
    for name, command in COMMANDS.items():
        text = run(name, "--help").stdout
        assert "Example" in text, f"{name} --help has no example"
        usage = text.splitlines()[0]
        assert "{" not in usage and "<" not in usage, usage
        ctx = command.context_class(command, info_name=name)
        for param in command.params:
            record = param.get_help_record(ctx)
            if record:  # the name column: `--runs-dir DIR`, `RUN_DIR...`, never `<path>` or `{CONFIG}`
                assert "<" not in record[0] and "{" not in record[0], (name, record[0])
        for bad in ("<list[", "<path>", "<str>", "<int", "<float"):
            assert bad not in text, (name, bad)
        assert not re.search(r"\bissue \d|\bitem \d", text, re.I), f"{name} --help names an internal reference"


def test_benchmark_help_has_no_internal_references():
    """A benchmark's --help is its docstring (argparse's description): no "issue 8, item 4" there."""
    import ast

    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert not re.search(r"\bissue \d|\bitem \d", doc, re.I), f"{path.name}: {doc.splitlines()[0]}"


# ------------------------------------------------------------------------------------ exit codes
def test_compare_names_a_missing_path_after_the_table_and_exits_2(world, tmp_path):
    result = run("compare", world["runs"], tmp_path / "nope")
    assert result.exit_code == 2
    assert "completed" in result.stdout and "diverged" in result.stdout  # the table of the others
    assert f"{tmp_path / 'nope'}: no such file or directory" in result.stderr
    as_json = run("compare", world["runs"], tmp_path / "nope", "--json")
    assert as_json.exit_code == 2 and len(strict_json(as_json.stdout)) == 2
    none = run("compare", tmp_path / "nope")
    assert none.exit_code == 2 and "no such file or directory" in none.stderr


def _closed_pipe(args: list, cwd: Path) -> subprocess.CompletedProcess:
    """Run nnctl with its stdout a pipe whose reader is gone before the first byte (`| head` after
    its lines, at the worst moment)."""
    proc = subprocess.Popen([sys.executable, "-m", "nnctl", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=cwd)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return subprocess.CompletedProcess(args, proc.wait(timeout=120), "", err)


@pytest.mark.parametrize("args", [["compare", "{runs}"], ["compare", "{runs}", "--json"], ["explain", "he"],
                                  ["predict", "{run}", "{rows}"], ["datasets", "--json"], ["--help"],
                                  ["schema"], ["gd", "x^2"]], ids=lambda a: " ".join(a))
def test_a_closed_pipe_exits_0_without_noise(world, args):
    args = [a.format(runs=world["runs"], run=world["run"], rows=world["root"] / "rows.csv") for a in args]
    done = _closed_pipe(args, world["root"])
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # no traceback, no "Exception ignored ... BrokenPipeError"


def test_a_shell_pipeline_into_head_exits_0(world):
    """The same through bash, with pipefail so nnctl's own exit code counts: `head -n 0` quits at once,
    as `head -n 1` does once it has its line (when exactly depends on the pipe buffer's timing)."""
    if shutil.which("bash") is None or shutil.which("head") is None:
        pytest.skip("needs bash and head")
    for command in (f'compare "{world["runs"]}"', f'predict "{world["run"]}" "{world["root"] / "rows.csv"}"'):
        script = f'set -o pipefail; "{sys.executable}" -m nnctl {command} | head -n 0'
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=world["root"])
        assert (done.returncode, done.stderr) == (0, ""), command


def test_a_broken_pipe_that_is_not_the_output_is_not_hidden():
    """Only our own output's reader leaving is a quiet exit 0; a pipe to a subprocess breaking is a bug."""
    from nnctl.cli.app import App, handle_errors

    demo = App()

    @demo.command()
    @handle_errors
    def write_to_a_dead_pipe():
        """Example: none."""
        read, write = os.pipe()
        os.close(read)
        os.write(write, b"x")

    @demo.command()
    def other():
        """Example: none."""

    result = CliRunner().invoke(demo, ["write-to-a-dead-pipe"])
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError), result


# ------------------------------------------------------------------------------------ completion
def test_bash_completion_completes_commands_options_and_choices(tmp_path):
    """`nnctl --show-completion bash` sourced into a real bash completes as a user's TAB would."""
    if shutil.which("bash") is None:
        pytest.skip("needs bash")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "nnctl"  # what `pip install` makes: argv[0] is nnctl, so the variable is _NNCTL_COMPLETE
    script.write_text(f"#!{sys.executable}\nfrom nnctl.cli import main\nmain()\n")
    script.chmod(0o755)
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": os.pathsep.join(paths)}

    def complete(*words: str) -> list[str]:
        line = " ".join(f"'{w}'" for w in words)
        bash = (f"source <(nnctl --show-completion bash); COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
                "_nnctl_completion nnctl; printf '%s\\n' \"${COMPREPLY[@]}\"")
        done = subprocess.run(["bash", "--norc", "--noprofile", "-c", bash], capture_output=True, text=True,
                              env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("nnctl", "tr") == ["train", "trace"]
    assert "--runs-dir" in complete("nnctl", "train", "--ru")
    assert complete("nnctl", "compare", "runs", "--format", "") == ["table", "csv", "json", "markdown"]
    assert complete("nnctl", "explain", "DEAD") == ["DEAD_RELU"]
    assert "x^2+5sin(x)" in complete("nnctl", "gd", "x")
