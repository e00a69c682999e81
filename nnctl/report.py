"""`nnctl report`: one self-contained HTML page about many runs.

The page holds the compare table, the overlaid validation curves and, per run, its status, key
hyperparameters, best/final metrics, the figure `nnctl plot` draws, its findings and its eval.json.
Everything is inline (PNG figures as base64 data: URIs, one small <style>); a Content-Security-Policy
lets the page load nothing else, and runs no script. Every string that comes from a run directory is
data: it goes through `html.escape`. A damaged run is listed with the reason, and a figure that
cannot be drawn is replaced by the reason, so one bad run never costs the report of the others.
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nnctl.compare import column_cells, compare_table, show_value
from nnctl.errors import NnctlError, RunDirError, printable
from nnctl.runs import RunInfo, collect_runs

# the hyperparameters shown for every run (when its config has them), before the ones that differ
KEY_PARAMS = ("data.source", "model.hidden", "model.activation", "model.init", "model.norm", "model.dropout",
              "optimizer.name", "optimizer.lr", "optimizer.weight_decay", "optimizer.schedule.name", "train.loss",
              "train.gd", "train.batch_size", "train.epochs", "seed")
STATUS_CLASS = {"completed": "ok", "early_stopped": "ok", "stopped_at_loss": "ok", "running": "live",
                "diverged": "bad", "failed": "bad", "interrupted": "warn", "damaged": "bad"}
EVIDENCE_CHARS = 400  # a finding's evidence is cut to this many characters

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1400px;
padding:0 16px;color:#1b1f24;line-height:1.4}
h1{margin-bottom:4px}h2{border-bottom:2px solid #d0d7de;padding-bottom:4px;margin-top:36px}
h3{margin:0 0 6px}.meta{color:#57606a;font-size:14px}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}.compare td,.compare th{white-space:nowrap}
.compare td.wrap{white-space:normal;min-width:320px}td.num{text-align:right;font-variant-numeric:tabular-nums}
section.run{border:1px solid #d0d7de;border-radius:6px;padding:14px 18px;margin:18px 0}
.status{display:inline-block;border-radius:10px;padding:0 9px;font-size:13px;font-weight:600;color:#fff;
background:#6e7781}.status.ok{background:#1a7f37}.status.bad{background:#cf222e}.status.warn{background:#9a6700}
.status.live{background:#0969da}img{max-width:100%;height:auto;display:block;margin:8px 0}
.problem{color:#cf222e}.note{color:#9a6700}.small{font-size:12px;color:#57606a}
code{background:#f6f8fa;padding:0 3px;border-radius:3px}.flex{display:flex;flex-wrap:wrap;gap:28px}
details{margin:8px 0}summary{cursor:pointer;color:#0969da}
"""
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


@dataclass
class Report:
    """The page, what was skipped on the way (notes), and the path arguments that do not exist."""

    html: str
    runs: int
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def esc(value) -> str:
    """Any value as HTML text (run names, messages, config values are data, never markup)."""
    return html.escape(printable(value), quote=True)


