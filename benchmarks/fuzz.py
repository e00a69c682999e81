"""Hostile-input fuzzer: thousands of bad configs, arguments, data files, run directories and NumPy
archives through every command that reads files.

    python -m benchmarks.fuzz                      # the whole corpus (5,301 cases, about 6 minutes), 2 at a time
    python -m benchmarks.fuzz --every 25           # a slice: every 25th case
    python -m benchmarks.fuzz --family npz --show 20

Each case builds its inputs in a folder of its own and runs the real command-line entry point
(`nnctl.cli.main`) in a child forked from a process that has already imported nnctl, NumPy, pyarrow
and scikit-learn, so a case costs its own work, not start-up. The child gets its own session, a
memory cap (RLIMIT_AS, `--mem-mb` above the parent's address space), a wall-clock timeout (the
whole process group is killed) and stdout/stderr in files.

A case is BAD if it prints a Python traceback, exits with a code other than 0, 1 or 2, is killed by
a signal or the timeout, leaves a process running, changes the victim file outside its folder (what
a symlink in a hostile run dir points at), replaces a FIFO or device it was given as output, quotes
the secret file's text, or exits 2 without an `error:` line. The report counts cases by family and
exit code and lists the bad ones with the last line of their stderr.

The corpus is deterministic (seeded): `cases()` returns the same list every time, so a test can run
a fixed slice of it (tests/test_hostile.py).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

VICTIM = "VICTIM: nnctl must never write here\n"
SECRET = "SECRET-7f3a9c41 this line must never be printed"


# ------------------------------------------------------------------------------------ fixtures
@dataclass
class Fixtures:
    """What the cases start from: a data file, configs, a completed and an interrupted run, a sweep."""

    root: Path

    @property
    def outside(self) -> Path:
        return self.root / "outside"

    @property
    def victim(self) -> Path:
        return self.outside / "victim.txt"

    @property
    def secret(self) -> Path:
        return self.outside / "secret.txt"

    @property
    def base(self) -> Path:
        return self.root / "base"


BASE_CSV = "a,b,when,y\n" + "".join(f"{i * 0.37:.2f},{'xyz'[i % 3]},2024-01-{1 + i % 28:02d},{'pq'[i % 2]}\n"
                                    for i in range(80))
BASE_CONFIG = """\
name: fz
seed: 1
data: {source: data.csv, target: y, split: {val: 0.2, test: 0.2}}
model: {hidden: [4], activation: relu}
optimizer: {name: adam, lr: 0.01}
train: {epochs: 3, batch_size: 16, checkpoint_every: 1, snapshot_every: 1, log_steps: true}
"""
REGRESSION_CONFIG = """\
name: fzr
seed: 2
data: {source: "sklearn:sine", options: {n_samples: 60}}
model: {hidden: [5], activation: tanh}
train: {epochs: 2, batch_size: 16}
"""


def build_fixtures(root: Path) -> Fixtures:
    """Train the base runs once (real subprocesses), plant the victim and the secret."""
    fx = Fixtures(root)
    fx.outside.mkdir(parents=True)
    fx.victim.write_text(VICTIM)
    fx.secret.write_text(SECRET + "\nsecond line\n")
    b = fx.base
    b.mkdir()
    (b / "data.csv").write_text(BASE_CSV)
    (b / "config.yaml").write_text(BASE_CONFIG)
    (b / "regression.yaml").write_text(REGRESSION_CONFIG)
    nn = [sys.executable, "-m", "nnctl"]

    def train(*args: str) -> Path:
        proc = subprocess.run([*nn, "train", *args, "-q"], cwd=b, capture_output=True, text=True, check=True)
        return b / proc.stdout.strip().splitlines()[-1]

    shutil.move(train("config.yaml", "--runs-dir", "tmp"), b / "run")
    shutil.move(train("regression.yaml", "--runs-dir", "tmp"), b / "run_r")
    # an interrupted run with a checkpoint: stopped by SIGTERM once its first checkpoint exists, with
    # few enough epochs left that resuming it takes about a second
    for attempt in range(5):
        work = b / f"tmp2-{attempt}"
        proc = subprocess.Popen([*nn, "train", "config.yaml", "--runs-dir", str(work), "-q", "--set",
                                 "train.epochs=300"], cwd=b, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "NNCTL_CHECKPOINT_SECONDS": "0"})
        while not list(work.glob("*/checkpoint/checkpoint.npz")) and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        if proc.returncode == 1:  # interrupted, as wanted (0: it finished first; try again)
            shutil.move(b / out.strip().splitlines()[-1], b / "run_i")
            break
    else:
        raise RuntimeError("could not interrupt a training run")
    subprocess.run([*nn, "sweep", "config.yaml", "--grid", "optimizer.lr=0.01,0.1", "--runs-dir", "sweeps"],
                   cwd=b, capture_output=True, text=True, check=True)
    (sweep,) = (b / "sweeps").iterdir()
    shutil.move(sweep, b / "sweep")
    for d in ("tmp", "sweeps", *(f"tmp2-{i}" for i in range(5))):
        shutil.rmtree(b / d, ignore_errors=True)
    return fx


# ------------------------------------------------------------------------------------ cases
@dataclass
class Case:
    family: str
    name: str
    argv: list[str]
    setup: Callable[[Path, Fixtures], None]
    entry: Callable[[], None] | None = None  # what the child runs (default: nnctl's command line)


def _copy_base(d: Path, fx: Fixtures, *names: str) -> None:
    for n in names:
        src = fx.base / n
        if src.is_dir():
            shutil.copytree(src, d / n, symlinks=True)
        else:
            shutil.copy(src, d / n)


# --- byte mutations of any file
BYTE_MUTATIONS: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda b: b"",
    "half": lambda b: b[: len(b) // 2],
    "minus1": lambda b: b[:-1],
    "garbage": lambda b: random.Random(len(b)).randbytes(64),
    "flip": lambda b: bytes(x ^ 0xFF if i % 97 == 5 else x for i, x in enumerate(b)),
    "nul": lambda b: b"\x00" * 100,
    "bad_utf8": lambda b: b[: len(b) // 3] + b"\xff\xfe\xc3" + b[len(b) // 3:],
    "bom": lambda b: b"\xef\xbb\xbf" + b,
    "crlf": lambda b: b.replace(b"\n", b"\r\n"),
    "ctrl": lambda b: b[: len(b) // 2] + b"\x07\x1b[31m\x0c" + b[len(b) // 2:],
    "doubled": lambda b: b + b,
    "megabyte": lambda b: b + b"x" * (1 << 20),
    "json_list": lambda b: b"[1, 2, 3]",
    "json_null": lambda b: b"null",
    "json_str": lambda b: b'"hello"',
    "json_num": lambda b: b"1e999",
    "json_bigint": lambda b: b"9" * 5000,
    "json_deep": lambda b: b"[" * 100_000 + b"]" * 100_000,
    "yaml_alias_bomb": lambda b: _alias_bomb(),
    "yaml_tag": lambda b: b"!!python/object/apply:os.system ['echo PWNED > pwned.txt']\n",
    "surrogate": lambda b: b.replace(b'"fz', b'"\\ud800fz', 1).replace(b"fz", b"\xed\xa0\x80fz", 1),
}
SPECIALS = ["missing", "dir", "fifo", "to_zero", "to_urandom", "to_victim", "to_secret", "sparse_100m",
            "loop", "dangling"]


def _alias_bomb() -> bytes:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 10):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{', '.join([f'*{prev}'] * 9)}]")
    return ("\n".join(lines) + "\n").encode()


def plant(path: Path, how: str, fx: Fixtures) -> None:
    """Replace `path` by a hostile special: missing, a directory, a FIFO, links to devices/outside."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if how == "missing":
        return
    if how == "dir":
        path.mkdir()
    elif how == "fifo":
        os.mkfifo(path)
    elif how == "to_zero":
        path.symlink_to("/dev/zero")
    elif how == "to_urandom":
        path.symlink_to("/dev/urandom")
    elif how == "to_victim":
        path.symlink_to(fx.victim)
    elif how == "to_secret":
        path.symlink_to(fx.secret)
    elif how == "sparse_100m":
        with open(path, "wb") as f:
            f.truncate(100 << 20)
    elif how == "loop":
        path.symlink_to(path.name)
    elif how == "dangling":
        path.symlink_to(path.parent / "nowhere" / "x")
    else:
        raise ValueError(how)


