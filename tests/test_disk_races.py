"""Disk full, leftover temp files, compare racing live trainers, read-only run dirs, unencodable names.

Like test_reliability.py, these start `python -m nnctl` as separate processes (the subprocesses
inherit PYTHONPATH, so they run the nnctl under test). Checkpoints are forced every epoch
(NNCTL_CHECKPOINT_SECONDS=0), so a fault at "checkpoint.npz@K" lands at epoch K.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

XOR = "data: {source: 'sklearn:xor', options: {n_samples: 200}}\nmodel: {hidden: [4]}\n"


def env(extra=None):
    e = dict(os.environ)
    e["NNCTL_CHECKPOINT_SECONDS"] = "0"
    e.pop("NNCTL_FAULT_ENOSPC", None)
    e.update(extra or {})
    return e


def nnctl(*args, check=None, extra_env=None, prefix=(), timeout=120):
    proc = subprocess.run([*prefix, sys.executable, "-m", "nnctl", *args], capture_output=True, text=True,
                          env=env(extra_env), timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def config(tmp_path: Path, epochs: int, extra: str = "") -> Path:
    cfg = tmp_path / f"c{epochs}.yaml"
    cfg.write_text(XOR + f"train: {{epochs: {epochs}}}\n" + extra)
    return cfg


def only_run(folder: Path) -> Path:
    runs = [p for p in folder.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def status_in_compare(run: Path) -> str:
    return json.loads(nnctl("compare", str(run), "--format", "json").stdout)[0]["status"]


def test_subprocesses_run_the_nnctl_under_test():
    import nnctl as here

    out = subprocess.run([sys.executable, "-c", "import nnctl; print(nnctl.__file__)"], capture_output=True,
                         text=True, env=env(), check=True).stdout.strip()
    assert out == here.__file__


# ------------------------------------------------------------------------------------ disk full
@pytest.mark.parametrize("fault,checkpoint_epoch", [
    ("summary.json@1", None),  # the very first summary: no summary.json at all
    ("split.npz@1", None),  # set-up, after the first summary
    ("summary.json@2", None),  # the first write of training, and every summary after it
    ("metrics.csv@3", 2),  # epoch 2's rewrite, after its checkpoint
    ("checkpoint.npz@3", 2),
    ("weights.npz@1", 10),  # the end of a 10-epoch run: the finished state's checkpoint (epoch 10)
])
def test_disk_full_leaves_a_truthful_status_and_message(tmp_path, fault, checkpoint_epoch):
    out = nnctl("train", str(config(tmp_path, 10)), "--runs-dir", str(tmp_path / "runs"), "-q", check=1,
                extra_env={"NNCTL_FAULT_ENOSPC": fault})
    name = fault.split("@")[0]
    assert f"{name}: cannot write (No space left on device)" in out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    run = only_run(tmp_path / "runs")
    assert out.stdout.strip() == str(run)
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else None
    if name != "summary.json":  # summary.json itself is writable: it records the failure
        assert summary["status"] == "failed" and "No space left on device" in summary["message"]
    else:  # it is not: the message says so, and the run still reads as not running (below)
        assert "summary.json could not be updated either" in out.stderr
    assert status_in_compare(run) in ("failed", "interrupted", "damaged")  # never "running"
    if checkpoint_epoch is None:
        assert "intact" not in out.stderr and "no checkpoint" in out.stderr and "train again" in out.stderr
        return
    assert f"checkpoint after epoch {checkpoint_epoch} is intact" in out.stderr
    assert f"nnctl resume {run}" in out.stderr
    nnctl("resume", str(run), "-q", check=0)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 10
    assert summary["resumed_from"]["epoch"] == checkpoint_epoch


# ------------------------------------------------------------------------------------ temp files
def plant_temps(run: Path, outside: Path) -> dict[str, Path]:
    """write_atomic's leftovers, one symlink with a temp name, and files that only look similar."""
    (run / "checkpoint").mkdir(exist_ok=True)
    target = outside / "precious.txt"
    target.write_text("keep me")
    files = {"top": run / ".summary.json.0badf00d.tmp",
             "checkpoint": run / "checkpoint" / ".checkpoint.npz.1234abcd.tmp",
             "link": run / ".weights.npz.cafebabe.tmp", "other": run / ".notes.tmp", "mine": run / "mine.1234abcd.tmp"}
    for key, path in files.items():
        if key == "link":
            path.symlink_to(target)
        else:
            path.write_text("half a file")
    return files


