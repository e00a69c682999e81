"""Lay out an `nnctl explain` page as plain text lines no wider than WIDTH, whatever the terminal.

Each function returns (kind, line) pairs: kind "title" and "heading" lines may be styled by the
caller, "text" lines printed as they are. Prose is wrapped; formula lines and commands keep their
line breaks and wrap with a hanging indent only if they are too long.
"""

from __future__ import annotations

import textwrap

from nnctl import concepts

WIDTH = 78
INDENT = "  "
HEADINGS = {
    "en": {"what": "What it is", "formula": "Formula", "when": "When to use it", "pitfall": "Pitfall",
           "config": "See it in nnctl", "see": "See also", "why": "Why it matters", "try": "What to try",
           "concepts": "Concepts", "codes": "Finding codes", "usage": "nnctl explain TOPIC [--lang vi]"},
    "vi": {"what": "Là gì", "formula": "Công thức", "when": "Khi nào dùng", "pitfall": "Cạm bẫy",
           "config": "Thử với nnctl", "see": "Xem thêm", "why": "Vì sao đáng lo", "try": "Nên thử",
           "concepts": "Khái niệm", "codes": "Mã phát hiện", "usage": "nnctl explain TOPIC --lang vi"},
}

Lines = list[tuple[str, str]]


def _wrap(text: str, indent: str = INDENT, hanging: str | None = None) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=hanging or indent,
                         break_long_words=False, break_on_hyphens=False) or [indent.rstrip()]


def _paragraph(text: str) -> Lines:
    return [("text", line) for line in _wrap(text)]


def _verbatim(text: str, indent: str = INDENT) -> Lines:
    """Formula or YAML lines as written; a line too long wraps with a deeper hanging indent."""
    out = []
    for line in text.rstrip("\n").split("\n"):
        lead = indent + " " * (len(line) - len(line.lstrip(" ")))
        out += [("text", w) for w in _wrap(line.strip(), lead, lead + "    ")]
    return out


def _command(command: str) -> Lines:
    """`$ nnctl ...`, broken before an option (never between an option and its value) with a shell
    continuation if it is too long."""
    units: list[str] = []
    for word in command.split(" "):
        if word.startswith("-") or not units:
            units.append(word)
        else:
            units[-1] += " " + word
    lines, current = [], INDENT + "$"
    for unit in units:
        if len(current) + 1 + len(unit) > WIDTH - 2 and current.strip() != "$":
            lines.append(current + " \\")
            current = INDENT + "   "
        current += " " + unit
    lines.append(current)
    return [("text", line) for line in lines]


def _see_also(name: str, lang: str) -> Lines:
    related = concepts.SEE_ALSO.get(name, ())
    if not related:
        return []
    return [("text", "")] + [("text", line) for line in _wrap(f"{HEADINGS[lang]['see']}: {', '.join(related)}", "")]


def concept_page(topic: str, lang: str) -> Lines:
    """A concept: title, then what, formula, when, pitfall, the nnctl config and commands, see also."""
    text = concepts.concept(topic, lang)
    head = HEADINGS[lang]
    out: Lines = [("title", line) for line in _wrap(f"{topic} - {text['title']}", "", "  ")]
    for part in concepts.PARTS:
        out.append(("text", ""))
        out.append(("heading", head[part]))
        if part == "formula":
            out += _verbatim(text[part])
            continue
        out += _paragraph(text[part])
        if part == "config":
            show = concepts.SHOW[topic]
            out.append(("text", ""))
            out += _verbatim(show["snippet"], INDENT * 2)
            out.append(("text", ""))
            for command in show["run"]:
                out += _command(command)
    return out + _see_also(topic, lang)


def finding_page(code: str, lang: str) -> Lines:
    """A finding code: title, the explanation, why it matters, what to try, see also."""
    text = concepts.finding(code, lang)
    head = HEADINGS[lang]
    out: Lines = [("title", line) for line in _wrap(f"{code} - {text['title']}", "", "  ")]
    out += [("text", "")] + _paragraph(text["explain"])
    for part in ("why", "try"):
        out += [("text", ""), ("heading", head[part])] + _paragraph(text[part].rstrip(".") + ".")
    return out + _see_also(code, lang)


def listing(lang: str) -> Lines:
    """Every concept by group, then every finding code by group, each with its title."""
    head = HEADINGS[lang]
    titles = concepts.titles(lang)
    out: Lines = [("text", head["usage"]), ("text", "")]

    def row(name: str, title: str) -> Lines:
        first = f"{INDENT}{name:<24}"
        if len(name) >= 24:
            first += " "
        return [("text", line) for line in _wrap(title, first, " " * (len(INDENT) + 24))]

    out += [("title", head["concepts"])]
    for _, group_title, topics in concepts.GROUPS:
        out += [("text", ""), ("heading", group_title[lang])]
        for topic in topics:
            out += row(topic, titles[topic])
    out += [("text", ""), ("title", head["codes"])]
    codes = concepts.all_codes()
    groups = list(concepts.CODE_GROUPS)
    extra = tuple(c for c in codes if c not in concepts.CODES)
    if extra:
        groups.append(("other", {"en": "Other", "vi": "Khác"}, extra))
    for _, group_title, group_codes in groups:
        out += [("text", ""), ("heading", group_title[lang])]
        for code in group_codes:
            out += row(code, concepts.finding(code, lang)["title"])
    return out


def document(kind: str | None, name: str | None, lang: str) -> dict:
    """What `explain --json` prints: the same text as the page, by part rather than by line.

    kind "concept": {"kind", "topic", "lang", "title", what, formula, when, pitfall, config, "snippet",
    "commands", "see_also"}; kind "code": {"kind", "code", "lang", "title", "explain", "why", "try",
    "see_also"}; kind None (the listing): {"lang", "concepts": [{"topic", "group", "title"}],
    "codes": [{"code", "group", "title"}]}."""
    if kind == "concept":
        show = concepts.SHOW[name]
        return {"kind": "concept", "topic": name, "lang": lang, **concepts.concept(name, lang),
                "snippet": show["snippet"], "commands": list(show["run"]),
                "see_also": list(concepts.SEE_ALSO.get(name, ()))}
    if kind == "code":
        return {"kind": "code", "code": name, "lang": lang, **concepts.finding(name, lang),
                "see_also": list(concepts.SEE_ALSO.get(name, ()))}
    titles = concepts.titles(lang)
    codes = concepts.all_codes()
    grouped = {c: group for group, _, members in concepts.CODE_GROUPS for c in members}
    return {"lang": lang,
            "concepts": [{"topic": t, "group": group, "title": titles[t]}
                         for group, _, topics in concepts.GROUPS for t in topics],
            "codes": [{"code": c, "group": grouped.get(c, "other"), "title": concepts.finding(c, lang)["title"]}
                      for c in codes]}
