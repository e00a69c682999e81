"""`nnctl sweep --dask` against real `dask scheduler` and `dask worker` processes on loopback.

One cluster (a scheduler, two workers of one thread each) serves the module; the version check
starts its own, with workers that lack nnctl or have another version. The workers' TMPDIR is a
folder of the test's, so a trial still training on a worker shows as its nnctl-dask-* folder. They
share this machine's files, but may not open the client's (`Cluster.client`, refused by an audit
hook), as if they were on another machine.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]  # the nnctl under test: the workers import it from here
LONG = ("data: {source: 'sklearn:spiral', options: {n_samples: 300}}\nmodel: {hidden: [16]}\n"
        "train: {epochs: 500, batch_size: 8}\n")  # 1.5-2 s per trial: long enough to be stopped


def nnctl(*args, cwd=None, timeout=300):
    proc = subprocess.run([sys.executable, "-m", "nnctl", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=_env())
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _env(**extra) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NO_CLIENT_FILES = """\
import sys

CLIENT = {client!r}


def refuse(event, args):
    if event == "open" and str(args[0]).startswith(CLIENT):
        raise PermissionError(f"a worker may not open the client's {{args[0]}}")


sys.addaudithook(refuse)
"""  # a worker's --preload: it cannot open the client's files, as if on another machine


class Cluster:
    """A `dask scheduler` and `dask worker` processes on 127.0.0.1, stopped by `close`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        self.procs: list[subprocess.Popen] = []
        self.workers = 0
        self._start([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
                     self.address.rsplit(":", 1)[1], "--no-dashboard"], _env())

    def _start(self, args: list[str], env: dict, cwd: Path | None = None) -> None:
        log = open(self.folder / f"proc{len(self.procs)}.log", "wb")  # (the child keeps it open)
        self.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                           cwd=cwd or self.folder))
        log.close()

    def add_worker(self, python: list[str] | None = None, env: dict | None = None, cwd: Path | None = None):
        """One worker process (one thread); `python`, `env`, `cwd` say which Python and nnctl it has.
        It cannot open files in `client`."""
        preload = self.folder / "no_client_files.py"
        preload.write_text(NO_CLIENT_FILES.format(client=str(self.client)))
        self._start([*(python or [sys.executable]), "-m", "distributed.cli.dask_worker", self.address,
                     "--nworkers", "1", "--nthreads", "1", "--no-nanny", "--no-dashboard", "--preload", str(preload)],
                    env or _env(TMPDIR=str(self.tmp)), cwd)
        self.workers += 1

    @property
    def client(self) -> Path:  # the client's files: the workers cannot open them
        path = self.folder / "client"
        path.mkdir(exist_ok=True)
        return path

    @property
    def tmp(self) -> Path:  # the workers' temporary folder
        path = self.folder / "worker-tmp"
        path.mkdir(exist_ok=True)
        return path

    def wait(self) -> None:
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(self.workers, timeout=60)

    def training(self) -> list[Path]:
        """The trials running on the workers now (their temporary folders)."""
        return list(self.tmp.glob("nnctl-dask-*"))

    def close(self) -> None:
        for group in (self.procs[1:], self.procs[:1]):  # the workers, then the scheduler they talk to
            for p in group:
                p.terminate()
            for p in group:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        for _ in range(2):
            c.add_worker()
        c.wait()
        yield c
    finally:
        c.close()


def _folder(out) -> Path:
    return Path(out.stdout.strip().splitlines()[-1])


def _trials(folder: Path) -> list[dict]:
    return json.loads((folder / "sweep.json").read_text())["trials"]


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = np.load(a / "weights.npz"), np.load(b / "weights.npz")
    return sorted(wa.files) == sorted(wb.files) and all(np.array_equal(wa[k], wb[k]) for k in wa.files)


