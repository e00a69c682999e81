"""nnctl: train NumPy multilayer perceptrons from YAML experiment specs.

The Python API (DESIGN §7), for notebooks and scripts:

    import nnctl
    run = nnctl.train("configs/moons.yaml", overrides={"optimizer.lr": 0.05})
    run.summary["best"], run.predict(rows), run.predict_proba(rows), run.evaluate()
    run = nnctl.Run("runs/moons-20261201-101500-ab12cd")

`nnctl.sklearn` holds scikit-learn estimators (NNClassifier, NNRegressor). Importing nnctl is
cheap: the API's modules load on first use (the CLI starts hundreds of times in a sweep).
"""

from nnctl.errors import ConfigError, DataError, NnctlError, RunDirError, TrainingFailed

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "NnctlError", "NnctlNote", "Run", "RunDirError", "TrainingFailed",
           "__version__", "train"]

_LAZY = {"train": "nnctl.api", "Run": "nnctl.api", "NnctlNote": "nnctl.api"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nnctl' has no attribute {name!r}")


def __dir__():
    return sorted(set(__all__) | {"api", "errors", "sklearn"})
