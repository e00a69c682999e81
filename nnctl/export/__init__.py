"""`nnctl export`: a trained run as a model file for other runtimes (DESIGN §1, §8). ONNX for now.

The graph takes the training file's feature columns as they are written (one input per column,
shape (N, 1): float32 for numeric columns, NaN = missing; strings for categorical and date
columns, "" = missing) and does what `nnctl predict` does to them: imputation and missing-value
indicators, one-hot levels (rare levels share the "other" column, unseen levels are all zeros),
dates expanded to year, month, day, weekday and day of year, the fitted scaling / PCA /
whitening, then the network in inference mode (batch norm with its running statistics, no
dropout) and the output function. Outputs: `label` (N,) and `probabilities` (N, k) for
classifiers (`scores` instead of probabilities for hinge and perceptron runs), `value` (N, t) in
the target's original units for regression.

predict refuses some rows: a missing value the run has no fill for (data.missing: error or drop),
a level never seen in training under data.categorical.unknown: error, a date it cannot read, an
output that is not finite. A graph cannot raise per row, so those rows come out as NaN
probabilities / scores / values and an empty label, and every other row is unaffected.

graph.py builds the graph (the network, the outputs); columns.py the inputs' encoding. The `onnx`
package is imported only when exporting (`pip install 'nnctl[onnx]'`).
"""

from __future__ import annotations

from pathlib import Path

from nnctl.errors import NnctlError


def _onnx():
    """The onnx package, or exit 2 saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise NnctlError("export --format onnx needs the onnx package: pip install 'nnctl[onnx]'") from None
    return onnx


def export_onnx(run_dir: Path | str, output: Path | str | None = None) -> tuple[Path, list[str]]:
    """Write the run's ONNX graph to `output` (default RUN_DIR/model.onnx), whole (temp file + rename).

    Returns (the path written, notes). Raises RunDirError for a bad run directory, NnctlError when
    onnx is not installed, the run uses something the exporter cannot express, or the file cannot
    be written."""
    from nnctl.evaluate import load_run
    from nnctl.export.graph import build_onnx
    from nnctl.files import write_atomic

    loaded = load_run(run_dir)  # checks the run dir before anything else
    onnx = _onnx()
    model = build_onnx(loaded)
    onnx.checker.check_model(model)
    if output is not None and str(output) == "-":
        raise NnctlError("-o -: an ONNX model is binary, not text for stdout; give a file name such as model.onnx")
    out = Path(output) if output is not None else loaded.run.path / "model.onnx"
    if out.is_dir():
        raise NnctlError(f"-o {out}: is a directory; give a file name such as {out / 'model.onnx'}")
    try:
        write_atomic(out, model.SerializeToString())
    except OSError as exc:
        raise NnctlError(f"-o {out}: cannot write ({exc.strerror})") from None
    notes = []
    status = loaded.summary.get("status")
    if status in ("diverged", "interrupted", "running", "failed"):
        notes.append(f"this run is {status}: its weights are not a finished model")
    if loaded.task == "classification" and not loaded.model.loss.has_proba:
        notes.append(f"loss {loaded.spec.train.loss} gives scores, not probabilities: the graph's outputs are "
                     f"'label' and 'scores'")
    return out, notes
