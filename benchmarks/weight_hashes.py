"""SHA-256 of the trained weights of every example config, in float32 and float64.

A refactoring must not change results: run this before and after, and diff the output (the
developers' guide asks that the hashes of the example weights stay stable unless an issue changes
results on purpose). Each config is trained with `nnctl train` in a fresh process, exactly as a
user would, into a temporary runs folder.

The hash is of the arrays, not of the file's bytes: a .npz is a zip archive whose entries carry the
time they were written, so two identical trainings a second apart give different file bytes. The
array hash covers every key in sorted order with its dtype, shape and raw bytes.

    python -m benchmarks.weight_hashes                   # prints a table; --json for a document
    python -m benchmarks.weight_hashes --check FILE.json # exit 1 if any hash differs from FILE
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import example_configs

DTYPES = ("float32", "float64")


def weights_digest(path: Path) -> str:
    """sha256 over the sorted keys of an .npz: name, dtype, shape and bytes of each array."""
    h = hashlib.sha256()
    with np.load(path, allow_pickle=False) as z:
        for key in sorted(z.files):
            a = np.ascontiguousarray(z[key])
            h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def train_digest(config: Path, dtype: str, runs_dir: Path) -> str:
    """Train `config` with `nnctl train` in its own process; the digest of its weights.npz."""
    cmd = [sys.executable, "-m", "nnctl", "train", str(config), "--quiet", "--runs-dir", str(runs_dir),
           "--set", f"train.dtype={dtype}", "--name", f"{config.stem}-{dtype}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    return weights_digest(run_dir / "weights.npz")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", help="comma-separated config names (default: every configs/*.yaml)")
    parser.add_argument("--json", action="store_true", help="print one JSON document {config: {dtype: sha256}}")
    parser.add_argument("--check", type=Path, help="compare with a JSON document written by --json")
    args = parser.parse_args(argv)
    paths = example_configs(args.configs)
    expected = json.loads(args.check.read_text()) if args.check else None
    result: dict[str, dict[str, str]] = {}
    differ = 0
    with tempfile.TemporaryDirectory(prefix="nnctl-hashes-") as tmp:
        for path in paths:
            result[path.stem] = {}
            for dtype in DTYPES:
                digest = train_digest(path, dtype, Path(tmp))
                result[path.stem][dtype] = digest
                verdict = ""
                if expected is not None:
                    same = expected.get(path.stem, {}).get(dtype) == digest
                    differ += not same
                    verdict = "  same" if same else "  DIFFERS"
                if not args.json:
                    print(f"{path.stem:<15} {dtype:<8} {digest}{verdict}", flush=True)
    if args.json:
        print(json.dumps(result, indent=2))
    if expected is not None:
        print(f"{2 * len(paths) - differ} of {2 * len(paths)} hashes as in {args.check}", file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