def build_report(paths: list[Path], on_progress: Callable[[int, int, str], None] | None = None) -> Report:
    """The HTML report of the runs in `paths` (run dirs, or folders of them such as a sweep folder).
    `on_progress(i, n, name)` is called before each run's figure is drawn (the slow part). RunDirError
    if no path holds a run; a path that does not exist is listed in `missing` (the CLI exits 2)."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    runs, notes = collect_runs([Path(p) for p in paths])
    if not runs:
        raise RunDirError("no run directories among the given paths" + (f" ({'; '.join(notes)})" if notes else ""))
    columns, rows = compare_table(runs)
    differing = [c for c in columns if any(c in r.params for r in runs)]
    with tempfile.TemporaryDirectory(prefix="nnctl-report-") as tmp:
        curves, curves_problem = _curves_png(runs, Path(tmp) / "curves.png")
        sections = []
        for i, run in enumerate(runs, 1):
            if on_progress:
                on_progress(i, len(runs), run.name)
            sections.append(_run_section(i, run, differing, Path(tmp) / f"run{i}.png"))
    parts = [_head(len(runs)), _header(paths, runs), _skipped(notes, runs),
             "<h2>Comparison</h2>", _compare_html(columns, rows),
             "<h2>Learning curves</h2>",
             _img(curves, "validation curves of all runs") if curves else
             f'<p class="problem">{esc(curves_problem)}</p>',
             "<h2>Runs</h2>", *sections, "</body>\n</html>\n"]
    return Report(html="\n".join(parts), runs=len(runs), notes=notes, missing=missing)


# ------------------------------------------------------------------------------------ page parts
def _head(n: int) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>nnctl report: {n} run{'s' * (n != 1)}</title>\n<style>{STYLE}</style>\n</head>\n<body>")


def _header(paths: list[Path], runs: list[RunInfo]) -> str:
    import nnctl

    counts: dict[str, int] = {}
    for r in runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    statuses = ", ".join(f"{n} {esc(s)}" for s, n in counts.items())
    return (f"<h1>nnctl report</h1>\n<p class=\"meta\">{len(runs)} run{'s' * (len(runs) != 1)} ({statuses}) · "
            f"written {esc(time.strftime('%Y-%m-%d %H:%M:%S %z'))} · nnctl {esc(nnctl.__version__)}<br>"
            f"from {', '.join(f'<code>{esc(p)}</code>' for p in paths)}</p>")


def _skipped(notes: list[str], runs: list[RunInfo]) -> str:
    items = [f'<li class="note">{esc(n)}</li>' for n in notes]
    items += [f'<li class="problem"><a href="#run-{i}">{esc(r.name)}</a> ({esc(r.path)}): {esc(r.problem)}</li>'
              for i, r in enumerate(runs, 1) if r.problem]
    return f"<h2>Skipped and damaged</h2>\n<ul>\n{chr(10).join(items)}\n</ul>" if items else ""


def fmt(value) -> str:
    """A value in a run's own tables: 4 significant digits for floats, config values as written."""
    if value is None:
        return ""
    if isinstance(value, (bool, list, dict)):
        return show_value(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cell(value, text: str | None = None) -> str:
    """A table cell: numbers right-aligned, shown as `text` (default fmt), the exact value on hover."""
    shown = fmt(value) if text is None else text
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="num" title="{esc(repr(value))}">{esc(shown)}</td>'
    return f"<td>{esc(shown)}</td>"


def _compare_html(columns: list[str], rows: list[dict]) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    texts = {c: column_cells(rows, c) for c in columns}  # one format down each column, as compare prints it
    for i, row in enumerate(rows, 1):
        cells = [f'<td><a href="#run-{i}">{esc(row.get(c))}</a></td>' if c == "name" else
                 f'<td class="wrap">{esc(row.get(c))}</td>' if c == "problem" else
                 _cell(row.get(c), texts[c][i - 1]) for c in columns]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table class="compare">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
            + "\n".join(body) + "\n</tbody></table></div>")


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table></div>'


# ------------------------------------------------------------------------------------ figures
def _draw(draw, output: Path) -> tuple[bytes | None, str]:
    """PNG bytes of a figure drawn by `draw(output)`, or (None, why not). A figure that fails for any
    reason (a damaged run, data that moved, a value matplotlib rejects) costs only itself."""
    try:
        draw(output)
        return output.read_bytes(), ""
    except NnctlError as exc:
        return None, f"no figure: {exc}"
    except Exception as exc:  # noqa: BLE001 - one run's figure must not end the report of all the others
        return None, f"no figure: {type(exc).__name__}: {str(exc).strip()[:300]}"


def _curves_png(runs: list[RunInfo], output: Path) -> tuple[bytes | None, str]:
    from nnctl.plot import plot_curves

    with_rows = [r for r in runs if r.rows]
    if not with_rows:
        return None, "no run has a metrics.csv with epochs to draw"
    return _draw(lambda out: plot_curves(with_rows, out), output)


# ------------------------------------------------------------------------------------ one run
def _run_section(i: int, run: RunInfo, differing: list[str], png_path: Path) -> str:
    from nnctl.plot import plot_run

    s = run.summary
    status = f'<span class="status {STATUS_CLASS.get(run.status, "other")}">{esc(run.status)}</span>'
    out = [f'<section class="run" id="run-{i}">', f"<h3>{esc(run.name)} {status}</h3>",
           f'<p class="meta"><code>{esc(run.path)}</code>' + _run_meta(s) + "</p>"]
    if s.get("message"):
        out.append(f"<p>{esc(s['message'])}</p>")
    if run.problem:
        out.append(f'<p class="problem">damaged: {esc(run.problem)}</p>')
    out.append('<div class="flex">' + _params_html(run, differing) + _best_final_html(s) + "</div>")
    notes: list[str] = []

    def draw(output: Path) -> None:
        notes.extend(plot_run(run.path, output)[1])

    if run.status != "damaged":  # (a damaged summary.json: the reason is above, and plot needs that file)
        png, why = _draw(draw, png_path)
        out.append(_img(png, f"{run.name}: learning curves and model") if png else f'<p class="note">{esc(why)}</p>')
    out += [f'<p class="note small">note: {esc(n)}</p>' for n in notes]
    out.append(_findings_html(s.get("findings")))
    if run.eval is not None:
        out.append(_eval_html(run.eval))
    if run.params:
        rows = [[k, show_value(v)] for k, v in run.params.items()]
        out.append(f"<details><summary>the whole config ({len(rows)} keys)</summary>{_table(['key', 'value'], rows)}"
                   "</details>")
    out.append("</section>")
    return "\n".join(out)