def mutate_file(path: Path, how: str, fx: Fixtures) -> None:
    if how in SPECIALS:
        plant(path, how, fx)
    else:
        path.write_bytes(BYTE_MUTATIONS[how](path.read_bytes()))


# --- commands over a run dir
def run_commands(run: str) -> dict[str, list[str]]:
    return {
        "eval": ["eval", run],
        "eval_json": ["eval", run, "--json"],
        "predict": ["predict", run, "data.csv"],
        "inspect": ["inspect", run],
        "compare": ["compare", run],
        "plot": ["plot", run, "-o", "out.png"],
        "evolution": ["plot", run, "--evolution", "-o", "ev.png"],
        "resume": ["resume", run],
    }


RUN_TEXT_FILES = ["config.yaml", "summary.json", "metrics.csv", "diagnostics.csv", ".lock", "eval.json", "steps.csv"]
RUN_NPZ_FILES = ["weights.npz", "preprocess.npz", "split.npz", "snapshots.npz"]


def rundir_cases() -> list[Case]:
    """Every file of a completed run (and the checkpoint of an interrupted one), mutated bytewise or
    replaced by a special file, through every command that reads a run."""
    out = []
    muts = list(BYTE_MUTATIONS) + SPECIALS
    for fname in RUN_TEXT_FILES + RUN_NPZ_FILES:
        for m in muts:
            if fname.endswith(".npz") and m.startswith(("json_", "yaml_", "crlf", "surrogate", "bom")):
                continue
            for cname, argv in run_commands("run").items():
                if cname == "resume" and fname not in ("config.yaml", "summary.json", ".lock", "split.npz"):
                    continue
                if cname == "eval_json" and m not in SPECIALS[:4] + ["garbage", "json_list"]:
                    continue
                if cname == "evolution" and fname not in ("snapshots.npz", "metrics.csv", "config.yaml"):
                    continue

                def setup(d: Path, fx: Fixtures, fname=fname, m=m) -> None:
                    _copy_base(d, fx, "run", "data.csv")
                    if fname == "eval.json":
                        (d / "run" / "eval.json").write_text('{"metrics": {"accuracy": 0.5}}')
                    mutate_file(d / "run" / fname, m, fx)

                out.append(Case("rundir", f"{fname}:{m}:{cname}", argv, setup))
    # the interrupted run's checkpoint and summary, through resume (and eval/inspect)
    for target in ["checkpoint/checkpoint.npz", "checkpoint", "summary.json", "metrics.csv", "config.yaml",
                   "snapshots.npz", "steps.csv"]:
        for m in muts:
            if target.endswith(".npz") and m.startswith(("json_", "yaml_", "crlf", "surrogate", "bom")):
                continue
            if target == "checkpoint" and m not in SPECIALS:
                continue
            for cname in ("resume", "eval", "inspect"):
                def setup(d: Path, fx: Fixtures, target=target, m=m) -> None:
                    _copy_base(d, fx, "run_i", "data.csv")
                    mutate_file(d / "run_i" / target, m, fx)

                out.append(Case("checkpoint", f"{target}:{m}:{cname}", run_commands("run_i")[cname], setup))
    # the run dir itself
    for m in ["missing", "fifo", "to_zero", "to_victim", "loop", "dangling"]:
        for cname, argv in run_commands("run").items():
            def setup(d: Path, fx: Fixtures, m=m) -> None:
                _copy_base(d, fx, "data.csv")
                plant(d / "run", m, fx)

            out.append(Case("rundir", f"<dir>:{m}:{cname}", argv, setup))
    return out


# --- structured JSON tampering of summary.json / eval.json / checkpoint meta / preprocess columns
JSON_VALUES = [None, True, -1, 0, 1.5, 10**30, "x", "", "\ud800", [], [1, "a"], {}, {"a": {"b": []}},
               "9" * 5000, float("nan")]


def summary_cases() -> list[Case]:
    out = []
    keys = ["status", "name", "task", "final", "best", "epochs_run", "wall_time_s", "n_params", "seed",
            "findings", "data", "versions", "metric"]
    for key in keys:
        for i, v in enumerate(JSON_VALUES + ["<delete>"]):
            for cname in ("eval", "compare", "inspect", "plot", "resume", "predict"):
                if (i + len(cname)) % 2:  # half of the pairs: the value kinds repeat across keys
                    continue

                def setup(d: Path, fx: Fixtures, key=key, v=v) -> None:
                    _copy_base(d, fx, "run", "data.csv")
                    p = d / "run" / "summary.json"
                    doc = json.loads(p.read_text())
                    if v == "<delete>":
                        doc.pop(key, None)
                    else:
                        doc[key] = v
                    p.write_text(json.dumps(doc))

                out.append(Case("summary", f"{key}={str(v)[:12]!r}:{cname}", run_commands("run")[cname], setup))
    return out


