"""train.snapshot_every (snapshots.npz) and plot --evolution / --units: keys and epochs, exact after a
kill and resume, PNG and GIF output, and the refusals (no snapshots, wrong inputs, tampered file)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_reliability import nnctl, only_run, start
from typer.testing import CliRunner

from nnctl.cli import app
from nnctl.plot_evolution import evenly

XOR = ("data: {source: 'sklearn:xor', options: {n_samples: 200}}\nmodel: {hidden: [8, 8], norm: batch}\n"
       "optimizer: {name: adam, lr: 0.01}\ntrain: {epochs: 7, batch_size: 16, snapshot_every: 3}\n")


def run(*args, expect: int = 0):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == expect, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def train(tmp_path: Path, text: str, *args) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    return Path(run("train", cfg, "--runs-dir", tmp_path / "runs", "-q", *args).stdout.strip().splitlines()[-1])


def npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def xor_run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("xor"), XOR)


def test_snapshot_keys_epochs_and_final_weights(xor_run):
    snaps, weights = npz(xor_run / "snapshots.npz"), npz(xor_run / "weights.npz")
    epochs = sorted({int(k.split("/")[0][1:]) for k in snaps})
    assert epochs == [0, 3, 6, 7]  # the initial weights, every 3 epochs, and the last epoch
    assert set(snaps) == {f"e{e}/{k}" for e in epochs for k in weights}
    assert "e3/running_mean1" in snaps  # batch norm's running statistics are state too
    for k in weights:
        np.testing.assert_array_equal(snaps[f"e7/{k}"], weights[k])
    assert not np.array_equal(snaps["e0/W1"], snaps["e3/W1"])


def test_runs_without_snapshots_write_none_and_too_many_are_refused(tmp_path):
    run_dir = train(tmp_path, XOR.replace(", snapshot_every: 3", ""))
    assert not (run_dir / "snapshots.npz").exists()
    cfg = tmp_path / "big.yaml"
    cfg.write_text(XOR.replace("hidden: [8, 8]", "hidden: [256, 256]").replace("epochs: 7", "epochs: 2000000")
                   .replace("snapshot_every: 3", "snapshot_every: 1"))
    result = run("train", cfg, "--runs-dir", tmp_path / "big", expect=2)
    assert "train.snapshot_every" in result.stderr and "256 MB" in result.stderr
    assert "snapshot_every: 2056 or more" in result.stderr  # 68,865 float32 parameters: 974 snapshots fit
    assert not (tmp_path / "big").exists()
    result = run("train", cfg, "--runs-dir", tmp_path / "big", "--set", "train.snapshot_every=0", expect=2)
    assert "snapshot_every" in result.stderr


def test_snapshots_after_kill_and_resume_equal_an_uninterrupted_run(tmp_path):
    text = ("data: {source: 'sklearn:spiral', options: {n_samples: 300}}\nmodel: {hidden: [16]}\n"
            "optimizer: {name: sgd, lr: 0.1}\ntrain: {epochs: 60, batch_size: 8, snapshot_every: 7}\n")
    cfg = tmp_path / "spiral.yaml"
    cfg.write_text(text)
    ref = Path(nnctl("train", cfg, "--runs-dir", tmp_path / "ref", "-q", check=0).stdout.strip())
    expected = npz(ref / "snapshots.npz")
    assert len({k.split("/")[0] for k in expected}) == 10  # 0, 7, ..., 56, 60
    proc = start("train", cfg, "--runs-dir", tmp_path / "kill", "-q")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:  # a checkpoint past the second snapshot
        ckpts = list((tmp_path / "kill").glob("*/metrics.csv"))
        if ckpts and ckpts[0].read_text().count("\n") > 16:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = only_run(tmp_path / "kill")
    assert (killed / "checkpoint" / "checkpoint.npz").exists()
    assert "running" in (killed / "summary.json").read_text(), "the run finished before the kill"
    nnctl("resume", killed, "-q", check=0)
    got = npz(killed / "snapshots.npz")
    assert got.keys() == expected.keys()
    for k in expected:
        assert np.array_equal(got[k], expected[k]), k


def test_evolution_png_and_gif_and_units(xor_run, tmp_path):
    png, gif, units = tmp_path / "evo.png", tmp_path / "evo.gif", tmp_path / "units.png"
    run("plot", xor_run, "--evolution", "-o", png)
    run("plot", xor_run, "--evolution", "-o", gif)
    run("plot", xor_run, "--units", "-o", units)
    assert Image.open(png).format == "PNG" and Image.open(units).format == "PNG"
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 4  # one frame per snapshot: epochs 0, 3, 6, 7
    run("plot", xor_run, "--evolution")
    assert (xor_run / "evolution.png").exists()
    assert evenly(list(range(25)), 12)[0] == 0 and evenly(list(range(25)), 12)[-1] == 24
    assert len(evenly(list(range(25)), 12)) == 12 and evenly([0, 5], 12) == [0, 5]


def test_evolution_refusals(xor_run, tmp_path):
    plain = train(tmp_path / "a", XOR.replace(", snapshot_every: 3", ""))
    assert "train.snapshot_every" in run("plot", plain, "--evolution", expect=2).stderr
    blobs = train(tmp_path / "b", XOR.replace("'sklearn:xor', options: {n_samples: 200}",
                                              "'sklearn:blobs', options: {n_samples: 90, n_features: 3}"))
    message = run("plot", blobs, "--evolution", expect=2).stderr
    assert "needs 2-D numeric inputs" in message and "3 input columns" in message
    assert "needs 2-D" in run("plot", blobs, "--units", expect=2).stderr
    assert ".png" in run("plot", xor_run, "--evolution", "-o", tmp_path / "x.jpg", expect=2).stderr
    assert "give one of them" in run("plot", xor_run, "--evolution", "--units", expect=2).stderr


@pytest.mark.parametrize("tamper, message", [
    (lambda a: a.pop("e3/b1"), "missing key 'e3/b1'"),
    (lambda a: a.__setitem__("e6/W1", np.zeros((3, 3), np.float32)), "'e6/W1' is a (3, 3) array"),
    (lambda a: a.__setitem__("e6/W9", np.zeros(3, np.float32)), "no array 'W9'"),
])
def test_tampered_snapshots_are_refused(xor_run, tmp_path, tamper, message):
    import shutil

    copy = tmp_path / xor_run.name
    shutil.copytree(xor_run, copy)
    arrays = npz(copy / "snapshots.npz")
    tamper(arrays)
    np.savez(copy / "snapshots.npz", **arrays)
    err = run("plot", copy, "--evolution", "-o", tmp_path / "e.png", expect=2).stderr
    assert message in " ".join(err.split()), err
    assert not (tmp_path / "e.png").exists()
