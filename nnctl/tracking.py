"""train.log: mlflow: a run tracked in MLflow as well as in its run directory.

`open_tracker(spec)` connects before the run directory is made, so MLflow missing or a store that
cannot be opened stops `nnctl train` (exit 2) with nothing written. The session then calls `start`
once the run directory exists, `epoch` at every flush of metrics.csv (at most once a second) and
`finish` at the end, however training ended. Logged: params (the resolved config as dotted keys,
plus n_params and task), every numeric metrics.csv column per epoch (step = epoch), tags (nnctl
version, status, run dir, finding codes), findings.json, and the run dir's files as artifacts.

MLflow is imported here only, and only when a config asks for it: it takes about a second. After
`start`, the calls to the store run in one background thread, in order, each flush's epochs in one
log_batch: training never waits for the store, and a store that fails mid-run costs a note in
summary.json and a warning, never the nnctl run.

The store is MLFLOW_TRACKING_URI when set, else MLflow's own default in the current directory
(MLflow 3: sqlite:///mlflow.db, artifacts under ./mlruns/; it refuses new ./mlruns file stores
unless MLFLOW_ALLOW_FILE_STORE=true), the store `mlflow ui` opens when started in that directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import threading
import time
from pathlib import Path

from nnctl.errors import ConfigError

# nnctl's status -> the MLflow run status
RUN_STATUS = {"completed": "FINISHED", "early_stopped": "FINISHED", "stopped_at_loss": "FINISHED",
              "diverged": "FAILED", "failed": "FAILED", "interrupted": "KILLED"}
FINISH_SECONDS = 60.0  # the longest `finish` waits for the store (NNCTL_TRACKING_TIMEOUT overrides)
CHECKPOINT_MAX_BYTES = 10 << 20  # the checkpoint folder is logged as artifacts only when smaller
PARAM_CHARS = 500  # the value length every MLflow version accepts (3.x takes 6000); config.yaml has all
TAG_CHARS = 5000  # MLflow takes 8000
BATCH = 1000  # metrics per log_batch call: MLflow's limit per request
RUN_ID = re.compile(r"^[0-9a-zA-Z][\w\-]{0,63}$")
INSTALL = "pip install 'nnctl[mlflow]'"


def check_tracker(spec) -> None:
    """ConfigError (exit 2) at once if train.log names a tracker that is not installed; cheap (the
    package is looked for, not imported), so it runs before the data is loaded."""
    if spec.train.log == "mlflow" and not installed("mlflow"):
        raise log_error(spec, f"is mlflow, but MLflow is not installed: {INSTALL}")


def installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: sys.modules[module] is None (blocked)
        return False


def log_error(spec, message: str) -> ConfigError:
    """ConfigError 'where train.log was set: train.log <message>'."""
    if spec.origins is not None:
        return spec.origins.error(("train", "log"), message)
    return ConfigError(f"train.log {message}")


def open_tracker(spec, previous: dict | None = None) -> MlflowTracker | None:
    """The tracker train.log asks for (None for none), connected to its store.

    `previous` is the summary.json "tracking" entry of a run being resumed: its MLflow run is
    continued when the store holds it. ConfigError (exit 2) if MLflow is not installed or the store
    cannot be opened."""
    if spec.train.log != "mlflow":
        return None
    return MlflowTracker.connect(spec, previous)


class MlflowTracker:
    """One nnctl run's MLflow run: params and tags at the start, metrics at every flush, files at the end."""

    def __init__(self, client, uri: str, experiment_id: str, experiment_name: str):
        self.client, self.uri = client, uri
        self.experiment_id, self.experiment_name = experiment_id, experiment_name
        self.run_id: str | None = None  # of the run continued (resume), then of the run logged to
        self.run_dir = ""  # the nnctl run directory, absolute
        self.last_epoch = 0  # the last epoch whose metrics were handed to the store
        self.notes: list[str] = []  # what went wrong (or changed), for summary.json and the user
        self._unreported = 0  # notes not yet handed out by take_notes
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._failed = False  # the store failed: later calls are skipped (the run's status is still tried)
        self._lock = threading.Lock()

    # -------------------------------------------------------------------------------- set-up
    @classmethod
    def connect(cls, spec, previous: dict | None) -> MlflowTracker:
        """Import MLflow, open the store and find (or create) the experiment; ConfigError if any fails."""
        try:
            import mlflow
            from mlflow import MlflowClient
        except ImportError as exc:
            raise log_error(spec, f"is mlflow, but MLflow cannot be imported ({exc}): {INSTALL}") from None
        quiet_mlflow()
        from_env = bool(os.environ.get("MLFLOW_TRACKING_URI"))
        uri = absolute_uri(os.environ["MLFLOW_TRACKING_URI"] if from_env else mlflow.get_tracking_uri())
        store = f"MLflow store {uri} ({'MLFLOW_TRACKING_URI' if from_env else 'the default'})"
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or spec.name
        missing = [m for m in ("sqlalchemy", "alembic") if not installed(m)] if uri.startswith("sqlite:") else []
        if missing:  # (mlflow-skinny alone: MLflow then calls the URI unsupported, which does not say why)
            raise log_error(spec, f"is mlflow, but the {store} is a SQLite database, which MLflow opens with "
                                  f"{' and '.join(missing)}, not installed: {INSTALL}")
        try:
            with quick_http(), store_lock(uri):
                client = MlflowClient(tracking_uri=uri)
                tracker = cls(client, uri, "", name)
                if not tracker._reopen(previous):
                    tracker.experiment_id = tracker._experiment(name)
        except ImportError as exc:  # e.g. mlflow-skinny without SQLAlchemy, for MLflow 3's sqlite default
            raise log_error(spec, f"is mlflow, but the {store} needs a module that is missing ({exc}): {INSTALL}"
                            ) from None
        except ConfigError:
            raise
        except Exception as exc:  # MlflowException, OSError, a driver's error: the store cannot be used
            if "MLFLOW_ALLOW_FILE_STORE" in str(exc):
                raise ConfigError(f"{store}: MLflow {mlflow.__version__} opens a file store only with "
                                  f"MLFLOW_ALLOW_FILE_STORE=true; set that, or use a database store such as "
                                  f"MLFLOW_TRACKING_URI=sqlite:///mlflow.db (mlflow migrate-filestore moves old "
                                  f"runs there)") from None
            raise ConfigError(f"{store}: cannot be used ({short(exc)}); fix it, set MLFLOW_TRACKING_URI to a store "
                              f"that works (e.g. sqlite:///mlflow.db), or train without train.log: mlflow") from None
        return tracker

    def _experiment(self, name: str) -> str:
        """The id of the experiment `name`, created if new (two processes may race to create it)."""
        client = self.client
        for _ in range(3):
            exp = client.get_experiment_by_name(name)
            if exp is not None:
                if exp.lifecycle_stage == "deleted":
                    raise ConfigError(f"MLflow experiment {name!r} in {self.uri} is deleted: restore it (mlflow "
                                      f"experiments restore --experiment-id {exp.experiment_id}), or set "
                                      f"MLFLOW_EXPERIMENT_NAME to another name")
                return exp.experiment_id
            try:
                return client.create_experiment(name)
            except Exception as exc:
                if getattr(exc, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
                    raise
        raise ConfigError(f"MLflow experiment {name!r} in {self.uri}: could not be created or found")

    def _reopen(self, previous: dict | None) -> bool:
        """Resume: find the MLflow run a previous session logged to, in this store. False if there is
        none to continue (a note says why when there was one)."""
        before = (previous or {}).get("mlflow") if isinstance(previous, dict) else None
        if not isinstance(before, dict) or not isinstance(before.get("run_id"), str):
            return False
        run_id, where = before["run_id"], before.get("tracking_uri")
        if not RUN_ID.match(run_id):
            return False
        try:
            run = self.client.get_run(run_id)
        except Exception as exc:
            if getattr(exc, "error_code", None) not in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                raise
            hint = (f"; set MLFLOW_TRACKING_URI={where} to continue it" if isinstance(where, str) and where != self.uri
                    else "")
            self.notes.append(f"MLflow run {run_id} is not in {self.uri}: logging to a new MLflow run{hint}")
            return False
        if run.info.lifecycle_stage == "deleted":
            self.notes.append(f"MLflow run {run_id} was deleted: logging to a new MLflow run")
            return False
        self.run_id, self.experiment_id = run_id, run.info.experiment_id
        self.experiment_name = self.client.get_experiment(run.info.experiment_id).name
        history = self.client.get_metric_history(run_id, "train_loss")
        # epochs logged past the checkpoint are trained again, with the same values: not logged twice
        self.last_epoch = max((int(m.step) for m in history), default=0)
        return True

    # -------------------------------------------------------------------------------- the run
    def start(self, summary: dict, spec) -> None:
        """Create the MLflow run (or take up the resumed one) and log its params and tags; records
        summary["tracking"]. A failure here is a note: training goes on."""
        run_dir = self.run_dir = str(Path(summary["run_dir"]).resolve())
        resumed = self.run_id is not None
        tags = {"nnctl.version": (summary.get("versions") or {}).get("nnctl", ""), "nnctl.status": "running",
                "nnctl.run_dir": run_dir, "nnctl.run_name": Path(run_dir).name, "mlflow.source.name": "nnctl"}
        try:
            with quick_http():
                self._open_run(resumed, spec, summary, run_dir, tags)
        except Exception as exc:
            self._fail("starting the MLflow run", exc)
        summary["tracking"] = {"mlflow": self.info()}
        self._thread = threading.Thread(target=self._work, name="nnctl-mlflow", daemon=True)
        self._thread.start()

    def _open_run(self, resumed: bool, spec, summary: dict, run_dir: str, tags: dict) -> None:
        from mlflow.entities import Param, RunTag

        if resumed:
            self.client.update_run(self.run_id, status="RUNNING")
            self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
            return
        run = self.client.create_run(self.experiment_id, run_name=Path(run_dir).name)
        self.run_id = run.info.run_id
        params = [Param(k, v) for k, v in run_params(spec, summary).items()]
        tag_list = [RunTag(k, v) for k, v in tags.items()]
        for i in range(0, max(len(params), len(tag_list)), 100):  # MLflow takes 100 params and tags a call
            self.client.log_batch(self.run_id, params=params[i:i + 100], tags=tag_list[i:i + 100])

    def info(self) -> dict:
        """What summary.json records: where the run is logged, and the notes."""
        return {"run_id": self.run_id, "experiment_id": self.experiment_id, "experiment": self.experiment_name,
                "tracking_uri": self.uri, "notes": list(self.notes)}

    def epoch(self, rows: list[dict]) -> None:
        """Hand the metrics rows not logged yet to the store (one log_batch, in the background)."""
        new = [dict(r) for r in rows if isinstance(r.get("epoch"), int) and r["epoch"] > self.last_epoch]
        if new:
            self.last_epoch = new[-1]["epoch"]
            first, last = new[0]["epoch"], new[-1]["epoch"]
            self._submit(f"logging epoch {first}" + (f"-{last}" if last > first else ""), self._log_rows, new,
                         int(time.time() * 1000))

    def finish(self, summary: dict, run_dir: Path, at_once: bool = False) -> None:
        """After the last flush: log the status, best metrics, findings and (unless `at_once`, a second
        Ctrl-C) the run dir's files, end the MLflow run with the status matching nnctl's, and wait for
        the store, FINISH_SECONDS at most."""
        if self._thread is None:
            return
        status = RUN_STATUS.get(summary.get("status"), "FAILED")
        self._submit("logging the status and findings", self._log_end, dict(summary))
        if not at_once:
            self._submit("uploading the run directory's files", self._log_files, Path(run_dir))
        self._queue.put(("ending the MLflow run", self._terminate, (status,), True))  # tried even after a failure
        self._queue.put(None)
        # a store that failed already gets a short wait: ending its run is worth a try, not a minute
        limit = 5.0 if at_once or self._failed else finish_seconds()
        try:
            self._thread.join(limit)
        except KeyboardInterrupt:
            self._note("stopped waiting for MLflow (interrupted): its run may lack the last files or its status")
            return
        if self._thread.is_alive():
            self._note(f"MLflow did not answer within {limit:g} s: its run may lack the last metrics, files or "
                       f"its status")

    def take_notes(self) -> list[str]:
        """Notes not handed out before (main thread: the session reports them)."""
        with self._lock:
            out, self._unreported = self.notes[self._unreported:], len(self.notes)
        return out

    # -------------------------------------------------------------------------------- the worker
    def _submit(self, what: str, fn, *args) -> None:
        if not self._failed and self._thread is not None:
            self._queue.put((what, fn, args, False))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            what, fn, args, always = item
            if self._failed and not always:
                continue
            try:
                fn(*args)
            except Exception as exc:
                if not self._failed:
                    self._fail(what, exc)

    def _fail(self, what: str, exc: BaseException) -> None:
        self._failed = True
        self._note(f"MLflow: {what} failed ({short(exc)}); nothing more is sent to MLflow, the nnctl run and its "
                   f"run directory are not affected")

    def _note(self, message: str) -> None:
        with self._lock:
            self.notes.append(message)

    def _log_rows(self, rows: list[dict], stamp: int) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(k, float(v), stamp, row["epoch"]) for row in rows for k, v in row.items()
                   if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)]
        for i in range(0, len(metrics), BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + BATCH])

    def _log_end(self, summary: dict) -> None:
        from mlflow.entities import Metric, RunTag

        stamp = int(time.time() * 1000)
        best = summary.get("best") or {}
        metrics = [Metric(f"best_{k}", float(v), stamp, int(best["epoch"])) for k, v in best.items()
                   if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)
                   and isinstance(best.get("epoch"), int)]
        findings = summary.get("findings") or []
        codes = list(dict.fromkeys(str(f.get("code")) for f in findings if isinstance(f, dict)))
        tags = {"nnctl.status": str(summary.get("status")), "nnctl.findings": ", ".join(codes) or "none",
                "mlflow.note.content": note_text(summary, self.run_dir)[:TAG_CHARS]}
        self.client.log_batch(self.run_id, metrics=metrics, tags=[RunTag(k, v) for k, v in tags.items()])
        self.client.log_dict(self.run_id, {"findings": findings}, "findings.json")

    def _log_files(self, run_dir: Path) -> None:
        for path in sorted(run_dir.iterdir()):
            if path.name.startswith(".") or path.is_symlink():  # the lock, temporary files
                continue
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path))
            elif path.is_dir() and folder_bytes(path) <= CHECKPOINT_MAX_BYTES:
                self.client.log_artifacts(self.run_id, str(path), artifact_path=path.name)

    def _terminate(self, status: str) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status)