def assert_cleaned(files: dict[str, Path], outside: Path):
    assert not files["top"].exists() and not files["checkpoint"].exists()
    assert files["link"].is_symlink() and (outside / "precious.txt").read_text() == "keep me"
    assert files["other"].exists() and files["mine"].exists()  # not nnctl's temp pattern


def test_eval_and_resume_remove_stale_temp_files_not_links(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    run = Path(nnctl("train", str(config(tmp_path, 3)), "--runs-dir", str(tmp_path / "runs"), "-q",
                     check=0).stdout.strip())
    files = plant_temps(run, outside)
    nnctl("eval", str(run), check=0)
    assert_cleaned(files, outside)
    # a run that was killed (here: by a disk-full fault after its checkpoints), then resumed
    nnctl("train", str(config(tmp_path, 5)), "--runs-dir", str(tmp_path / "runs2"), "-q", check=1,
          extra_env={"NNCTL_FAULT_ENOSPC": "weights.npz@1"})
    run = only_run(tmp_path / "runs2")
    files = plant_temps(run, outside)
    nnctl("resume", str(run), "-q", check=0)
    assert_cleaned(files, outside)


def test_temp_files_of_a_live_trainer_are_left_alone(tmp_path):
    """While a trainer holds the lock it may be mid-write: eval must not touch its temp files."""
    from typer.testing import CliRunner

    from nnctl.cli import app
    from nnctl.runs import RunDir, RunLock

    run = Path(nnctl("train", str(config(tmp_path, 2)), "--runs-dir", str(tmp_path / "runs"), "-q",
                     check=0).stdout.strip())
    lock = RunLock.acquire(RunDir(run))  # stands for the live trainer
    temp = run / ".metrics.csv.0badf00d.tmp"
    temp.write_text("being written")
    try:
        result = CliRunner().invoke(app, ["eval", str(run)])
    finally:
        lock.release()
    assert result.exit_code == 0, result.output
    assert temp.exists()


def test_sigkilled_writer_leftovers_are_removed_by_resume(tmp_path):
    """A real SIGKILL mid-run (often mid-write), then resume: no temp file is left in the run dir."""
    import signal

    cmd = [sys.executable, "-m", "nnctl", "train", str(config(tmp_path, 4000)), "--runs-dir", str(tmp_path / "runs"),
           "-q"]
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not list((tmp_path / "runs").glob("*/checkpoint/checkpoint.npz")) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run = only_run(tmp_path / "runs")
    (run / ".summary.json.89abcdef.tmp").write_text("{")  # in case the kill landed between two writes
    resumed = subprocess.Popen([sys.executable, "-m", "nnctl", "resume", str(run), "-q"], env=env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while "resumed_at" not in (run / "summary.json").read_text() and time.monotonic() < deadline:
        time.sleep(0.01)
    resumed.send_signal(signal.SIGINT)  # no need to train 4000 epochs
    _, err = resumed.communicate(timeout=30)
    assert resumed.returncode == 1 and "Traceback" not in err, err
    assert not list(run.rglob(".*.tmp"))


# ------------------------------------------------------------------------------------ races
def test_compare_never_calls_a_live_or_finished_run_interrupted(tmp_path):
    """Trainers start and finish while compare reads them: every run reads as running or completed.

    The reads race both ends of a run: set-up (config.yaml written, summary.json not yet) and the
    finish (the final summary written, then the lock released). Runs seen completed are not read
    again, so the reads crowd around the live ones."""
    from nnctl.runs import is_run_dir, read_run

    runs = tmp_path / "runs"
    procs = []
    for k in range(6):  # staggered starts and ends
        procs.append(subprocess.Popen([sys.executable, "-m", "nnctl", "train", str(config(tmp_path, 10 + 15 * k)),
                                       "--runs-dir", str(runs), "-q"], env=env(), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True))
        time.sleep(0.05)
    completed, seen, reads, cli_reads = set(), set(), 0, 0
    while any(p.poll() is None for p in procs):
        for path in sorted(runs.iterdir()) if runs.exists() else []:
            if path in completed or not is_run_dir(path):
                continue
            info = read_run(path)
            reads += 1
            seen.add(info.status)
            assert info.status in ("running", "completed"), (path.name, info.status, info.problem)
            if info.status == "completed":
                completed.add(path)
        if reads > 50 * (cli_reads + 1):
            doc = json.loads(nnctl("compare", str(runs), "--format", "json").stdout or "[]")
            assert all(r["status"] in ("running", "completed") for r in doc), doc
            cli_reads += 1
    assert all(p.wait() == 0 for p in procs), [p.stderr.read() for p in procs]
    assert seen == {"running", "completed"} and cli_reads >= 1, (seen, reads, cli_reads)
    print(f"{reads} reads, {cli_reads} by nnctl compare")


def test_read_run_settles_both_races_deterministically(tmp_path, monkeypatch):
    """The two windows the test above hits by chance, made certain: a run being set up (config.yaml
    but no summary.json yet, lock held) and a run that finishes between the read of summary.json
    and the probe of its lock."""
    import nnctl.runs as runs_module
    from nnctl.runs import RunDir, RunLock, read_run

    run = Path(nnctl("train", str(config(tmp_path, 2)), "--runs-dir", str(tmp_path / "runs"), "-q",
                     check=0).stdout.strip())
    final = (run / "summary.json").read_text()
    starting = run.parent / "starting"
    starting.mkdir()
    (starting / "config.yaml").write_text((run / "config.yaml").read_text())
    lock = RunLock.acquire(RunDir(starting))
    try:
        info = read_run(starting)
    finally:
        lock.release()
    assert (info.status, info.problem) == ("running", "")
    assert read_run(starting).status == "damaged"  # no summary.json and nobody at work: killed in set-up

    (run / "summary.json").write_text(final.replace('"status": "completed"', '"status": "running"'))

    def finishes_now(path):  # the trainer writes its final summary, then lets go of the lock
        (run / "summary.json").write_text(final)
        return False

    monkeypatch.setattr(runs_module, "lock_is_held", finishes_now)
    assert read_run(run).status == "completed"


# ------------------------------------------------------------------------------------ read-only run dirs
@pytest.fixture(scope="module")
def unprivileged() -> list[str]:
    """A command prefix under which file permissions apply. Root ignores them, so as root the
    commands run without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (util-linux setpriv), if possible."""
    if os.geteuid() != 0:
        return []
    caps = "-dac_override,-dac_read_search"
    prefix = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions cannot be denied (see the injected tests)")
    probe = subprocess.run([*prefix, "test", "-r", "/proc/1/root"], capture_output=True)
    if probe.returncode == 0 or b"setpriv" in probe.stderr:
        pytest.skip("running as root and setpriv cannot drop CAP_DAC_OVERRIDE here (see the injected tests)")
    return prefix


@pytest.fixture
def finished_run(tmp_path):
    run = Path(nnctl("train", str(config(tmp_path, 3)), "--runs-dir", str(tmp_path / "runs"), "-q",
                     check=0).stdout.strip())
    yield run
    for p in [run, *run.rglob("*")]:  # let pytest remove it
        if not p.is_symlink():
            p.chmod(0o755)


def test_read_only_run_dir_eval_prints_resume_refuses(finished_run, unprivileged):
    run = finished_run
    summary = json.loads((run / "summary.json").read_text())
    summary["status"] = "interrupted"  # so that resume has something to do
    (run / "summary.json").write_text(json.dumps(summary))
    for p in (run, run / "checkpoint"):
        p.chmod(0o555)
    out = nnctl("eval", str(run), prefix=unprivileged, check=0)
    assert "accuracy" in out.stdout
    assert "warning:" in out.stderr and "eval.json" in out.stderr and "read-only" in out.stderr
    assert not (run / "eval.json").exists()
    doc = json.loads(nnctl("eval", str(run), "--json", prefix=unprivileged, check=0).stdout)
    assert doc["written_to"] is None and "accuracy" in doc["metrics"]
    out = nnctl("resume", str(run), prefix=unprivileged, check=2)
    assert str(run) in out.stderr and "read-only" in out.stderr and out.stderr.count("\n") == 1


@pytest.mark.parametrize("name,commands", [
    ("summary.json", ["compare", "eval", "inspect", "resume"]), ("weights.npz", ["eval", "plot"]),
    ("metrics.csv", ["compare"]), ("preprocess.npz", ["eval"]),
])
def test_unreadable_run_file_is_a_message(finished_run, unprivileged, name, commands):
    (finished_run / name).chmod(0)
    for cmd in commands:
        out = nnctl(cmd, str(finished_run), prefix=unprivileged)  # no traceback (checked by nnctl)
        if out.returncode != 0:
            assert out.returncode == 2 and out.stderr.startswith("error: "), (cmd, out.stderr)
            assert out.stderr.count("\n") == 1 or cmd[0] == "compare", (cmd, out.stderr)


def _deny(monkeypatch, deny):
    """os.open fails with EACCES for paths `deny(path, flags)` picks: a read-only or unreadable file,
    injected (root ignores file permissions)."""
    real_open = os.open

    def fake_open(path, flags, *args, **kwargs):
        if deny(str(path), flags):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)


def test_injected_read_only_run_dir(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from nnctl.cli import app

    run = Path(nnctl("train", str(config(tmp_path, 3)), "--runs-dir", str(tmp_path / "runs"), "-q",
                     check=0).stdout.strip())
    summary = json.loads((run / "summary.json").read_text())
    summary["status"] = "interrupted"
    (run / "summary.json").write_text(json.dumps(summary))
    _deny(monkeypatch, lambda path, flags: path.startswith(str(run)) and flags & os.O_CREAT)
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: not (str(path) == str(run) and mode & os.W_OK))
    result = CliRunner().invoke(app, ["eval", str(run)])
    assert result.exit_code == 0 and "accuracy" in result.stdout, result.output
    assert "warning:" in result.stderr and "read-only" in result.stderr
    result = CliRunner().invoke(app, ["resume", str(run)])
    assert result.exit_code == 2 and str(run) in result.stderr and "read-only" in result.stderr, result.output
    monkeypatch.setattr(os, "access", lambda *a, **kw: True)  # writable as far as access() knows: the lock fails
    result = CliRunner().invoke(app, ["resume", str(run)])
    assert result.exit_code == 2 and str(run) in result.stderr and "read-only" in result.stderr, result.output


@pytest.mark.parametrize("name", ["summary.json", "weights.npz", "preprocess.npz"])
def test_injected_unreadable_run_file(tmp_path, monkeypatch, name):
    from typer.testing import CliRunner

    from nnctl.cli import app

    run = Path(nnctl("train", str(config(tmp_path, 3)), "--runs-dir", str(tmp_path / "runs"), "-q",
                     check=0).stdout.strip())
    _deny(monkeypatch, lambda path, flags: path == str(run / name))
    real_io_open = open

    def fake_io_open(file, *args, **kwargs):  # builtins.open does not go through os.open
        if str(file) == str(run / name):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_io_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_io_open)
    for cmd in (["eval", str(run)], ["compare", str(run)], ["inspect", str(run)]):
        result = CliRunner().invoke(app, cmd)
        assert result.exit_code in (0, 2), (cmd, result.output)
        if result.exit_code == 2:
            assert name in result.stderr and "Permission denied" in result.stderr, (cmd, result.stderr)


