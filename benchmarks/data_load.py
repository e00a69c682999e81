# ruff: noqa: N806  (matrices are upper case, as in nnctl/nn)
"""Loading real-world-shaped data files: nnctl against pandas and pyarrow, side by side.

Three files of 1,000,000 rows (fixed seed), written once into a cache folder:

- `numeric.csv`: 20 float features (`%.6g`) and an integer label;
- `mixed.csv`: 19 float features, one string feature with 20 levels and a string label with 5
  classes; also `mixed_pandas.csv`, the same table written by `pandas.DataFrame.to_csv` (17-digit
  floats), and `mixed.parquet`, written by pyarrow.

Each load runs in a fresh child process (so its peak RSS is its own), alternating between the
loaders round after round, and reports the load's wall time (imports excluded) and the process's
peak RSS (VmHWM, interpreter and imports included):

- nnctl: what `nnctl train` does before splitting: read, type the columns, encode every row
  (one-hot, float32 for an all-numeric file as float32 training does); its config is read before
  the timed part, as `nnctl train` reads it before the data;
- pandas: `pandas.read_csv(path)` with default options;
- pyarrow (Parquet): `pyarrow.parquet.read_table(path)` plus conversion to NumPy (numeric columns
  `to_numpy()`, string columns dictionary-encoded to integer codes).

For the CSV files a third loader shows the floor nnctl's reading stands on:

- arrow: `pyarrow.csv.read_csv(path)` with every column's type fixed as nnctl fixes it (floats
  parsed to float32, text to dictionaries), and nothing else: no sha256 fingerprint, no matrix;
- sha256: the file's sha256, the fingerprint every run records (nnctl computes it on a thread
  while Arrow parses).

CPU seconds (all of the process's threads) are reported beside the wall time: pandas' and Arrow's
readers both use every core, so on a 2-core machine the CPU work decides the wall time.

Targets: numeric load <= 1.3x pandas; mixed and pandas-written loads <= 1.5x pandas with
a peak RSS <= pandas'; Parquet <= 1.2x pyarrow.

    python -m benchmarks.data_load [--rows 1000000] [--rounds 5] [--cache DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
kind, path = sys.argv[1], sys.argv[2]


def cpu_seconds():  # this process, all its threads
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


if kind == "nnctl":
    import numpy as np
    from benchmarks.csv_memory import load_spec_for, nnctl_load
    from nnctl.data.reading import read_table
    import pyarrow.compute, pyarrow.csv, pyarrow.parquet  # imports outside the timed part, as for the others
    import nnctl.config.load, nnctl.data.roles, nnctl.data.columns
    spec = load_spec_for(__import__("pathlib").Path(path))  # the config, read before the data as train does
    c0, t0 = cpu_seconds(), time.perf_counter()
    ds = nnctl_load(__import__("pathlib").Path(path), np.float32, spec)
    shape = list(ds.X.shape)
elif kind == "pandas":
    import pandas as pd
    c0, t0 = cpu_seconds(), time.perf_counter()
    df = pd.read_csv(path)
    shape = list(df.shape)
elif kind == "arrow":
    # the parse nnctl's CSV reading is built on, alone: column types fixed as nnctl fixes them
    # (floats as float32, text as dictionaries); no fingerprint, no conversion to the training matrix
    import io
    import pyarrow as pa
    import pyarrow.csv as pacsv
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    sample = pacsv.read_csv(io.BytesIO(head[: head.rfind(b"\n") + 1])).schema
    types = {f.name: pa.float32() if pa.types.is_floating(f.type) else
             pa.dictionary(pa.int32(), pa.string()) if pa.types.is_string(f.type) else f.type for f in sample}
    options = pacsv.ConvertOptions(column_types=types)
    c0, t0 = cpu_seconds(), time.perf_counter()
    tb = pacsv.read_csv(path, convert_options=options)
    shape = [tb.num_rows, tb.num_columns]
elif kind == "sha256":  # the fingerprint every run records (README: split.npz), alone
    import hashlib
    c0, t0 = cpu_seconds(), time.perf_counter()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    shape = [len(h.hexdigest())]
else:
    import pyarrow as pa, pyarrow.parquet as pq
    try:
        import pandas  # pyarrow's to_numpy imports it on first use: not part of the timed work
    except ImportError:
        pass
    c0, t0 = cpu_seconds(), time.perf_counter()
    tb = pq.read_table(path)
    cols = [c.to_numpy() if not (pa.types.is_string(c.type) or pa.types.is_large_string(c.type))
            else c.dictionary_encode().combine_chunks().indices.to_numpy() for c in tb.columns]
    shape = [tb.num_rows, len(cols)]
wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
# VmHWM: this process image's own peak (ru_maxrss would include the parent's, inherited across exec)
hwm = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) * 1024
print(json.dumps({"wall": wall, "cpu": cpu, "rss": hwm, "shape": shape}))
"""

