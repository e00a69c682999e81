# ruff: noqa: N806  (matrices are upper case, as in nnctl/nn)
"""Large-CSV loading time and peak memory of training on it.

Writes a CSV of 1,000,000 rows x 20 numeric feature columns + an integer label (fixed seed,
`%.6g` numbers, about 185 MB) into a temporary folder, or to `--csv PATH` if that does not exist
yet (and keeps it there for the next run: PATH must be a file this script wrote). Then it measures:

- load time: nnctl's loading of a data file (read, typed, encoded to float32 as float32 training
  does) against pandas' `read_csv` (default options, if pandas is installed) in interleaved
  rounds; target: nnctl at most 1.3x pandas;
- peak memory: the peak resident set size (ru_maxrss of the child process, interpreter included)
  of a 1-epoch `nnctl train` on the file (hidden [16], batch 256, 10%/10% val/test split);
  target: below 3x the float32 size of the data set (rows x columns x 4 bytes).

    python -m benchmarks.csv_memory [--rows 1000000] [--rounds 3] [--csv PATH] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LOAD_TARGET = 1.3  # nnctl load time / pandas read_csv time (issue 14)
MEMORY_TARGET = 3.0  # peak RSS / float32 size of the data set
FEATURES = 20


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w") as f:
        f.write(",".join([f"x{i}" for i in range(FEATURES)] + ["label"]) + "\n")
        for start in range(0, rows, 100_000):
            m = min(100_000, rows - start)
            X = rng.standard_normal((m, FEATURES))
            y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
            np.savetxt(f, np.column_stack([X, y]), fmt=["%.6g"] * FEATURES + ["%d"], delimiter=",")
    os.replace(tmp, path)


def load_spec_for(path: Path, **data):
    """The config nnctl_load reads `path` with (target: label). `nnctl train` has read its config
    (and imported what that takes) before it touches the data, so timings make it apart."""
    from nnctl.config.load import load_spec

    return load_spec(data={"data": {"source": str(path), "target": "label", **data}})


def nnctl_load(path: Path, dtype, spec=None, **data):
    """What `nnctl train` does to a data file before splitting: read, type, encode (all rows as
    training). `spec`: from load_spec_for (made here if not given)."""
    from nnctl.data.sources import load_dataset

    spec = spec if spec is not None else load_spec_for(path, **data)
    ds = load_dataset(spec.data, dtype)
    ds.encode(spec.data, np.arange(len(ds.y)), dtype)
    return ds


def time_loads(path: Path, rounds: int) -> dict[str, list[float]]:
    spec = load_spec_for(path)  # the config is read before the data, as `nnctl train` does
    loaders = {"nnctl load_csv": lambda: nnctl_load(path, np.float32, spec)}
    try:
        import pandas as pd

        loaders["pandas read_csv"] = lambda: pd.read_csv(path)
    except ImportError:
        pass
    times: dict[str, list[float]] = {k: [] for k in loaders}
    for r in range(rounds):
        for key in list(loaders)[r % len(loaders):] + list(loaders)[:r % len(loaders)]:
            t0 = time.perf_counter()
            result = loaders[key]()
            times[key].append(time.perf_counter() - t0)
            del result
        print(f"load round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()),
              file=sys.stderr, flush=True)
    return times


def train_peak_rss(path: Path, workdir: Path) -> tuple[float, float]:
    """(peak RSS in bytes, wall seconds) of `nnctl train` for one epoch on `path`."""
    config = workdir / "csv-memory.yaml"
    config.write_text(f"name: csv-memory\ndata:\n  source: {json.dumps(str(path))}\n  target: label\n"
                      "  split: {val: 0.1, test: 0.1}\nmodel:\n  hidden: [16]\n"
                      "train:\n  epochs: 1\n  batch_size: 256\n")
    cmd = [sys.executable, "-m", "nnctl", "train", str(config), "--runs-dir", str(workdir / "runs"), "--quiet"]
    with open(workdir / "train.stderr", "w+b") as err:  # a file, not a pipe: wait4 cannot deadlock on it
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"nnctl train failed ({proc.returncode}): {err.read()[-2000:].decode(errors='replace')}")
    return usage.ru_maxrss * 1024.0, wall  # Linux reports kilobytes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--csv", type=Path, help="where to keep the generated CSV (reused if it exists)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nnctl-csv-") as tmp:
        work = Path(tmp)
        path = args.csv or work / "big.csv"
        if not path.exists():
            print(f"writing {args.rows:,} rows to {path} ...", file=sys.stderr, flush=True)
            write_csv(path, args.rows)
        with open(path, "rb") as f:
            rows = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b"")) - 1
        file_bytes = path.stat().st_size
        columns = FEATURES + 1
        data_f32 = rows * columns * 4
        peak, wall = train_peak_rss(path, work)  # first: the interpreter here has not grown yet
        times = time_loads(path, args.rounds)
    med = {k: statistics.median(v) for k, v in times.items()}
    doc = {"csv": str(args.csv or "temporary"), "rows": rows, "columns": columns, "file_bytes": file_bytes,
           "float32_bytes": data_f32, "load_s": times, "load_median_s": med,
           "train_peak_rss_bytes": peak, "train_wall_s": wall, "peak_over_float32": peak / data_f32,
           "targets": []}
    if "pandas read_csv" in med:
        ratio = med["nnctl load_csv"] / med["pandas read_csv"]
        doc["targets"].append({"what": "nnctl load / pandas read_csv", "limit": LOAD_TARGET, "value": ratio,
                               "ok": ratio <= LOAD_TARGET})
    doc["targets"].append({"what": "train peak RSS / float32 data", "limit": MEMORY_TARGET,
                           "value": peak / data_f32, "ok": peak / data_f32 < MEMORY_TARGET})
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"CSV: {rows:,} rows x {columns} columns, {file_bytes / 1e6:.0f} MB of text; float32 size "
          f"{data_f32 / 1e6:.1f} MB")
    for k, v in med.items():
        print(f"  {k:<18} median {v:6.2f} s   (rounds: {', '.join(f'{x:.2f}' for x in times[k])})")
    if "pandas read_csv" not in med:
        print("  pandas not installed: the load-time target is not checked")
    print(f"  nnctl train, 1 epoch: peak RSS {peak / 1e6:.0f} MB ({peak / data_f32:.2f}x the float32 data), "
          f"wall {wall:.1f} s")
    for t in doc["targets"]:
        print(f"  target {t['what']:<32} {t['value']:5.2f}x  limit {t['limit']}x  {'OK' if t['ok'] else 'MISS'}")
    if rows < 1_000_000:
        print("  note: the targets are set for 1,000,000 rows; on a smaller file the interpreter and its "
              "libraries (about 80 MB) dominate the peak RSS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