def test_local_copies_stand_in_for_the_clients_files(tmp_path):
    """What a worker does (no cluster needed): a config naming files that do not exist here, the
    client's, loads, trains and resumes from local copies, and the run names the client's paths."""
    from nnctl.config.load import load_spec
    from nnctl.errors import ConfigError, RunDirError
    from nnctl.files import local_copies
    from nnctl.training.session import resume_run, train_run

    data = tmp_path / "copy.csv"
    data.write_text("a,b,y\n" + "".join(f"{i % 7},{(i * 3) % 5},{'pq'[(i // 2) % 2]}\n" for i in range(60)))
    base = train_run(load_spec(data={"data": {"source": str(data)}, "model": {"hidden": [4]},
                                     "train": {"epochs": 1}}), tmp_path / "base").run
    client = Path("/nonexistent-client/project")
    copies = {client / "d.csv": data, client / "w.npz": base.path / "weights.npz"}
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{source: {client}/d.csv}}\nmodel: {{hidden: [4], init_from: {client}/w.npz}}\n"
                   f"train: {{epochs: 2}}\n")
    with pytest.raises(ConfigError, match="file not found"):
        load_spec(cfg)
    with local_copies(copies):
        run = train_run(load_spec(cfg), tmp_path / "runs").run
    config = (run.path / "config.yaml").read_text()
    assert f"source: {client}/d.csv" in config and f"init_from: {client}/w.npz" in config
    with pytest.raises(RunDirError, match="file not found"):
        resume_run(run.path, epochs=3)
    with local_copies(copies):
        assert resume_run(run.path, epochs=3).summary["epochs_run"] == 3