TARGETS = {  # file -> (reference loader, time limit, RSS must not exceed the reference's)
    "numeric.csv": ("pandas", 1.3, False),
    "mixed.csv": ("pandas", 1.5, True),
    "mixed_pandas.csv": ("pandas", 1.5, True),
    "mixed.parquet": ("pyarrow", 1.2, False),
}


def write_files(folder: Path, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    if not (folder / "numeric.csv").exists():
        with open(folder / "numeric.part", "w") as f:
            f.write(",".join([f"x{i}" for i in range(20)] + ["label"]) + "\n")
            for start in range(0, rows, 100_000):
                m = min(100_000, rows - start)
                X = rng.standard_normal((m, 20))
                y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
                np.savetxt(f, np.column_stack([X, y]), fmt=["%.6g"] * 20 + ["%d"], delimiter=",")
        os.replace(folder / "numeric.part", folder / "numeric.csv")
    if not (folder / "mixed.parquet").exists():
        X = rng.standard_normal((rows, 19))
        levels = np.array([f"level_{k:02d}" for k in range(20)])
        classes = np.array(["alpha", "beta", "gamma", "delta", "epsilon"])
        cat = levels[rng.integers(0, 20, rows)]
        label = classes[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5) + (X[:, 2] > 1) + (cat == "level_03")]
        names = [f"x{i}" for i in range(19)]
        with open(folder / "mixed.part", "w") as f:
            f.write(",".join(names + ["kind", "label"]) + "\n")
            for start in range(0, rows, 100_000):
                sl = slice(start, start + 100_000)
                body = np.char.add(np.char.add(
                    np.array([",".join(f"{v:.6g}" for v in r) for r in X[sl]]), ","), cat[sl])
                f.write("\n".join(np.char.add(np.char.add(body, ","), label[sl])) + "\n")
        os.replace(folder / "mixed.part", folder / "mixed.csv")
        table = pa.table({**{n: X[:, i] for i, n in enumerate(names)}, "kind": cat, "label": label})
        pq.write_table(table, folder / "mixed.parquet")
        try:
            import pandas  # noqa: F401  (to_pandas needs it)

            table.to_pandas().to_csv(folder / "mixed_pandas.part", index=False)
            os.replace(folder / "mixed_pandas.part", folder / "mixed_pandas.csv")
        except ImportError:
            pass


def measure(kind: str, path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(path)], capture_output=True, text=True, env=env,
                         cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} on {path.name} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cache", type=Path, help="folder for the generated files (kept for the next run)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nnctl-load-") as tmp:
        folder = args.cache or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"files in {folder} ...", file=sys.stderr, flush=True)
        write_files(folder, args.rows)
        files = [f for f in TARGETS if (folder / f).exists()]
        results: dict = {f: {} for f in files}
        for r in range(args.rounds):
            for f in files:
                ref = TARGETS[f][0]
                order = ["nnctl", ref] if r % 2 == 0 else [ref, "nnctl"]
                if f.endswith(".csv"):  # the floor nnctl's CSV reading stands on
                    order[1:1] = ["arrow", "sha256"]
                for kind in order:
                    results[f].setdefault(kind, []).append(measure(kind, folder / f))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    doc = {"rows": args.rows, "files": {}, "targets": []}
    for f, by_kind in results.items():
        ref, limit, rss_limited = TARGETS[f]
        med = {k: {"wall_s": statistics.median(x["wall"] for x in v), "cpu_s": statistics.median(x["cpu"] for x in v),
                   "peak_rss_mb": statistics.median(
            x["rss"] for x in v) / 2**20, "shape": v[0]["shape"]} for k, v in by_kind.items()}
        doc["files"][f] = med
        ratio = med["nnctl"]["wall_s"] / med[ref]["wall_s"]
        doc["targets"].append({"what": f"{f}: nnctl / {ref} load time", "limit": limit, "value": ratio,
                               "ok": ratio <= limit})
        if rss_limited:
            rss = med["nnctl"]["peak_rss_mb"] / med[ref]["peak_rss_mb"]
            doc["targets"].append({"what": f"{f}: nnctl / {ref} peak RSS", "limit": 1.0, "value": rss,
                                   "ok": rss <= 1.0})
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    for f, med in doc["files"].items():
        print(f"{f}:")
        for k, m in med.items():
            print(f"  {k:<8} load {m['wall_s']:6.3f} s  CPU {m['cpu_s']:5.2f} s   peak RSS {m['peak_rss_mb']:7.0f} MB"
                  f"   shape {m['shape']}")
        if "arrow" in med:
            print(f"  Arrow's parse alone: {med['arrow']['wall_s'] / med['pandas']['wall_s']:.2f}x pandas' wall time, "
                  f"{med['arrow']['cpu_s'] / med['pandas']['cpu_s']:.2f}x its CPU time")
    for t in doc["targets"]:
        print(f"target {t['what']:<42} {t['value']:5.2f}x  limit {t['limit']}x  {'OK' if t['ok'] else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