# ------------------------------------------------------------------------------------ unencodable names
def test_lone_surrogate_name_is_refused_at_the_source(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text('name: "\\ud800x"\n' + XOR + "train: {epochs: 2}\n")
    out = nnctl("train", str(cfg), "--runs-dir", str(tmp_path / "runs"), check=2)
    assert "name" in out.stderr and "c.yaml" in out.stderr and out.stderr.count("\n") == 1
    assert not (tmp_path / "runs").exists()
    cfg.write_text(XOR + "train: {epochs: 2}\n")
    proc = subprocess.run([sys.executable, "-m", "nnctl", "train", str(cfg), "--name", b"run\xff"],
                          capture_output=True, env=env())  # undecodable bytes on the command line
    assert proc.returncode == 2 and b"--name" in proc.stderr and b"Traceback" not in proc.stderr


def test_run_dir_with_a_lone_surrogate_is_still_readable(tmp_path):
    run = Path(nnctl("train", str(config(tmp_path, 3)), "--runs-dir", str(tmp_path / "runs"), "-q",
                     check=0).stdout.strip())
    # as an older nnctl wrote it: the name escaped in JSON and in YAML
    (run / "summary.json").write_text((run / "summary.json").read_text().replace('"name": "c3"',
                                                                               '"name": "\\ud800x"'))
    (run / "config.yaml").write_text("name: \"\\uD800x\"\n" + (run / "config.yaml").read_text()
                                     .replace("name: c3\n", ""))
    for cmd in (["compare", str(tmp_path / "runs")], ["compare", str(run), "--format", "csv"],
                ["compare", str(run), "--format", "json", "--plot", str(tmp_path / "c.png")], ["eval", str(run)],
                ["inspect", str(run)], ["plot", str(run), "-o", str(tmp_path / "p.png")]):
        out = nnctl(*cmd, check=0)
        assert "\\ud800x" in out.stdout + out.stderr or cmd[0] == "plot" or "--plot" in cmd, (cmd, out.stdout)