def test_returned_runs_name_the_clients_files_and_work_there(cluster, tmp_path):
    """A CSV and a relative model.init_from reach the workers (which cannot open the client's files);
    the runs that come back are usable on the client as if trained there: eval, predict, and
    re-training gives the same weights."""
    project = cluster.client / tmp_path.name
    (project / "data").mkdir(parents=True)
    data = project / "data" / "d.csv"
    data.write_text("a,b,y\n" + "".join(f"{i % 7},{(i * 3) % 5},{'pq'[(i // 2) % 2]}\n" for i in range(80)))
    (project / "base.yaml").write_text("data: {source: data/d.csv}\nmodel: {hidden: [4]}\ntrain: {epochs: 2}\n")
    base = Path(nnctl("train", "base.yaml", "--runs-dir", "init", "-q", cwd=project).stdout.split()[-1])
    cfg = project / "c.yaml"  # every path relative to the config's folder
    cfg.write_text(f"data: {{source: data/d.csv}}\nmodel: {{hidden: [4], init_from: init/{base.name}/weights.npz}}\n"
                   f"train: {{epochs: 3}}\n")
    out = nnctl("sweep", cfg, "--grid", "optimizer.lr=0.01,0.02", "--dask", cluster.address,
                "--runs-dir", tmp_path / "runs", cwd=tmp_path)  # run from elsewhere: no path is the worker's
    assert out.returncode == 0, out.stderr
    folder = _folder(out)
    trials = _trials(folder)
    assert [t["status"] for t in trials] == ["completed", "completed"]
    for t in trials:
        run = Path(t["run_dir"])
        assert run.parent == folder
        config = (run / "config.yaml").read_text()
        assert f"source: {data}" in config and f"init_from: {project / 'init' / base.name / 'weights.npz'}" in config
        assert json.loads((run / "summary.json").read_text())["run_dir"] == str(run)
        for f in run.rglob("*"):  # nothing names the worker's temporary folder
            assert not f.is_file() or b"nnctl-dask-" not in f.read_bytes(), f
    run = Path(trials[1]["run_dir"])
    ev = nnctl("eval", run, "--json", cwd=tmp_path)
    assert ev.returncode == 0, ev.stderr
    assert "accuracy" in json.loads(ev.stdout)["metrics"]
    (tmp_path / "rows.csv").write_text("a,b\n1,3\n4,2\n")
    pr = nnctl("predict", run, tmp_path / "rows.csv", cwd=tmp_path)
    assert pr.returncode == 0 and pr.stdout.count("\n") == 3, pr.stderr
    again = nnctl("train", run / "config.yaml", "--runs-dir", tmp_path / "again", "-q", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert _same_weights(run, Path(again.stdout.split()[-1]))


def test_a_large_data_file_is_scattered_not_sent_in_the_task_graph(cluster, tmp_path):
    """A 12 MB CSV goes to the workers once, outside the tasks: Dask does not warn of a large graph."""
    tmp_path = cluster.client / tmp_path.name
    tmp_path.mkdir()
    blob = "x" * 6000  # a wide column the config ignores: a big file, quick to train on
    with open(tmp_path / "big.csv", "w") as f:
        f.write("a,b,blob,y\n" + "".join(f"{i % 7},{(i * 3) % 5},{blob},{'pq'[(i // 2) % 2]}\n" for i in range(2000)))
    assert (tmp_path / "big.csv").stat().st_size > 10 << 20  # over Dask's large-graph warning threshold
    (tmp_path / "c.yaml").write_text("data: {source: big.csv, ignore: [blob]}\nmodel: {hidden: [4]}\n"
                                     "train: {epochs: 2}\n")
    out = nnctl("sweep", tmp_path / "c.yaml", "--grid", "optimizer.lr=0.01,0.02", "--dask", cluster.address,
                "--runs-dir", tmp_path / "runs")
    assert out.returncode == 0, out.stderr
    assert "large graph" not in out.stderr, out.stderr
    assert all(t["status"] == "completed" for t in _trials(_folder(out)))


def test_successive_halving_on_the_cluster_extends_each_promoted_run(cluster, tmp_path):
    """--halving 3 on Dask: 9 trials x 1 epoch, 3 x 3, 1 x 9; each promoted run dir goes back to a
    worker and returns extended in place (one run dir per trial), and the winner has exactly the
    weights of a plain local `nnctl train` of its config for train.epochs."""
    (tmp_path / "c.yaml").write_text("data: {source: 'sklearn:xor', options: {n_samples: 120}}\n"
                                     "model: {hidden: [6]}\noptimizer: {name: sgd, lr: 0.05}\n"
                                     "train: {epochs: 9, batch_size: 16}\n")
    out = nnctl("sweep", tmp_path / "c.yaml", "--grid", "optimizer.lr=0.02,0.05,0.1,0.2,0.3,0.5,0.8,1.2,1.6",
                "--halving", "3", "--dask", cluster.address, "--runs-dir", tmp_path / "runs")
    assert out.returncode == 0, out.stderr
    folder = _folder(out)
    doc = json.loads((folder / "sweep.json").read_text())
    assert doc["halving"] == {"eta": 3, "rungs": [1, 3, 9], "counts": [9, 3, 1]}
    trials = doc["trials"]
    assert [t["status"] for t in trials] == ["completed"] * 9
    assert [sum(t["rung"] >= k for t in trials) for k in range(3)] == [9, 3, 1]
    for t in trials:  # each trained exactly its last rung's epochs, extended in its one run dir
        s = json.loads((Path(t["run_dir"]) / "summary.json").read_text())
        assert t["epochs"] == [1, 3, 9][t["rung"]] == s["epochs_run"] == s["epochs_planned"], (t, s)
        assert len(s.get("extended") or []) == t["rung"]
        assert list(folder.glob(f"{t['name']}-*")) == [Path(t["run_dir"])]
    assert not list(folder.glob(".incoming-*"))
    winner = next(t for t in trials if t["rung"] == 2)
    plain = nnctl("train", tmp_path / "c.yaml", "--set", f"optimizer.lr={winner['overrides']['optimizer.lr']}",
                  "--seed", winner["seed"], "--runs-dir", tmp_path / "plain", "-q")
    assert plain.returncode == 0, plain.stderr
    assert _same_weights(Path(winner["run_dir"]), Path(plain.stdout.split()[-1]))


def test_a_tpe_search_on_the_cluster_proposes_batches_and_returns_every_run(cluster, tmp_path):
    """--search tpe on Dask: batches of --jobs proposals, every trial's run back on the client."""
    pytest.importorskip("optuna")
    (tmp_path / "c.yaml").write_text("data: {source: 'sklearn:xor', options: {n_samples: 120}}\n"
                                     "model: {hidden: [6]}\ntrain: {epochs: 2, batch_size: 16}\n")
    out = nnctl("sweep", tmp_path / "c.yaml", "--random", "5", "--search", "tpe", "--space",
                "optimizer.lr=loguniform(0.01,1)", "--jobs", "2", "--dask", cluster.address,
                "--runs-dir", tmp_path / "runs")
    assert out.returncode == 0, out.stderr
    folder = _folder(out)
    trials = _trials(folder)
    assert [t["name"] for t in trials] == [f"t{i:03d}" for i in range(5)]
    assert all(t["status"] == "completed" and Path(t["run_dir"]).parent == folder for t in trials)
    assert len({t["overrides"]["optimizer.lr"] for t in trials}) == 5


def _filtered_site(folder: Path) -> Path:
    """A copy (by links) of this environment's site-packages without nnctl and without .pth files
    (which is how an editable nnctl is found): what a worker sees of Python packages with `-S`."""
    site = folder / "site"
    site.mkdir()
    for lib in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}:
        for entry in Path(lib).iterdir():
            name = entry.name.lower()
            if name.startswith(("nnctl", "__editable__")) or name.endswith(".pth") or (site / entry.name).exists():
                continue
            (site / entry.name).symlink_to(entry)
    return site