def checkpoint_meta_cases() -> list[Case]:
    """The checkpoint's JSON metadata, one key at a time, through resume."""
    out = []
    keys = ["format", "config_sha256", "epoch", "optimizer_t", "schedule", "rng", "row_columns", "best",
            "best_value", "waited", "train_seconds", "findings", "initial_loss", "cursor"]
    for key in keys:
        for v in JSON_VALUES + ["<delete>", {"shuffle": {"bit_generator": "PCG64", "state": 1}}]:
            def setup(d: Path, fx: Fixtures, key=key, v=v) -> None:
                import numpy as np

                _copy_base(d, fx, "run_i", "data.csv")
                p = d / "run_i" / "checkpoint" / "checkpoint.npz"
                with np.load(p) as z:
                    arrays = {k: z[k] for k in z.files}
                meta = json.loads(str(arrays["meta"]))
                if v == "<delete>":
                    meta.pop(key, None)
                else:
                    meta[key] = v
                arrays["meta"] = np.array(json.dumps(meta))
                np.savez(p, **arrays)

            out.append(Case("checkpoint_meta", f"{key}={str(v)[:12]!r}", ["resume", "run_i"], setup))
    return out


# --- NumPy archives, member by member
def _npy_with_header(shape: tuple, dtype: str = "<f8", fortran: bool = False) -> bytes:
    """A .npy whose header claims `shape` but whose data is a few bytes: a lie about its size."""
    header = repr({"descr": dtype, "fortran_order": fortran, "shape": shape}).encode()
    header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\x00" * 16


def _member_mutations():
    import numpy as np

    def pickled(a):
        buf = io.BytesIO()
        np.save(buf, np.array([{"evil": 1}, None], dtype=object), allow_pickle=True)
        return buf.getvalue()

    return {
        "delete": None,
        "scalar": lambda a: np.float64(3.0),
        "strings": lambda a: np.array(["x", "y"]),
        "bool": lambda a: np.ones(np.shape(a), dtype=bool),
        "complex": lambda a: np.ones(np.shape(a), dtype=complex),
        "int8": lambda a: np.ones(np.shape(a), dtype=np.int8),
        "transpose": lambda a: np.asarray(a).T.copy() if np.ndim(a) == 2 else np.asarray(a).reshape(1, -1),
        "extra_dim": lambda a: np.asarray(a)[None, ...],
        "empty": lambda a: np.zeros((0,), dtype=np.asarray(a).dtype),
        "nan": lambda a: np.full(np.shape(a), np.nan),
        "inf": lambda a: np.full(np.shape(a), -np.inf),
        "huge_values": lambda a: np.full(np.shape(a), 1e300),
        "negative": lambda a: np.full(np.shape(a), -7, dtype=np.int64),
        "big_endian": lambda a: np.asarray(a).astype(np.asarray(a).dtype.newbyteorder(">"))
        if np.asarray(a).dtype.kind in "fiu" else np.asarray(a),
        "structured": lambda a: np.zeros(3, dtype=[("x", "<f8"), ("y", "<i4")]),
        "json_garbage": lambda a: np.array('{"name": ["a"], "kind": 5}'),
        "json_list_str": lambda a: np.array('[1, "x", null, {"name": null}]'),
        "pickle": ("raw", pickled),
        "lying_header": ("raw", lambda a: _npy_with_header((10**12,))),
        "lying_header_2d": ("raw", lambda a: _npy_with_header((100000, 100000), "<f4")),
        "bad_descr": ("raw", lambda a: _npy_with_header((3,), "<Q12")),
    }


