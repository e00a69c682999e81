"""The shape of the code: the read side never depends on training; start-up stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nnctl"
READ_SIDE = ["nnctl.evaluate", "nnctl.compare", "nnctl.inspect", "nnctl.checks", "nnctl.plot", "nnctl.diagnostics"]


def _module_file(name: str) -> Path | None:
    if name == "nnctl":
        return PACKAGE / "__init__.py"
    rel = Path(*name.split(".")[1:])
    for p in (PACKAGE / rel.with_suffix(".py"), PACKAGE / rel / "__init__.py"):
        if p.is_file():
            return p
    return None


def _nnctl_imports(path: Path) -> set[str]:
    """Every nnctl module a file imports, at the top or inside a function (lazy imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("nnctl")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nnctl"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if _module_file(f"{node.module}.{a.name}")}
    return found


def test_the_read_side_never_imports_training_even_lazily():
    for start in READ_SIDE:
        seen, todo = set(), [start]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            path = _module_file(name)
            if path is not None:
                todo.extend(_nnctl_imports(path))
        bad = sorted(m for m in seen if m.startswith("nnctl.training"))
        assert not bad, f"{start} reaches {bad}"


def test_the_layout_check_sees_a_lazy_import(tmp_path):
    (tmp_path / "m.py").write_text("def f():\n    from nnctl.training.loop import Trainer\n")
    assert "nnctl.training.loop" in _nnctl_imports(tmp_path / "m.py")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_help_and_compare_do_not_import_numpy(tmp_path):
    """Shell sweeps start nnctl hundreds of times: --help must not pay for NumPy, nor compare."""
    help_code = ("from typer.testing import CliRunner; from nnctl.cli import app\n"
                 "assert CliRunner().invoke(app, ['--help']).exit_code == 0")
    assert "numpy" not in _modules_after(help_code)
    run = tmp_path / "runs" / "a-20261201-000000-abcdef"  # a finished run, written by hand
    run.mkdir(parents=True)
    (run / "summary.json").write_text('{"status": "completed", "name": "a", "task": "classification", '
                                      '"epochs_run": 2, "wall_time_s": 0.5}')
    (run / "config.yaml").write_text("name: a\nseed: 0\noptimizer: {lr: 0.01}\n")
    (run / "metrics.csv").write_text("epoch,train_loss,val_loss,train_accuracy,val_accuracy,lr,epoch_time_s\n"
                                     "1,0.7,0.69,0.5,0.55,0.01,0.1\n2,0.5,0.52,0.8,0.75,0.01,0.1\n")
    compare_code = ("from typer.testing import CliRunner; from nnctl.cli import app\n"
                    f"r = CliRunner().invoke(app, ['compare', {str(run.parent)!r}, '--format', 'json'])\n"
                    "assert r.exit_code == 0 and '\"best_epoch_val_accuracy\": 0.75' in r.output, r.output")
    assert "numpy" not in _modules_after(compare_code)


def test_no_module_is_longer_than_one_sitting():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 460}
    assert not long, long


def test_arrow_only_for_data_files_and_never_pandas(tmp_path):
    """Built-in datasets never import pyarrow; reading a data file never imports pandas (pyarrow's own
    to_numpy would, when pandas is installed: 0.2 s and 80 MB), nor pyarrow.compute (35 ms)."""
    train = ("from nnctl.config.load import load_spec; from nnctl.build import prepare\n"
             "prepare(load_spec(data={{'data': {{'source': {src!r}, 'missing': 'impute'}}}}))")
    assert "pyarrow" not in _modules_after(train.format(src="sklearn:xor"))  # (scikit-learn may import it)
    (tmp_path / "d.csv").write_text("when,kind,x,y\n" + "".join(
        f"2024-01-{1 + i % 28:02d},{'ab'[i % 2] if i % 7 else 'NA'},{'' if i % 5 == 0 else i},{i % 2}\n"
        for i in range(40)))
    modules = _modules_after(train.format(src=str(tmp_path / "d.csv")))
    assert "pyarrow.csv" in modules and "pandas" not in modules and "pyarrow.compute" not in modules