def test_workers_without_the_clients_nnctl_are_refused_before_any_trial(tmp_path):
    """One worker cannot import nnctl, another has a different version: exit 2 naming both workers and
    versions, before any trial is sent; nothing has run."""
    import nnctl as client_nnctl

    c = Cluster(tmp_path)
    try:
        empty = tmp_path / "empty"
        empty.mkdir()
        bare = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        c.add_worker([sys.executable, "-S"], {**bare, "PYTHONPATH": str(_filtered_site(tmp_path)),
                                              "TMPDIR": str(c.tmp)}, empty)
        other = tmp_path / "other" / "nnctl"
        other.mkdir(parents=True)
        (other / "__init__.py").write_text('__version__ = "0.0.0-other"\n')
        c.add_worker(env=_env(PYTHONPATH=os.pathsep.join([str(other.parent), str(ROOT)]), TMPDIR=str(c.tmp)),
                     cwd=empty)
        c.wait()
        (tmp_path / "c.yaml").write_text("data: {source: 'sklearn:xor', options: {n_samples: 60}}\n")
        out = nnctl("sweep", tmp_path / "c.yaml", "--grid", "optimizer.lr=0.01,0.02", "--dask", c.address,
                    "--runs-dir", tmp_path / "runs")
        assert out.returncode == 2, out.stderr
        message = " ".join(out.stderr.split())
        assert f"need nnctl {client_nnctl.__version__}" in message
        assert "cannot import nnctl (ModuleNotFoundError" in message and "has nnctl 0.0.0-other" in message
        from distributed import Client

        with Client(c.address, timeout="10s") as client:  # both workers are named by their address
            for worker in client.scheduler_info(n_workers=-1)["workers"]:
                assert worker in message
        folder = next((tmp_path / "runs").iterdir())
        assert all(t["status"] == "pending" and t["run_dir"] is None for t in _trials(folder))
        assert not list(folder.glob("t0*")) and not list(c.tmp.glob("nnctl-dask-*"))
        assert f"nnctl sweep --resume {folder}" in message
    finally:
        c.close()


