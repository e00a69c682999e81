"""nnctl report: one self-contained HTML page. Three tiny runs (xor with eval.json, moons with a name that
is a script tag and an Adam lr that earns a finding, a 1-D regression whose name matplotlib would read
as math) and a damaged run dir, all in one folder; the page is parsed with html.parser, and opened in
a real headless Chromium when one is installed."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nnctl.cli import app
from nnctl.config.load import load_spec
from nnctl.evaluate import evaluate_run
from nnctl.training.session import train_run

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCRIPT_NAME = "<script>alert(1)</script>"
MATH_NAME = "sine $x^$ _{a"


def _cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    runs = tmp_path_factory.mktemp("report") / "runs"
    xor = train_run(load_spec(CONFIGS / "xor.yaml", ["train.epochs=3"]), runs).run.path
    evaluate_run(xor)  # eval.json: its metrics and confusion matrix go into the page
    train_run(load_spec(CONFIGS / "moons.yaml", ["train.epochs=3", "optimizer.name=adam", "optimizer.lr=0.5"],
                        name=SCRIPT_NAME), runs)  # adam with lr >= 0.1: the ADAM_HIGH_LR finding
    train_run(load_spec(CONFIGS / "sine.yaml", ["train.epochs=3"], name=MATH_NAME), runs)
    broken = runs / "broken-run"
    broken.mkdir()
    (broken / "summary.json").write_text("{not json")
    return runs


@pytest.fixture(scope="module")
def page(runs_dir):
    out = runs_dir.parent / "report.html"
    result = _cli("report", runs_dir, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(out)
    text = out.read_text(encoding="utf-8")
    return text, Page.parse(text)


class Page(HTMLParser):
    """What the tests look at: every start tag with its attributes, the text, the compare table's rows
    (the text of each cell), and the run sections' text keyed by their id."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.rows: list[list[str]] = []
        self.sections: dict[str, list[str]] = {}
        self._in_compare = self._cell = False
        self._section = None

    @classmethod
    def parse(cls, text: str) -> Page:
        p = cls()
        p.feed(text)
        p.close()
        return p

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table" and "compare" in (attrs.get("class") or ""):
            self._in_compare = True
        elif tag == "tr" and self._in_compare:
            self.rows.append([])
        elif tag == "td" and self._in_compare:
            self._cell = True
            self.rows[-1].append("")
        elif tag == "section":
            self._section = attrs.get("id")
            self.sections[self._section] = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_compare = False
        elif tag == "td":
            self._cell = False
        elif tag == "section":
            self._section = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell:
            self.rows[-1][-1] += data
        if self._section:
            self.sections[self._section].append(data)

    def section(self, name: str) -> str:
        """The text of the run section whose heading starts with `name`."""
        for parts in self.sections.values():
            if "".join(parts).strip().startswith(name):
                return "".join(parts)
        raise AssertionError(f"no section for {name!r}")


def test_the_compare_table_has_one_row_per_run_with_its_name(page):
    _, p = page
    body = [r for r in p.rows if r]  # the header row has <th> cells only
    names = sorted(r[0] for r in body)
    assert names == sorted(["broken-run", "xor", SCRIPT_NAME, MATH_NAME])
    statuses = {r[0]: r[1] for r in body}
    assert statuses["broken-run"] == "damaged" and statuses["xor"] == "completed"


def test_every_image_is_an_inline_png_that_decodes(page):
    _, p = page
    srcs = [a.get("src", "") for t, a in p.tags if t == "img"]
    assert len(srcs) == 4  # the overlaid curves, and one figure per readable run
    for src in srcs:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix), src[:60]
        png = base64.b64decode(src[len(prefix):], validate=True)
        assert png.startswith(PNG_SIGNATURE)
        try:
            from PIL import Image
        except ImportError:
            continue
        with Image.open(io.BytesIO(png)) as im:
            im.load()
            assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 200


def test_nothing_is_loaded_from_the_network(page):
    text, p = page
    assert "http://" not in text and "https://" not in text
    assert not [t for t, _ in p.tags if t in ("script", "link", "iframe", "object", "embed")]
    for tag, attrs in p.tags:
        for key in ("src", "href", "srcset", "action", "data"):
            value = attrs.get(key)
            if value is not None:
                assert value.startswith(("data:image/png;base64,", "#")), (tag, key, value[:60])
    csp = [a for t, a in p.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]["content"]


def test_a_run_named_as_a_script_tag_is_shown_as_text(page):
    text, p = page
    assert SCRIPT_NAME not in text  # never raw markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert not [t for t, _ in p.tags if t == "script"]
    assert SCRIPT_NAME in "".join(p.text)  # ...but the reader sees the name as it is


