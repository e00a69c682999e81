"""nnctl explain: every concept and finding code in English and Vietnamese, the configs and commands
each concept cites, names and aliases, and pages that fit 80 columns."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nnctl import concepts
from nnctl.cli import app
from nnctl.concepts import en_model, en_training, findings, page, vi_model, vi_training
from nnctl.config.load import load_spec
from nnctl.diagnostics import CATALOGUE

ROOT = Path(__file__).resolve().parents[1]
VI_LETTERS = re.compile("[àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ]", re.I)
ENGLISH_WORDS = {"the", "is", "are", "which", "with", "and", "of", "when", "it"}
PROSE = ("title", "what", "when", "pitfall", "config")
# Vietnamese words that lost their marks: never right as written
UNMARKED = {"khoi", "tao", "tren", "cua", "duoc", "khong", "nhung", "nguoc", "truyen", "voi", "mot", "cac",
            "chuan", "hoc", "dau", "luc", "cung", "nhieu"}


def run(*args, env=None):
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


def assert_vietnamese(text: str, where: str, english: str = "") -> None:
    """Real Vietnamese: NFC (one code point per letter, so columns count right), many words with
    Vietnamese letters, and none of the commonest English words. Words that the English text has too
    (config keys, names such as Xavier or sigmoid) are not counted."""
    assert unicodedata.is_normalized("NFC", text), f"{where}: not NFC"
    shared = {w.lower() for w in re.findall(r"[^\W\d_]+", english)} - ENGLISH_WORDS
    words = [w for w in re.findall(r"[^\W\d_]+", text) if w.lower() not in shared]
    marked = [w for w in words if VI_LETTERS.search(w)]
    assert len(marked) >= 0.2 * len(words), f"{where}: only {len(marked)} of {len(words)} words look Vietnamese"
    english = {w.lower() for w in words} & ENGLISH_WORDS
    assert not english, f"{where}: English words {sorted(english)}"
    unmarked = {w.lower() for w in words} & UNMARKED
    assert not unmarked, f"{where}: words without their diacritics {sorted(unmarked)}"


# ------------------------------------------------------------------------------------ the text
def test_every_concept_has_every_part_in_both_languages():
    assert len(concepts.TOPICS) == len(set(concepts.TOPICS)) >= 34
    for en, vi in ((en_model, vi_model), (en_training, vi_training)):
        assert list(en.TOPICS) == list(vi.TOPICS)  # the two languages cover the same half, in one order
    assert {*en_model.TOPICS, *en_training.TOPICS} == set(concepts.TOPICS)
    for topic in concepts.TOPICS:
        texts = {lang: concepts.concept(topic, lang) for lang in concepts.LANGS}
        for lang, text in texts.items():
            assert set(text) == {"title", *concepts.PARTS}, (topic, lang)
            assert all(isinstance(v, str) and v.strip() for v in text.values()), (topic, lang)
        for part in PROSE:
            assert texts["vi"][part] != texts["en"][part], (topic, part)
            assert_vietnamese(texts["vi"][part], f"{topic}.{part} (vi)", texts["en"][part])
        assert texts["en"]["formula"].isascii(), topic  # formulas are plain ASCII code
        for lang, text in texts.items():  # formula and snippet lines fit as written: no wrapping inside
            for line in text["formula"].split("\n"):
                assert len(page.INDENT + line) <= page.WIDTH, (topic, lang, line)
        for line in concepts.SHOW[topic]["snippet"].split("\n"):
            assert len(page.INDENT * 2 + line) <= page.WIDTH, (topic, line)
        assert all(unicodedata.is_normalized("NFC", v) for v in texts["en"].values())


def test_every_finding_code_has_every_part_in_both_languages():
    assert set(CATALOGUE) <= set(concepts.CODES), "a new finding code needs a group and Vietnamese text"
    assert set(findings.VI) == set(concepts.CODES)
    for code in concepts.all_codes():
        assert code in CATALOGUE or code in findings.EN, code  # English from the catalogue, or from findings.EN
        texts = {lang: concepts.finding(code, lang) for lang in concepts.LANGS}
        for lang, text in texts.items():
            assert set(text) >= set(concepts.FINDING_PARTS)
            assert all(text[p].strip() for p in concepts.FINDING_PARTS), (code, lang)
        for part in concepts.FINDING_PARTS:
            assert texts["vi"][part] != texts["en"][part], (code, part)
            assert_vietnamese(texts["vi"][part], f"{code}.{part} (vi)", texts["en"][part])
    assert "ACTIVATION_COLLAPSE" in concepts.all_codes()


def test_group_titles_are_in_both_languages():
    for _, title, _ in (*concepts.GROUPS, *concepts.CODE_GROUPS):
        assert set(title) == set(concepts.LANGS)
        assert_vietnamese(title["vi"], title["en"], title["en"])
    for head in page.HEADINGS["vi"].values():
        assert head != page.HEADINGS["en"].get(head)


# ------------------------------------------------------------------------------------ configs and commands
def _leaves(mapping: dict, prefix: str = "") -> list[str]:
    """A YAML mapping as --set overrides, one per leaf (a flow mapping such as norm_options is a leaf)."""
    out = []
    for key, value in mapping.items():
        if isinstance(value, dict) and not any(k in prefix + key for k in ("options",)):
            out += _leaves(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={json.dumps(value)}")
    return out


def _parse(command: str) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """argv, the --set overrides and the --grid values of a command line."""
    argv = shlex.split(command)
    sets, grid = [], {}
    for flag, value in zip(argv, argv[1:]):
        if flag == "--set":
            sets.append(value)
        elif flag == "--grid":
            key, _, values = value.partition("=")
            grid[key] = values.split(",")
    return argv, sets, grid


@pytest.mark.parametrize("topic", concepts.TOPICS)
def test_each_concept_shows_a_valid_nnctl_config(topic):
    from typer.main import get_command

    commands = get_command(app).commands
    show = concepts.SHOW[topic]
    snippet = yaml.safe_load(show["snippet"])
    assert isinstance(snippet, dict) and snippet, topic
    for i, command in enumerate(show["run"]):
        argv, sets, grid = _parse(command)
        assert argv[0] == "nnctl" and argv[1] in commands, command
        if argv[1] in ("train", "gradcheck", "lr-find", "sweep"):
            config = ROOT / argv[2]
            assert argv[2].startswith("configs/") and config.is_file(), command
            spec = load_spec(config, sets)  # every --set is a valid key and value
            for key, values in grid.items():
                for value in values:
                    load_spec(config, [*sets, f"{key}={value}"])
            if i == 0:
                # the snippet is valid nnctl YAML merged into the config file, and it is what the command runs
                data = yaml.safe_load(config.read_text())
                for section, keys in snippet.items():
                    data[section] = {**(data.get(section) or {}), **keys}
                load_spec(data=data, base_dir=config.parent)
                assert load_spec(config, sets + _leaves(snippet)) == spec, f"{topic}: the snippet is not what " \
                                                                           f"{command!r} runs"
        else:
            assert i > 0, f"{topic}: the first command must name a config"
            assert "RUN_DIR" in argv, command
            for arg in argv[3:]:
                if not arg.startswith("-") and "/" in arg:
                    assert (ROOT / arg).is_file(), command


def test_the_snippet_check_catches_a_snippet_that_differs_from_its_command():
    config = ROOT / "configs" / "moons.yaml"
    base = load_spec(config, ["model.init=he_normal"])
    assert load_spec(config, ["model.init=he_normal", *_leaves({"model": {"init": "he_uniform"}})]) != base


def test_instance_norm_in_an_mlp_outputs_beta():
    """What instance_norm says: group norm with one unit per group forgets its input."""
    from nnctl.nn.norms import NORMS

    norm = NORMS.get("group", {"groups": 4})
    Z = np.random.default_rng(0).normal(size=(5, 4))
    beta = np.array([0.5, -1.0, 2.0, 0.0])
    Y, _ = norm.forward(Z, {"gamma": np.ones(4), "beta": beta}, {}, train=True)
    assert np.allclose(Y, beta)


# ------------------------------------------------------------------------------------ names
def test_aliases_and_names():
    codes = {c.lower() for c in concepts.CODES}
    assert not set(concepts.TOPICS) & set(concepts.ALIASES)
    assert not (set(concepts.TOPICS) | set(concepts.ALIASES)) & codes
    for alias, target in concepts.ALIASES.items():
        assert concepts.normalise(alias) == alias
        assert target in concepts.TOPICS or target in concepts.CODES, alias
    for name, expected in [("Batch-Norm", ("concept", "batch_norm")), ("batchnorm", ("concept", "batch_norm")),
                           ("kaiming", ("concept", "he")), ("glorot", ("concept", "xavier")),
                           ("chain rule", ("concept", "backprop")), ("dead-relu", ("code", "DEAD_RELU")),
                           ("Activation_Collapse", ("code", "ACTIVATION_COLLAPSE")), ("SGD", ("concept", "sgd"))]:
        assert concepts.resolve(name) == expected, name
    for name, related in concepts.SEE_ALSO.items():
        assert name in concepts.TOPICS or name in concepts.CODES, name
        for other in related:
            assert concepts.resolve(other)[1] == other, (name, other)
    assert set(concepts.SHOW) == set(concepts.TOPICS)


@pytest.mark.parametrize("typo, suggestion", [("xaviar", "xavier"), ("batchnrom", "batch_norm"),
                                              ("DEAD_RELUU", "DEAD_RELU"), ("backprob", "backprop")])
def test_unknown_topic_is_exit_2_with_a_suggestion(typo, suggestion):
    out = run("explain", typo)
    assert out.exit_code == 2 and out.stdout == ""
    assert f"did you mean '{suggestion}'" in out.stderr, out.stderr
    out = run("explain", "quaternion")
    assert out.exit_code == 2 and "`nnctl explain` lists" in out.stderr


# ------------------------------------------------------------------------------------ pages
def test_every_page_fits_80_columns():
    pages = [page.listing(lang) for lang in concepts.LANGS]
    pages += [page.concept_page(t, lang) for t in concepts.TOPICS for lang in concepts.LANGS]
    pages += [page.finding_page(c, lang) for c in concepts.all_codes() for lang in concepts.LANGS]
    for lines in pages:
        for _, line in lines:
            assert len(line) <= 80 and line == line.rstrip(), f"{len(line)} columns: {line!r}"


def test_explain_in_vietnamese_and_english():
    out = run("explain", "he", "--lang", "vi")
    assert out.exit_code == 0
    for text in ("khởi tạo He", "Công thức", "Var(W) = 2 / fan_in", "Cạm bẫy", "Thử với nnctl",
                 "$ nnctl train configs/moons.yaml --set model.init=he_normal", "Xem thêm"):
        assert text in out.stdout, text
    assert max(len(line) for line in out.stdout.splitlines()) <= 80
    english = run("explain", "kaiming").stdout
    assert "What it is" in english and "Pitfall" in english and "Công thức" not in english
    assert run("explain", "batch-norm", env={"NNCTL_LANG": "vi"}).stdout.startswith("batch_norm - chuẩn hoá theo lô")
    assert run("explain", "he", "--lang", "VI").exit_code == 0
    out = run("explain", "he", "--lang", "fr")
    assert out.exit_code == 2 and "'fr' is not one of" in out.stderr
    finding = run("explain", "ACTIVATION_COLLAPSE", "-l", "vi").stdout
    assert "kích hoạt co dần về 0" in finding and "Nên thử" in finding


def test_listing_names_every_topic_and_code():
    for args in (["explain"], ["explain", "--list"], ["explain", "--list", "--lang", "vi"]):
        out = run(*args)
        assert out.exit_code == 0
        for name in (*concepts.TOPICS, *concepts.all_codes()):
            assert re.search(rf"^  {name}\b", out.stdout, re.M), (args, name)


def test_the_readme_lists_every_concept():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| group | concepts |"):]
    table = table[:table.index("\n\n")]
    for topic in concepts.TOPICS:
        assert re.search(rf"\b{topic}\b", table), topic
    assert "--lang vi" in readme and "NNCTL_LANG" in readme


def test_a_concept_page_does_not_import_numpy():
    code = ("from typer.testing import CliRunner; from nnctl.cli import app; import sys\n"
            "r = CliRunner().invoke(app, ['explain', 'xavier', '--lang', 'vi'])\n"
            "assert r.exit_code == 0 and 'numpy' not in sys.modules, r.output")
    subprocess.run([sys.executable, "-c", code], check=True)