def _start_sweep(cluster: Cluster, tmp_path: Path, trials: int, config: str = LONG) -> tuple[subprocess.Popen, Path]:
    """A sweep of `trials` trials of `config`, returned once both workers are training one each."""
    (tmp_path / "c.yaml").write_text(config)
    lrs = ",".join(str(0.01 * (k + 1)) for k in range(trials))
    proc = subprocess.Popen([sys.executable, "-m", "nnctl", "sweep", "c.yaml", "--grid", f"optimizer.lr={lrs}",
                             "--dask", cluster.address, "--runs-dir", "runs"], cwd=tmp_path, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(list(cluster.tmp.glob("nnctl-dask-*/runs/*/summary.json"))) < 2:  # set up, training begins
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    time.sleep(0.3)  # some epochs into training
    folder = next((tmp_path / "runs").iterdir())
    return proc, folder


def _wait_idle(cluster: Cluster, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while cluster.training() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not cluster.training()


def _resume_runs_each_once(folder: Path, n: int) -> list[Path]:
    out = nnctl("sweep", "--resume", folder)
    assert out.returncode == 0, out.stderr
    trials = _trials(folder)
    assert [t["status"] for t in trials] == ["completed"] * n
    runs = []
    for t in trials:
        found = list(folder.glob(f"{t['name']}-*"))
        assert found == [Path(t["run_dir"])], found  # one run dir per trial
        runs.append(found[0])
    return runs


def test_sigterm_stops_the_trials_on_the_workers_and_resume_continues_each_once(cluster, tmp_path):
    """SIGTERM: the running trials checkpoint on the workers and come back interrupted, the queued one
    stays pending, nothing keeps training; the manifest says so. --resume continues the interrupted
    ones from their checkpoints (bit-identical to an uninterrupted run) and runs the pending one.
    The data is a CSV of the client's: the workers resume runs that name it, from their copies."""
    tmp_path = cluster.client / tmp_path.name
    tmp_path.mkdir()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    (tmp_path / "d.csv").write_text("a,b,y\n" + "".join(f"{a:.4f},{b:.4f},{'pq'[int(a * b > 0)]}\n" for a, b in x))
    proc, folder = _start_sweep(cluster, tmp_path, 3, LONG.replace("'sklearn:spiral', options: {n_samples: 300}",
                                                                    "d.csv"))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "running trials were checkpointed" in err, err
    assert _wait_idle(cluster, 5), "a trial kept training on a worker"
    trials = _trials(folder)
    assert sorted(t["status"] for t in trials) == ["interrupted", "interrupted", "pending"], trials
    for t in trials:
        if t["status"] == "interrupted":
            run = Path(t["run_dir"])
            assert run.parent == folder and (run / "checkpoint").is_dir()
            assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
        else:
            assert t["run_dir"] is None and not list(folder.glob(f"{t['name']}-*"))
    interrupted = {t["name"] for t in trials if t["status"] == "interrupted"}
    runs = _resume_runs_each_once(folder, 3)
    for run in runs:
        resumed = json.loads((run / "summary.json").read_text()).get("resumed_from")
        if run.name.split("-")[0] in interrupted:
            assert resumed and resumed["epoch"] + resumed["step"] > 0  # from its checkpoint, not from scratch
        else:
            assert resumed is None
    run = next(r for r in runs if r.name.split("-")[0] in interrupted)
    again = nnctl("train", run / "config.yaml", "--runs-dir", tmp_path / "again", "-q")
    assert again.returncode == 0, again.stderr
    assert _same_weights(run, Path(again.stdout.split()[-1]))


def test_a_killed_client_leaves_no_trial_training_and_resume_runs_each_once(cluster, tmp_path):
    """SIGKILL of the client: the scheduler releases its tasks and the workers stop training them
    (their run dirs are lost with them); --resume then runs every trial exactly once, from the start.
    The trials would train for 10 s or more: stopping within 4 s is not finishing early by chance.
    Since no run dir came back, the resume trains from the config, shortened here to keep the test quick."""
    proc, folder = _start_sweep(cluster, tmp_path, 2, LONG.replace("epochs: 500", "epochs: 4000"))
    proc.kill()
    proc.communicate()
    assert _wait_idle(cluster, 4), "a trial of the killed client kept training on a worker"
    assert not list(folder.glob("t0*"))
    (tmp_path / "c.yaml").write_text(LONG.replace("epochs: 500", "epochs: 50"))
    for run in _resume_runs_each_once(folder, 2):
        summary = json.loads((run / "summary.json").read_text())
        assert summary["epochs_run"] == 50 and summary.get("resumed_from") is None