def test_each_run_shows_its_findings_hyperparameters_and_metrics(page):
    _, p = page
    moons = p.section(SCRIPT_NAME)
    assert "ADAM_HIGH_LR" in moons and "adam with lr 0.5" in moons
    assert "optimizer.lr" in moons and "best" in moons and "val_accuracy" in moons
    assert "findings: none" in p.section("xor")


def test_eval_json_metrics_and_confusion_matrix_are_shown(page):
    _, p = page
    xor = p.section("xor")
    assert "eval.json" in xor and "roc_auc" in xor and "confusion matrix" in xor
    assert "eval.json" not in p.section(SCRIPT_NAME)


def test_a_name_matplotlib_would_read_as_math_still_gets_its_figure(page):
    text, p = page
    sine = p.section(MATH_NAME)
    assert "no figure" not in sine, sine
    assert "r2" in sine


def test_a_damaged_run_is_listed_with_the_reason(page):
    _, p = page
    words = "".join(p.text)
    assert "Skipped and damaged" in words
    assert "summary.json unreadable" in p.section("broken-run")


def test_a_missing_path_exits_2_and_the_report_is_still_written(runs_dir, tmp_path):
    out = tmp_path / "r.html"
    result = _cli("report", runs_dir, tmp_path / "nope", "-o", out)
    assert result.exit_code == 2
    assert out.stat().st_size > 10_000 and result.stdout.strip() == str(out)
    assert "nope: no such file or directory" in result.stderr
    assert "nope: no such file or directory" in out.read_text()  # listed in the page too


def test_no_run_at_all_exits_2_without_a_file(tmp_path):
    out = tmp_path / "r.html"
    result = _cli("report", tmp_path / "nope", "-o", out)
    assert result.exit_code == 2 and "no run directories" in result.stderr
    assert not out.exists()


def test_default_output_is_report_html_in_the_current_folder(runs_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _cli("report", next(runs_dir.glob("xor-*")))
    assert result.exit_code == 0 and result.stdout.strip() == "report.html"
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_a_figure_that_fails_costs_only_its_own_run(runs_dir, monkeypatch):
    import nnctl.plot
    from nnctl.report import build_report

    real = nnctl.plot.plot_run

    def flaky(run_dir, output=None):
        if Path(run_dir).name.startswith("xor"):
            raise ValueError("cannot draw this one")
        return real(run_dir, output)

    monkeypatch.setattr(nnctl.plot, "plot_run", flaky)
    report = build_report([runs_dir])
    p = Page.parse(report.html)
    assert "no figure: ValueError: cannot draw this one" in p.section("xor")
    assert len([t for t, _ in p.tags if t == "img"]) == 3


# ------------------------------------------------------------------------------------ a real browser
PROBE = ("<script>addEventListener('load', () => { const i = [...document.images]; console.log('IMAGES ' + "
         "i.length + ' DECODED ' + i.filter(x => x.complete && x.naturalWidth > 0).length); });</script>")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless_shell")


def _browser() -> str | None:
    return os.environ.get("NNCTL_TEST_BROWSER") or next(filter(None, map(shutil.which, BROWSERS)), None)


def _console(browser: str, page: Path, profile: Path) -> tuple[str, list[str]]:
    """(the DOM after load, the console messages) of `page` in headless Chromium."""
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--dump-dom",
                           page.as_uri()], capture_output=True, text=True, timeout=120)
    return proc.stdout, [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.skipif(_browser() is None, reason="no Chromium/Chrome on this machine (or set NNCTL_TEST_BROWSER)")
def test_a_headless_browser_shows_the_page_without_console_errors(page, runs_dir, tmp_path):
    browser = _browser()
    report = runs_dir.parent / "report.html"
    dom, console = _console(browser, report, tmp_path / "profile")
    assert console == []
    assert "nnctl report" in dom and "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    # the listener sees errors: a page that breaks the CSP (a remote image, a script) is reported
    bad = tmp_path / "bad.html"
    bad.write_text(report.read_text().replace("</body>", '<img src="http://example.invalid/x.png"></body>'))
    assert any("example.invalid" in line for line in _console(browser, bad, tmp_path / "profile")[1])
    # and every inline image decodes in the browser: a copy without the CSP runs a check script
    probe = tmp_path / "probe.html"
    text = report.read_text()
    csp = re.search(r'<meta http-equiv="Content-Security-Policy"[^>]*>', text).group(0)
    probe.write_text(text.replace(csp, "").replace("</body>", PROBE + "</body>"))
    dom, console = _console(browser, probe, tmp_path / "profile")
    assert any("IMAGES 4 DECODED 4" in line for line in console), console