def _run_meta(s: dict) -> str:
    bits = []
    for key, label in (("task", "task"), ("epochs_run", "epochs"), ("n_params", "parameters")):
        if s.get(key) is not None:
            bits.append(f"{label} {esc(s[key])}")
    if isinstance(s.get("wall_time_s"), (int, float)):
        bits.append(f"{s['wall_time_s']:.2f} s")
    if s.get("finished_at") or s.get("started_at"):
        bits.append(esc(s.get("finished_at") or s.get("started_at")))
    version = (s.get("versions") or {}).get("nnctl")
    if version:
        bits.append(f"nnctl {esc(version)}")
    return "".join(f" · {b}" for b in bits)


def _params_html(run: RunInfo, differing: list[str]) -> str:
    keys = [k for k in KEY_PARAMS if k in run.params] + [k for k in differing if k in run.params
                                                          and k not in KEY_PARAMS and k != "name"]
    if not keys:
        return ""
    rows = "\n".join(f"<tr><th>{esc(k)}</th>{_cell(run.params.get(k))}</tr>" for k in keys)
    return f"<div><b>hyperparameters</b><table>\n{rows}\n</table></div>"


def _best_final_html(s: dict) -> str:
    best = s.get("best") if isinstance(s.get("best"), dict) else {}
    final = s.get("final") if isinstance(s.get("final"), dict) else {}
    keys = list(dict.fromkeys([*best, *final]))
    if not keys:
        return ""
    return "<div><b>metrics</b>" + _table(["", "best", "final"], [[k, best.get(k), final.get(k)] for k in keys]) + \
        "</div>"


def _findings_html(findings) -> str:
    if not isinstance(findings, list) or not findings:
        return "<p><b>findings</b>: none</p>"
    rows = []
    for f in findings:
        if not isinstance(f, dict):
            continue
        message = esc(f.get("message", ""))
        for key in ("why", "try"):
            if f.get(key):
                message += f'<br><span class="small">{key}: {esc(f[key])}</span>'
        rows.append(f"<tr><td><b>{esc(f.get('code', '?'))}</b></td>{_cell(f.get('layer'))}{_cell(f.get('epoch'))}"
                    f"<td>{message}</td><td><code>{esc(_evidence(f.get('evidence')))}</code></td></tr>")
    head = "".join(f"<th>{h}</th>" for h in ("code", "layer", "epoch", "message", "evidence"))
    return (f'<p><b>findings</b> ({len(rows)})</p><div class="scroll"><table class="findings">\n'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")


def _evidence(evidence) -> str:
    if evidence in (None, {}, []):
        return ""
    from nnctl.files import jsonable

    try:
        text = json.dumps(jsonable(evidence), ensure_ascii=False, separators=(", ", ": "))
    except (TypeError, ValueError, RecursionError):
        text = str(evidence)
    return text if len(text) <= EVIDENCE_CHARS else text[:EVIDENCE_CHARS] + " ..."


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _eval_html(ev: dict) -> str:
    """eval.json: its scalar metrics, the per-class table and the confusion matrix (each only if well formed)."""
    metrics = ev.get("metrics") if isinstance(ev.get("metrics"), dict) else {}
    about = ", ".join(f"{k} {esc(ev[k])}" for k in ("split", "source", "evaluated_at") if isinstance(ev.get(k), str))
    out = [f"<p><b>eval.json</b> <span class=\"small\">{about}</span></p>", '<div class="flex">']
    scalars = [[k, v] for k, v in metrics.items() if _number(v) or v is None]
    if scalars:
        out.append(_table(["metric", "value"], scalars))
    per_class = metrics.get("per_class")
    if isinstance(per_class, dict) and per_class and all(isinstance(v, dict) for v in per_class.values()):
        cols = list(dict.fromkeys(k for v in per_class.values() for k in v))
        out.append(_table(["class", *cols], [[c, *(v.get(k) for k in cols)] for c, v in per_class.items()]))
    cm = metrics.get("confusion_matrix")
    if isinstance(cm, dict) and isinstance(cm.get("labels"), list) and isinstance(cm.get("matrix"), list) and \
            len(cm["matrix"]) == len(cm["labels"]) and all(isinstance(r, list) for r in cm["matrix"]):
        labels = [printable(x) for x in cm["labels"]]
        out.append("<div><span class=\"small\">confusion matrix (rows: true, columns: predicted)</span>" +
                   _table(["", *labels], [[lab, *row] for lab, row in zip(labels, cm["matrix"])]) + "</div>")
    out.append("</div>")
    notes = ev.get("notes")
    if isinstance(notes, list):
        out += [f'<p class="note small">note: {esc(n)}</p>' for n in notes]
    return "\n".join(out)