# ------------------------------------------------------------------------------------ helpers
def run_params(spec, summary: dict) -> dict[str, str]:
    """The MLflow params of a run: the resolved config as dotted keys (sweep: excluded, train
    ignores it), plus n_params and task; values as compact text."""
    from nnctl.runs import flatten

    config = spec.to_config()
    config.pop("sweep", None)
    flat = {**flatten(config), "n_params": summary.get("n_params"), "task": summary.get("task")}
    out: dict[str, str] = {}
    for key, value in flat.items():
        key = re.sub(r"[^\w.\- ]", "_", str(key))[:250]  # the characters MLflow takes in a key
        text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "), default=str)
        out.setdefault(key, text if len(text) <= PARAM_CHARS else text[:PARAM_CHARS - 1] + "…")
    return out


def note_text(summary: dict, run_dir: str) -> str:
    """The MLflow run's description: status, message and findings, in Markdown."""
    lines = [f"**{summary.get('status')}**" + (f": {summary['message']}" if summary.get("message") else "")]
    findings = [f for f in summary.get("findings") or [] if isinstance(f, dict)]
    if findings:
        lines += ["", "Findings:"]
        for f in findings:
            epoch = f" (epoch {f['epoch']})" if f.get("epoch") is not None else ""
            lines.append(f"- {f.get('code')}{epoch}: {f.get('message') or ''}")
    lines += ["", f"nnctl run directory: `{run_dir}`"]
    return "\n".join(lines)