def rewrite_npz(path: Path, key: str, how: str) -> None:
    import numpy as np

    mut = _member_mutations()[how]
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    raw = {}
    if mut is None:
        arrays.pop(key, None)
    elif isinstance(mut, tuple):
        raw[key] = mut[1](arrays.get(key))
        arrays.pop(key, None)
    else:
        arrays[key] = mut(arrays.get(key, np.zeros(3)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, v in arrays.items():
            b = io.BytesIO()
            np.save(b, v, allow_pickle=False)
            zf.writestr(k + ".npy", b.getvalue())
        for k, v in raw.items():
            zf.writestr(k + ".npy", v)
    path.write_bytes(buf.getvalue())


NPZ_KEYS = {
    "weights.npz": ["W1", "b1", "W2", "b2", "W3"],
    "preprocess.npz": ["method", "shift", "scale", "task", "classes", "feature_names", "columns", "target_name",
                       "id_name", "file_columns"],
    "split.npz": ["train", "val", "test", "fingerprint", "source", "n_rows"],
    "snapshots.npz": ["e0/W1", "e1/b1", "e3/W2", "e9/W1"],
}


_BOMBS: dict[str, bytes] = {}


def _bomb(kind: str) -> bytes:
    """A small file that unpacks to 1 GB (built once): an .npz member of zeros, or a gzip CSV whose
    second line is 1 GB of "0,0,0,..."."""
    import gzip

    if kind not in _BOMBS:
        chunk = b"0," * (1 << 19) if kind == "gz" else b"\x00" * (1 << 20)
        buf = io.BytesIO()
        if kind == "gz":
            with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1) as f:
                f.write(b"a,b,y\n")
                for _ in range(1024):
                    f.write(chunk)
        else:
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, \
                    zf.open("W1.npy", "w", force_zip64=True) as f:
                f.write(_npy_with_header((1 << 27,))[:-16])
                for _ in range(1024):
                    f.write(chunk)
        _BOMBS[kind] = buf.getvalue()
    return _BOMBS[kind]


def npz_cases() -> list[Case]:
    out = []
    names = [
        "delete", "scalar", "strings", "bool", "complex", "int8", "transpose", "extra_dim", "empty", "nan", "inf",
        "huge_values", "negative", "big_endian", "structured", "json_garbage", "json_list_str", "pickle",
        "lying_header", "lying_header_2d", "bad_descr"]
    for fname, keys in NPZ_KEYS.items():
        for key in keys:
            for i, how in enumerate(names):
                cmds = {"split.npz": ["eval", "resume", "plot"], "snapshots.npz": ["evolution"]}.get(
                    fname, ["eval", "predict", "plot", "inspect"])
                cname = cmds[(i + len(key)) % len(cmds)]
                def setup(d: Path, fx: Fixtures, fname=fname, key=key, how=how) -> None:
                    _copy_base(d, fx, "run", "data.csv")
                    rewrite_npz(d / "run" / fname, key, how)

                out.append(Case("npz", f"{fname}/{key}:{how}:{cname}", run_commands("run")[cname], setup))
    # the checkpoint's arrays
    for key in ["model/W1", "model/b2", "optimizer/m/W1", "rows", "diagnostics", "best/W1", "meta"]:
        for how in names:
            def setup(d: Path, fx: Fixtures, key=key, how=how) -> None:
                _copy_base(d, fx, "run_i", "data.csv")
                p = d / "run_i" / "checkpoint" / "checkpoint.npz"
                rewrite_npz(p, key, how)

            out.append(Case("npz", f"checkpoint/{key}:{how}:resume", ["resume", "run_i"], setup))
    # zip-level lies: a member that claims to unpack to 4 GB, duplicated members, a non-npy member
    def zip_bomb(d: Path, fx: Fixtures) -> None:
        _copy_base(d, fx, "run", "data.csv")
        (d / "run" / "weights.npz").write_bytes(_bomb("npz"))

    def dup_member(d: Path, fx: Fixtures) -> None:
        _copy_base(d, fx, "run", "data.csv")
        p = d / "run" / "weights.npz"
        with zipfile.ZipFile(p, "a") as zf:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                zf.writestr("W1.npy", b"not an array")

    def foreign_member(d: Path, fx: Fixtures) -> None:
        _copy_base(d, fx, "run", "data.csv")
        with zipfile.ZipFile(d / "run" / "preprocess.npz", "a") as zf:
            zf.writestr("../../escape.txt", b"hello")
            zf.writestr("readme.txt", b"hello")

    for setup, nm in ((zip_bomb, "zip_bomb"), (dup_member, "dup_member"), (foreign_member, "foreign_member")):
        for cname in ("eval", "predict", "plot"):
            out.append(Case("npz", f"{nm}:{cname}", run_commands("run")[cname], setup))
    return out


# --- configs
CONFIG_TEXTS = {
    "ctrl_in_comment": "# a \x01 comment\n" + BASE_CONFIG,
    "ctrl_in_value": BASE_CONFIG.replace("name: fz", "name: f\x07z"),
    "tab_indent": BASE_CONFIG.replace("data:", "data:\n\tsource: x"),
    "bad_int_tag": BASE_CONFIG.replace("seed: 1", "seed: !!int abc"),
    "bad_float_tag": BASE_CONFIG.replace("lr: 0.01", "lr: !!float 1x"),
    "bad_timestamp": BASE_CONFIG.replace("seed: 1", "seed: !!timestamp 2001-13-45"),
    "python_tag": BASE_CONFIG.replace("seed: 1", "seed: !!python/object/apply:os.system ['touch pwned']"),
    "binary_tag": BASE_CONFIG.replace("seed: 1", "seed: !!binary aGVsbG8="),
    "set_tag": BASE_CONFIG.replace("seed: 1", "seed: !!set {a, b}"),
    "custom_tag": BASE_CONFIG.replace("seed: 1", "seed: !foo 1"),
    "surrogate_name": BASE_CONFIG.replace("name: fz", 'name: "\\ud800fz"'),
    "surrogate_source": BASE_CONFIG.replace("source: data.csv", 'source: "data\\udc80.csv"'),
    "nul_escape": BASE_CONFIG.replace("name: fz", 'name: "f\\0z"'),
    "newline_name": BASE_CONFIG.replace("name: fz", 'name: "a\\nb/../../x"'),
    "long_name": BASE_CONFIG.replace("name: fz", "name: " + "n" * 100_000),
    "dup_keys": BASE_CONFIG + "seed: 2\n",
    "merge_key": "base: &b {epochs: 1}\n" + BASE_CONFIG.replace("train: {", "train: {<<: *b, "),
    "alias_bomb": _alias_bomb().decode() + BASE_CONFIG,
    "alias_self": "a: &a [*a]\n" + BASE_CONFIG,
    "deep_flow": "x: " + "[" * 20_000 + "]" * 20_000 + "\n" + BASE_CONFIG,
    "deep_block": "".join("  " * i + f"k{i}:\n" for i in range(3000)) + BASE_CONFIG,
    "multi_doc": BASE_CONFIG + "---\n" + BASE_CONFIG,
    "top_list": "- 1\n- 2\n",
    "top_scalar": "hello\n",
    "empty": "",
    "only_comment": "# nothing\n",
    "null_doc": "null\n",
    "huge_int": BASE_CONFIG.replace("seed: 1", "seed: " + "9" * 5000),
    "huge_float": BASE_CONFIG.replace("lr: 0.01", "lr: 1e999"),
    "neg_zero": BASE_CONFIG.replace("lr: 0.01", "lr: -0.0"),
    "hex_seed": BASE_CONFIG.replace("seed: 1", "seed: 0x1F"),
    "sexagesimal": BASE_CONFIG.replace("seed: 1", "seed: 1:30"),
    "bool_words": BASE_CONFIG.replace("seed: 1", "seed: yes"),
    "bom": "\ufeff" + BASE_CONFIG,
    "utf16": None,  # written as UTF-16 bytes below
    "latin1": None,
    "crlf": BASE_CONFIG.replace("\n", "\r\n"),
    "cr_only": BASE_CONFIG.replace("\n", "\r"),
    "unclosed_flow": BASE_CONFIG.replace("hidden: [4]", "hidden: [4"),
    "unclosed_quote": BASE_CONFIG.replace("name: fz", 'name: "fz'),
    "hidden_huge": BASE_CONFIG.replace("hidden: [4]", "hidden: [65536, 65536]"),
    "hidden_many": BASE_CONFIG.replace("hidden: [4]", "hidden: [" + ", ".join(["2"] * 100_000) + "]"),
    "hidden_1e9": BASE_CONFIG.replace("hidden: [4]", "hidden: [1000000000]"),
    "epochs_huge": BASE_CONFIG.replace("epochs: 3", "epochs: 1000000000000"),
    "batch_huge": BASE_CONFIG.replace("batch_size: 16", "batch_size: 10000000000000"),
    "source_dev_zero": BASE_CONFIG.replace("source: data.csv", "source: /dev/zero"),
    "source_urandom": BASE_CONFIG.replace("source: data.csv", "source: /dev/urandom"),
    "source_fifo": BASE_CONFIG.replace("source: data.csv", "source: fifo.csv"),
    "source_secret": BASE_CONFIG.replace("source: data.csv", "source: {secret}"),
    "source_dir": BASE_CONFIG.replace("source: data.csv", "source: ."),
    "source_proc": BASE_CONFIG.replace("source: data.csv", "source: /proc/self/mem"),
    "source_url": BASE_CONFIG.replace("source: data.csv", "source: http://127.0.0.1:9/x.csv"),
    "source_sklearn_bad": BASE_CONFIG.replace("source: data.csv", "source: 'sklearn:../../etc'"),
    "init_from_zero": BASE_CONFIG.replace("model: {", "model: {init_from: /dev/zero, "),
    "init_from_secret": BASE_CONFIG.replace("model: {", "model: {init_from: {secret}, "),
    "init_from_fifo": BASE_CONFIG.replace("model: {", "model: {init_from: fifo.csv, "),
    "init_from_dir": BASE_CONFIG.replace("model: {", "model: {init_from: ., "),
    "big_file": BASE_CONFIG + "# " + "x" * (80 << 20) + "\n",
    "sweep_block_huge": BASE_CONFIG + "sweep: {grid: {optimizer.lr: [" + ", ".join(["0.1"] * 5000) + "], "
                        "train.batch_size: [" + ", ".join(["8"] * 5000) + "]}}\n",
    "sweep_block_bad": BASE_CONFIG + "sweep: {grid: 5, random: -1}\n",
    "sweep_space_bad": BASE_CONFIG + "sweep: {random: 3, space: {optimizer.lr: 'loguniform(0, 1)'}}\n",
}


def mutated(base: bytes, tokens: list[bytes], rng: random.Random, edits: int, insert: float,
            longest_cut: int) -> bytes:
    """`base` after 1..`edits` random edits: insert a token (probability `insert`), cut up to
    `longest_cut` bytes (up to 0.8), or overwrite one byte with a random one."""
    b = bytearray(base)
    for _ in range(rng.randint(1, edits)):
        i = rng.randrange(len(b))
        op = rng.random()
        if op < insert:
            b[i:i] = rng.choice(tokens)
        elif op < 0.8:
            del b[i:i + rng.randint(1, longest_cut)]
        else:
            b[i] = rng.randrange(256)
    return bytes(b)


def config_cases() -> list[Case]:
    out = []
    rng = random.Random(15)
    commands = {
        "train": ["train", "c.yaml", "--runs-dir", "runs", "-q"],
        "gradcheck": ["gradcheck", "c.yaml"],
        "lr-find": ["lr-find", "c.yaml"],
        "sweep": ["sweep", "c.yaml", "--runs-dir", "runs", "--grid", "seed=1"],
        "trace": ["trace", "c.yaml", "--json"],
    }
    for name, text in CONFIG_TEXTS.items():
        for cname, argv in commands.items():
            if cname != "train" and name in ("big_file", "hidden_many", "deep_block") and cname != "sweep":
                continue

            def setup(d: Path, fx: Fixtures, name=name, text=text) -> None:
                _copy_base(d, fx, "data.csv")
                os.mkfifo(d / "fifo.csv")
                if name == "utf16":
                    (d / "c.yaml").write_bytes(BASE_CONFIG.encode("utf-16"))
                elif name == "latin1":
                    (d / "c.yaml").write_bytes(BASE_CONFIG.replace("name: fz", "name: fé").encode("latin-1"))
                else:
                    (d / "c.yaml").write_text(text.replace("{secret}", str(fx.secret)), encoding="utf-8",
                                              errors="surrogatepass")

            out.append(Case("config", f"{name}:{cname}", argv, setup))
    # the config path itself
    for m in SPECIALS:
        for cname, argv in commands.items():
            def setup(d: Path, fx: Fixtures, m=m) -> None:
                _copy_base(d, fx, "data.csv")
                plant(d / "c.yaml", m, fx)

            out.append(Case("config", f"<path>:{m}:{cname}", argv, setup))
    # random byte-level mutations of the base config, through train
    tokens = [b"{", b"}", b"[", b"]", b":", b"&", b"*", b"!", b"|", b">", b"'", b'"', b"\t", b"\n", b"- ",
              b"\x00", b"\xff", b"\\u", b"%", b"@", b"`", b"? ", b"!!", b"---", b"..."]
    for k in range(220):
        data = mutated(BASE_CONFIG.encode(), tokens, rng, edits=4, insert=0.55, longest_cut=8)

        def setup(d: Path, fx: Fixtures, data=data) -> None:
            _copy_base(d, fx, "data.csv")
            (d / "c.yaml").write_bytes(data)

        out.append(Case("config_bytes", f"mut{k}", commands["train"] if k % 4 else commands["gradcheck"], setup))
    return out


# --- command-line arguments
SET_VALUES = ["", "=", "[", "{a: 1}", "!!int abc", "!!python/object:os.system x", "1e999", "-1", "nan",
              "\x00", "\x07", "9" * 5000, "[" * 5000, "*a", "&a 1", "null", "~", "{}", "[]", "'x'", "\"\\ud800\"",
              "1:2", "0x10", "yes", "sklearn:nope"]
SET_KEYS = ["seed", "name", "data.source", "model.hidden", "optimizer.lr", "train.epochs", "train.batch_size",
            "model", "", ".", "a..b", "model.hidden.0", "x" * 300, "data.split.val", "train.gd"]


def args_cases() -> list[Case]:
    out = []
    rng = random.Random(16)
    for _ in range(160):
        key, value = rng.choice(SET_KEYS), rng.choice(SET_VALUES)
        opt = rng.choice(["--set", "--set", "--grid", "--space"])
        if opt == "--set":
            argv = ["train", "c.yaml", "--runs-dir", "runs", "-q", "--set", f"{key}={value}"]
        elif opt == "--grid":
            argv = ["sweep", "c.yaml", "--runs-dir", "runs", "--grid", f"{key}={value},{value}"]
        else:
            argv = ["sweep", "c.yaml", "--runs-dir", "runs", "--random", "2", "--space",
                    f"{key}={rng.choice(['uniform', 'loguniform', 'int', 'choice', 'foo'])}({value},{value})"]
        out.append(Case("args", f"{opt}:{key[:20]}={value[:12]!r}", argv, _with_config))
    other = [
        ["train", "c.yaml", "--runs-dir", "runs", "--name", "../../escape"],
        ["train", "c.yaml", "--runs-dir", "runs", "--name", "\x1b[31mred"],
        ["train", "c.yaml", "--runs-dir", "runs", "--name", "a" * 5000],
        ["train", "c.yaml", "--runs-dir", "runs", "--seed", "-1"],
        ["train", "c.yaml", "--runs-dir", "runs", "--seed", "99999999999999999999999"],
        ["train", "c.yaml", "--runs-dir", "data.csv"],
        ["train", "c.yaml", "--runs-dir", "fifo.csv"],
        ["train", "c.yaml", "--runs-dir", "/dev/null"],
        ["train", "c.yaml", "--runs-dir", "/proc"],
        ["sweep", "c.yaml", "--runs-dir", "runs", "--random", "1000000000"],
        ["sweep", "c.yaml", "--runs-dir", "runs", "--grid", "optimizer.lr=" + ",".join(["0.1"] * 3000),
         "--grid", "seed=" + ",".join(str(i) for i in range(3000))],
        ["sweep", "c.yaml", "--runs-dir", "runs", "--seeds", "0"],
        ["sweep", "c.yaml", "--runs-dir", "runs", "--jobs", "0"],
        ["sweep", "c.yaml", "--runs-dir", "runs", "--jobs", "100000", "--grid", "seed=1"],
        ["sweep", "--resume", "data.csv"],
        ["sweep", "--resume", "fifo.csv"],
        ["sweep", "--resume", "/dev/zero"],
        ["compare", "runs", "--sort", "\x00"],
        ["compare", "run", "--top", "-5"],
        ["compare", "run", "--top", "99999999999999999999"],
        ["compare", "run", "--format", "xml"],
        ["compare", "run", "--plot", "fifo.csv"],
        ["compare", "run", "--plot", "/dev/null"],
        ["predict", "run", "data.csv", "-o", "fifo_out"],
        ["predict", "run", "data.csv", "-o", "/dev/null"],
        ["predict", "run", "data.csv", "-o", "-"],
        ["predict", "run", "data.csv", "-o", "link_out"],
        ["predict", "run", "data.csv", "-o", "run"],
        ["predict", "run", "data.csv", "-o", "nodir/x.csv"],
        ["schema", "-o", "link_out"],
        ["schema", "-o", "fifo_out"],
        ["plot", "run", "-o", "link_out.png"],
        ["plot", "run", "-o", "out.exe"],
        ["plot", "run", "-o", "/dev/null"],
        ["init", "data.csv", "-o", "link_out"],
        ["init", "data.csv", "-o", "data.csv"],
        ["init", "data.csv", "--target", "nope"],
        ["init", "data.csv", "--target", "\ud800"],
        ["explain", "\x00"],
        ["explain", "a" * 10000],
        ["datasets", "--json"],
        ["lr-find", "c.yaml", "--plot", "fifo_out"],
        ["gradcheck", "c.yaml", "--set", "model.hidden=[4096, 4096]"],
    ]
    for argv in other:
        out.append(Case("args", " ".join(a[:20] for a in argv)[:60], argv, _with_config_and_run))
    return out


def _with_config(d: Path, fx: Fixtures) -> None:
    _copy_base(d, fx, "data.csv", "config.yaml")
    (d / "config.yaml").rename(d / "c.yaml")
    os.mkfifo(d / "fifo.csv")


def _with_config_and_run(d: Path, fx: Fixtures) -> None:
    _with_config(d, fx)
    _copy_base(d, fx, "run")
    os.mkfifo(d / "fifo_out")
    (d / "link_out").symlink_to(fx.victim)
    (d / "link_out.png").symlink_to(fx.victim)


# --- data files, through train, init, eval --data and predict
DATA_TOKENS = [b'"', b",", b"\n", b"\r", b"\x00", b"\xff", b"NA", b"1e400", b"-", b"\t", b";", b" ", b"2024-13-45",
               b'""', b"\xef\xbb\xbf", b"9" * 40, b"nan", b"inf", b"\xe2\x80\xa8", b"'", b"#", b"\\"]


def data_cases() -> list[Case]:
    out = []
    rng = random.Random(17)
    base = BASE_CSV.encode()
    for k in range(300):
        data = mutated(base, DATA_TOKENS, rng, edits=6, insert=0.5, longest_cut=20)
        ext = rng.choice([".csv", ".csv", ".txt", ".tsv"])
        missing = rng.choice(["error", "drop", "impute"])
        cmd = ["train", "init", "eval", "predict"][k % 4]
        argv = {"train": ["train", "c.yaml", "--runs-dir", "runs", "-q"], "init": ["init", f"d{ext}"],
                "eval": ["eval", "run", "--data", f"d{ext}"], "predict": ["predict", "run", f"d{ext}"]}[cmd]

        def setup(d: Path, fx: Fixtures, data=data, ext=ext, missing=missing) -> None:
            (d / f"d{ext}").write_bytes(data)
            (d / "c.yaml").write_text(BASE_CONFIG.replace("source: data.csv", f"source: d{ext}, missing: {missing}"))
            _copy_base(d, fx, "run")

        out.append(Case("data", f"mut{k}:{cmd}", argv, setup))
    # whole-file hostiles: compression lies, special files, structure
    whole = {
        "gz_garbage": ("d.csv.gz", b"\x1f\x8b\x08\x00garbage"),
        "gz_truncated": ("d.csv.gz", None),
        "zip_empty": ("d.csv.zip", None),
        "zip_two": ("d.csv.zip", None),
        "bz2_garbage": ("d.csv.bz2", b"BZh9garbage"),
        "xz_garbage": ("d.csv.xz", b"\xfd7zXZ\x00garbage"),
        "gz_bomb": ("d.csv.gz", None),
        "parquet_garbage": ("d.parquet", b"PAR1garbagePAR1"),
        "parquet_truncated": ("d.parquet", None),
        "header_only": ("d.csv", b"a,b,when,y\n"),
        "one_row": ("d.csv", b"a,b,when,y\n1,x,2024-01-01,p\n"),
        "no_newline": ("d.csv", b"a,b,when,y"),
        "one_column": ("d.csv", b"y\n" + b"p\nq\n" * 40),
        "dup_header": ("d.csv", b"a,a,y\n" + b"1,2,p\n3,4,q\n" * 40),
        "empty_header": ("d.csv", b",,\n" + b"1,2,p\n3,4,q\n" * 40),
        "huge_field": ("d.csv", b"a,b,y\n" + b"1," + b"x" * (5 << 20) + b",p\n" + b"1,2,q\n" * 40),
        "many_columns": ("d.csv", b",".join(b"c%d" % i for i in range(20000)) + b",y\n" +
                         (b"1," * 20000 + b"p\n") * 3 + (b"2," * 20000 + b"q\n") * 3),
        "many_levels": ("d.csv", b"a,b,y\n" + b"".join(b"%d,lvl%d,%s\n" % (i, i, b"pq"[i % 2:i % 2 + 1])
                                                     for i in range(100000))),
        "long_line_no_nl": ("d.csv", b"a,b,y\n" + b"1" * (20 << 20)),
        "all_missing": ("d.csv", b"a,b,y\n" + b",,p\n,,q\n" * 40),
        "target_missing": ("d.csv", b"a,b,y\n" + b"1,2,\n3,4,\n" * 40),
        "binary_png": ("d.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10),
        "utf16": ("d.csv", BASE_CSV.encode("utf-16")),
        "deep_quotes": ("d.csv", b"a,b,y\n" + b'"' * 100000 + b"\n"),
        "only_blank_lines": ("d.csv", b"\n" * 1000),
        "inf_values": ("d.csv", b"a,b,y\n" + b"inf,-inf,p\n1e309,2,q\n" * 40),
        "huge_numbers": ("d.csv", b"a,b,y\n" + b"1e308,1e308,p\n-1e308,1e308,q\n" * 40),
    }
    for name, (fname, data) in whole.items():
        ext = fname.split(".", 1)[1]
        for cmd in ("train", "init", "eval", "predict"):
            argv = {"train": ["train", "c.yaml", "--runs-dir", "runs", "-q"], "init": ["init", fname],
                    "eval": ["eval", "run", "--data", fname], "predict": ["predict", "run", fname]}[cmd]

            def setup(d: Path, fx: Fixtures, name=name, fname=fname, data=data) -> None:
                import bz2
                import gzip

                p = d / fname
                if name == "gz_truncated":
                    p.write_bytes(gzip.compress(BASE_CSV.encode())[:-30])
                elif name == "gz_bomb":
                    p.write_bytes(_bomb("gz"))
                elif name == "zip_empty":
                    with zipfile.ZipFile(p, "w"):
                        pass
                elif name == "zip_two":
                    with zipfile.ZipFile(p, "w") as zf:
                        zf.writestr("a.csv", BASE_CSV)
                        zf.writestr("b.csv", BASE_CSV)
                elif name == "parquet_truncated":
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    buf = io.BytesIO()
                    pq.write_table(pa.table({"a": [1.0, 2.0] * 40, "y": ["p", "q"] * 40}), buf)
                    p.write_bytes(buf.getvalue()[:-40])
                else:
                    p.write_bytes(data)
                del bz2
                (d / "c.yaml").write_text(BASE_CONFIG.replace("source: data.csv", f"source: {fname}"))
                _copy_base(d, fx, "run")

            out.append(Case("data", f"{name}:{cmd}", argv, setup))
    # the data path itself
    for m in SPECIALS:
        for cmd in ("train", "init", "eval", "predict"):
            argv = {"train": ["train", "c.yaml", "--runs-dir", "runs", "-q"], "init": ["init", "d.csv"],
                    "eval": ["eval", "run", "--data", "d.csv"], "predict": ["predict", "run", "d.csv"]}[cmd]

            def setup(d: Path, fx: Fixtures, m=m) -> None:
                (d / "c.yaml").write_text(BASE_CONFIG.replace("source: data.csv", "source: d.csv"))
                _copy_base(d, fx, "run")
                plant(d / "d.csv", m, fx)

            out.append(Case("data", f"<path>:{m}:{cmd}", argv, setup))
    return out


# --- sweep manifests
def sweep_cases() -> list[Case]:
    out = []
    for m in list(BYTE_MUTATIONS) + SPECIALS:
        def setup(d: Path, fx: Fixtures, m=m) -> None:
            _copy_base(d, fx, "sweep", "data.csv", "config.yaml")
            mutate_file(d / "sweep" / "sweep.json", m, fx)

        out.append(Case("sweep", f"sweep.json:{m}", ["sweep", "--resume", "sweep"], setup))
    for key in ["config", "command", "jobs", "dask", "trials", "trials.0", "trials.0.overrides", "trials.0.seed",
                "trials.0.status", "trials.0.run_dir", "trials.0.id"]:
        for v in JSON_VALUES + ["<delete>", "/dev/zero", "../../outside"]:
            def setup(d: Path, fx: Fixtures, key=key, v=v) -> None:
                _copy_base(d, fx, "sweep", "data.csv", "config.yaml")
                p = d / "sweep" / "sweep.json"
                doc = json.loads(p.read_text())
                *parents, last = key.split(".")
                node = doc
                for part in parents:
                    node = node[int(part)] if part.isdigit() else node[part]
                last = int(last) if last.isdigit() else last
                if v == "<delete>":
                    node.pop(last) if isinstance(node, dict) else node.pop(last)
                else:
                    node[last] = v
                p.write_text(json.dumps(doc))

            out.append(Case("sweep", f"{key}={str(v)[:12]!r}", ["sweep", "--resume", "sweep"], setup))
    return out


def cases() -> list[Case]:
    """The whole corpus, in a fixed order."""
    random.seed(0)
    return (rundir_cases() + summary_cases() + checkpoint_meta_cases() + npz_cases() + config_cases()
            + args_cases() + data_cases() + sweep_cases())


# ------------------------------------------------------------------------------------ running
@dataclass
class Result:
    case: Case
    code: int | None
    seconds: float
    maxrss_mb: float
    problems: list[str]
    stderr_tail: str


def _snapshot_specials(d: Path) -> dict[str, int]:
    out = {}
    for p in d.rglob("*"):
        try:
            mode = os.lstat(p).st_mode
        except OSError:
            continue
        if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISLNK(mode):
            out[str(p)] = stat.S_IFMT(mode)
    return out


def _child(case: Case, d: Path, log: Path, mem_cap: int, tag: str) -> None:
    """In the forked child: the real CLI, bounded. Never returns."""
    code = 1
    try:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (mem_cap, mem_cap))
        os.environ["NNCTL_FUZZ_TAG"] = tag  # marks the processes a case starts (a sweep's trials)
        os.chdir(d)
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
        out = os.open(log.with_suffix(".out"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err = os.open(log.with_suffix(".err"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1)
        os.dup2(err, 2)
        # fresh streams on fds 1 and 2, encoded as a real interpreter's are (the parent's may be wrapped)
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
        sys.argv = ["nnctl", *case.argv]
        if case.entry is None:
            from nnctl.cli import main
        else:
            main = case.entry
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _tagged_pids(tag: str) -> list[int]:
    """Processes (other than ours) whose environment holds the case's tag: a case's leftovers."""
    pids = []
    needle = f"NNCTL_FUZZ_TAG={tag}\0".encode()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if needle in (p / "environ").read_bytes():
                pids.append(int(p.name))
        except OSError:
            continue
    return pids


def run_case(case: Case, index: int, fx: Fixtures, timeout: float, mem_cap: int) -> Result:
    d = fx.root / "cases" / f"{index:05d}"
    d.mkdir(parents=True)
    log = fx.root / "logs" / f"{index:05d}"
    case.setup(d, fx)
    specials = _snapshot_specials(d)
    victim_before = fx.victim.read_bytes()
    outside_before = sorted(os.listdir(fx.outside))
    tag = f"{os.getpid()}-{index}"
    sys.stdout.flush()
    sys.stderr.flush()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(case, d, log, mem_cap, tag)
    problems = []
    code = None
    rusage = None
    while True:
        wpid, status, rusage = os.wait4(pid, os.WNOHANG)
        if wpid:
            break
        if time.monotonic() - t0 > timeout:
            problems.append(f"timeout after {timeout:.0f} s")
            os.killpg(pid, signal.SIGKILL)
            _, status, rusage = os.wait4(pid, 0)
            break
        time.sleep(0.005)
    seconds = time.monotonic() - t0
    if os.WIFSIGNALED(status) and not problems:
        problems.append(f"killed by signal {os.WTERMSIG(status)}")
    elif os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
    leftovers = _tagged_pids(tag)
    if leftovers:
        time.sleep(1.0)  # a sweep's trials may still be writing their last checkpoint
        leftovers = _tagged_pids(tag)
        if leftovers:
            problems.append(f"left {len(leftovers)} process(es) running")
            for p in leftovers:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
    out = log.with_suffix(".out").read_bytes().decode("utf-8", "replace")
    err = log.with_suffix(".err").read_bytes().decode("utf-8", "replace")
    if "Traceback (most recent call last)" in out + err:
        problems.append("traceback")
    if code is not None and code not in (0, 1, 2):
        problems.append(f"exit code {code}")
    if code == 2 and "error:" not in err.lower():  # nnctl's "error: ..." or click's usage "Error: ..."
        problems.append("exit 2 without an error: line")
    if SECRET in out + err or "second line" in err:
        problems.append("quoted the secret file")
    if fx.victim.read_bytes() != victim_before or not fx.victim.is_file() or fx.victim.is_symlink():
        problems.append("changed the victim file outside its folder")
        fx.victim.write_text(VICTIM)
    if sorted(os.listdir(fx.outside)) != outside_before:
        problems.append("wrote outside its folder")
    if (d / "pwned").exists() or (d / "pwned.txt").exists():
        problems.append("ran code from a tag")
    for path, kind in specials.items():
        try:
            now = stat.S_IFMT(os.lstat(path).st_mode)
        except FileNotFoundError:
            now = None
        if now != kind and kind != stat.S_IFLNK:  # a FIFO or device replaced by a regular file
            problems.append(f"replaced the special file {Path(path).name}")
    for dev in ("/dev/null", "/dev/zero"):
        if not stat.S_ISCHR(os.lstat(dev).st_mode):
            problems.append(f"{dev} is no longer a device")
    tail = err.strip().splitlines()[-1][:160] if err.strip() else ""
    maxrss = (rusage.ru_maxrss / 1024) if rusage is not None else 0.0
    shutil.rmtree(d, ignore_errors=True)
    return Result(case, code, seconds, maxrss, problems, tail)


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def warm_imports() -> None:
    """Import once in the parent what the commands use, so each forked case pays only for its work."""
    import numpy  # noqa: F401
    import pyarrow  # noqa: F401
    import pyarrow.csv  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import yaml  # noqa: F401

    import nnctl.cli  # noqa: F401
    import nnctl.compare  # noqa: F401
    import nnctl.evaluate  # noqa: F401
    import nnctl.inspect  # noqa: F401
    import nnctl.training.session  # noqa: F401

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    except ImportError:
        pass


def run_corpus(selected: list[tuple[int, Case]], root: Path, jobs: int = 2, timeout: float = 30.0,
               mem_mb: int = 3072, progress: bool = True) -> list[Result]:
    """Build the fixtures in `root`, then run the selected cases, `jobs` at a time."""
    from concurrent.futures import ThreadPoolExecutor

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    fx = build_fixtures(root) if not (root / "base").is_dir() else Fixtures(root)
    (root / "logs").mkdir(exist_ok=True)
    warm_imports()
    mem_cap = _vm_size() + (mem_mb << 20)
    results: list[Result] = []
    t0 = time.monotonic()
    with ThreadPoolExecutor(jobs) as pool:  # threads only wait: each case is its own forked process
        futures = [pool.submit(run_case, c, i, fx, timeout, mem_cap) for i, c in selected]
        for n, fut in enumerate(futures, 1):
            r = fut.result()
            results.append(r)
            if progress and (n % 100 == 0 or n == len(futures)):
                bad = sum(bool(x.problems) for x in results)
                print(f"  {n}/{len(futures)} cases, {bad} bad, {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return results


def report(results: list[Result], show: int = 50) -> str:
    lines = []
    fam = Counter(r.case.family for r in results)
    codes = Counter((r.case.family, "timeout" if r.code is None else str(r.code)) for r in results)
    all_codes = sorted({c for _, c in codes})
    lines.append(f"{'family':<16}" + "".join(f"{'exit ' + c if c.isdigit() else c:>9}" for c in all_codes)
                 + f"{'cases':>8}{'bad':>6}")
    for f in sorted(fam):
        bad = sum(bool(r.problems) for r in results if r.case.family == f)
        lines.append(f"{f:<16}" + "".join(f"{codes.get((f, c), 0):>9}" for c in all_codes) + f"{fam[f]:>8}{bad:>6}")
    total_bad = [r for r in results if r.problems]
    lines.append(f"{'total':<16}" + "".join(f"{sum(v for (_, c), v in codes.items() if c == k):>9}"
                                           for k in all_codes) + f"{len(results):>8}{len(total_bad):>6}")
    kinds = Counter(p.split(" after")[0] for r in total_bad for p in r.problems)
    if kinds:
        lines.append("problems: " + ", ".join(f"{k} x{v}" for k, v in kinds.most_common()))
    slowest = max(results, key=lambda r: r.seconds, default=None)
    biggest = max(results, key=lambda r: r.maxrss_mb, default=None)
    if slowest:
        lines.append(f"slowest case {slowest.seconds:.1f} s ({slowest.case.family} {slowest.case.name}); "
                     f"largest peak RSS {biggest.maxrss_mb:.0f} MB ({biggest.case.family} {biggest.case.name})")
    for r in total_bad[:show]:
        lines.append(f"BAD {r.case.family} {r.case.name} [exit {r.code}]: {'; '.join(r.problems)} | {r.stderr_tail}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example: python -m benchmarks.fuzz --every 10 --jobs 2")
    ap.add_argument("--every", type=int, default=1, help="run every N-th case (a slice)")
    ap.add_argument("--family", action="append", help="only these families (repeatable)")
    ap.add_argument("--match", help="only cases whose name contains this")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per case")
    ap.add_argument("--mem-mb", type=int, default=3072, help="address space each case may add")
    ap.add_argument("--show", type=int, default=50, help="bad cases to list")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--keep", help="a folder to build in and keep (default: a temporary one)")
    ap.add_argument("--json-out", help="also write the counts and the bad cases to this JSON file")
    args = ap.parse_args(argv)
    selected = [(i, c) for i, c in enumerate(cases())
                if i % args.every == 0 and (not args.family or c.family in args.family)
                and (not args.match or args.match in c.name)]
    if args.list:
        for i, c in selected:
            print(i, c.family, ascii(c.name), ascii(" ".join(c.argv)[:100]))
        print(len(selected), "cases")
        return 0
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="nnctl-fuzz-"))
    print(f"{len(selected)} cases in {root}", file=sys.stderr)
    t0 = time.monotonic()
    results = run_corpus(selected, root, args.jobs, args.timeout, args.mem_mb)
    print(report(results, args.show))
    print(f"{len(results)} cases in {time.monotonic() - t0:.0f} s (jobs {args.jobs}, timeout {args.timeout:.0f} s, "
          f"memory cap +{args.mem_mb} MB)")
    if args.json_out:
        counts = Counter(f"{r.case.family} exit {r.code}" for r in results)
        Path(args.json_out).write_text(json.dumps({
            "cases": len(results), "counts": dict(sorted(counts.items())),
            "bad": [{"family": r.case.family, "name": ascii(r.case.name), "argv": ascii(r.case.argv), "code": r.code,
                     "problems": r.problems, "stderr": r.stderr_tail} for r in results if r.problems]}, indent=1))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if any(r.problems for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
