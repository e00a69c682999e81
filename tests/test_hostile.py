"""Hostile inputs (issue 15): a fixed slice of the fuzz corpus in benchmarks/fuzz.py, and checks that
the harness itself catches what it claims to catch.

The whole corpus (5,301 cases over configs, arguments, data files, every file of a run
directory, NumPy archive members and sweep manifests) runs with `python -m benchmarks.fuzz`
(about 6 minutes on 2 cores); here every NNCTL_HOSTILE_EVERY-th case (default 19, about 280
cases) runs in a subprocess of its own, each case bounded by a timeout and a memory cap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import fuzz

REPO = Path(__file__).resolve().parents[1]
EVERY = int(os.environ.get("NNCTL_HOSTILE_EVERY", "19"))


def test_corpus_is_large_and_covers_every_family():
    cases = fuzz.cases()
    assert len(cases) >= 2000
    families = {c.family for c in cases}
    assert families >= {"rundir", "summary", "checkpoint", "checkpoint_meta", "npz", "config", "config_bytes",
                        "args", "data", "sweep"}
    assert {c.family for c in cases[::EVERY]} == families  # the slice below touches each of them
    assert [c.name for c in fuzz.cases()] == [c.name for c in cases]  # deterministic: the slice is stable


def test_hostile_slice_gives_no_traceback_hang_or_outside_write(tmp_path):
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.fuzz", "--every", str(EVERY), "--timeout", "30",
                           "--json-out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=900)
    result = json.loads(out.read_text())
    assert result["cases"] == len(fuzz.cases()[::EVERY])
    assert not result["bad"], proc.stdout
    assert proc.returncode == 0, proc.stderr[-3000:]


# --- the harness catches what it claims to (each would pass silently if classification were broken)
def _raise():
    raise RuntimeError("boom")


def _hang():
    time.sleep(60)


def _write_victim():
    victim = Path(os.environ["FZ_VICTIM"])
    victim.write_text("overwritten")


def _exit_7():
    sys.exit(7)


def _quiet_exit_2():
    sys.exit(2)


def _print_secret():
    print(Path(os.environ["FZ_SECRET"]).read_text())


def _allocate():
    import numpy as np

    np.ones((1 << 40) // 8)  # 1 TB: beyond the memory cap


@pytest.fixture(scope="module")
def bare_fixtures(tmp_path_factory):
    root = tmp_path_factory.mktemp("canary")
    fx = fuzz.Fixtures(root)
    fx.outside.mkdir()
    fx.victim.write_text(fuzz.VICTIM)
    fx.secret.write_text(fuzz.SECRET + "\nsecond line\n")
    (root / "logs").mkdir()
    os.environ["FZ_VICTIM"], os.environ["FZ_SECRET"] = str(fx.victim), str(fx.secret)
    return fx


@pytest.mark.parametrize("entry, expected", [
    (_raise, "traceback"), (_hang, "timeout"), (_write_victim, "changed the victim file"),
    (_exit_7, "exit code 7"), (_quiet_exit_2, "exit 2 without an error: line"), (_print_secret, "quoted the secret"),
    (_allocate, "traceback"),
])
def test_harness_flags_bad_behaviour(bare_fixtures, entry, expected):
    case = fuzz.Case("canary", entry.__name__, [], lambda d, fx: None, entry=entry)
    index = abs(hash(entry.__name__)) % 90000
    result = fuzz.run_case(case, index, bare_fixtures, timeout=3, mem_cap=fuzz._vm_size() + (1 << 30))
    assert any(expected in p for p in result.problems), result.problems