def absolute_uri(uri: str) -> str:
    """A tracking URI that means the same from any directory (summary.json records it)."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///"):]).resolve())
    if uri.startswith("file:") and not uri.startswith("file:/"):
        return Path(uri[len("file:"):]).resolve().as_uri()
    if "://" not in uri and ":" not in uri.split("/")[0]:  # a plain path (MLflow reads it as a file store)
        return Path(uri).resolve().as_uri()
    return uri


def quiet_mlflow() -> None:
    """MLflow's INFO lines (creating database tables, ...) and its dependencies' deprecation warnings
    would land in the middle of nnctl's output: only its warnings and errors are shown, unless
    MLFLOW_LOGGING_LEVEL says otherwise."""
    import logging
    import warnings

    if not os.environ.get("MLFLOW_LOGGING_LEVEL"):
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")
    warnings.filterwarnings("ignore", module=r"alembic(\.|$)")


@contextlib.contextmanager
def store_lock(uri: str, wait: float = 60.0):
    """For a local SQLite store: one nnctl process at a time opens it (an flock on its folder). MLflow
    creates a new database's tables on first use, and two processes doing that at once (a sweep's
    first trials) break each other's migrations ("duplicate column name")."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    from urllib.parse import unquote

    folder = Path(unquote(uri[len("sqlite:///"):].split("?")[0])).parent if uri.startswith("sqlite:///") else None
    try:
        fd = os.open(folder, os.O_RDONLY) if folder is not None else None
    except OSError:  # MLflow will say what is wrong with the folder
        fd = None
    if fd is None:
        yield
        return
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:  # a stuck process: go ahead unlocked rather than hang
                    break
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def quick_http():
    """While setting up, a tracking server that does not answer is reported in seconds: MLflow's own
    retries (7, backing off up to 2 minutes each) would keep `nnctl train` silent for 4 minutes. Later
    calls run in the background with MLflow's settings. The user's MLFLOW_HTTP_* settings win."""
    changed = {k: v for k, v in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"), ("MLFLOW_HTTP_REQUEST_TIMEOUT", "20"))
               if k not in os.environ}
    os.environ.update(changed)
    try:
        yield
    finally:
        for k in changed:
            os.environ.pop(k, None)


def folder_bytes(path: Path) -> int:
    """The size of the regular files under `path`."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def finish_seconds() -> float:
    try:
        return float(os.environ.get("NNCTL_TRACKING_TIMEOUT", FINISH_SECONDS))
    except ValueError:
        return FINISH_SECONDS


def short(exc: BaseException) -> str:
    """An exception as one short line (a database error as the driver's message, without the SQL)."""
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's exception
    if isinstance(orig, BaseException):
        exc = orig
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:299] + "…"
