"""Plain-text tables that fit a width without ever cutting a value.

rich shrinks a table that is wider than the console by cutting cells to "0.…"; a table of runs is
read for its numbers and names, so here no cell is ever cut. To fit a width, columns are first
narrowed to their widest value (headers wrap at '.', '_', '@', '-' and spaces), then the
low-priority columns are shortened (a column's `short` cells) or hidden, lowest priority first,
and named in a footer line. Columns marked `keep` (the key column, the columns --cols asked for)
are never hidden: if they alone are too wide, the table continues below in blocks that repeat the
first column. Only free text (`fold` columns, such as a damaged run's problem) wraps inside a cell.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass, field

from rich.cells import cell_len

SEP = "  "  # between columns
MIN_WIDTH = 20  # narrower requests are taken as this


@dataclass
class Column:
    """One column: its cells as text (already formatted), how to place them, and how much it matters."""

    key: str
    cells: list[str]
    header: str | None = None  # default: the key
    align: str = "right"  # or "left"
    keep: bool = False  # never hidden
    priority: float = 50.0  # lower: shortened or hidden first
    styles: list[str | None] | None = None  # rich style per cell (terminals only)
    short: list[str] | None = None  # a narrower form of the cells, tried before hiding
    fold: bool = False  # free text: may wrap onto more lines (at spaces)
    wrap_at: float | None = None  # names: at this priority, long cells may wrap at - _ . (whole, on more lines)
    wrapped: bool = field(default=False, init=False)
    width: int = field(default=0, init=False)

    @property
    def title(self) -> str:
        return self.key if self.header is None else self.header

    def need(self) -> int:
        """The narrowest this column can be."""
        word = max((cell_len(w) for w in _tokens(self.title)), default=0)
        if self.fold:
            longest = max((cell_len(w) for c in self.cells for w in c.split()), default=0)
            return max(word, min(longest, 24), 1)
        widest = max((cell_len(c) for c in self.cells), default=0)
        if self.wrapped:  # down to 20 cells, or its longest piece
            piece = max((cell_len(t) for c in self.cells for t in _tokens(c)), default=0)
            widest = min(widest, max(piece, 20))
        return max(word, widest, 1)

    def want(self) -> int:
        """The width at which header and cells take one line each."""
        return max(cell_len(self.title), max((cell_len(c) for c in self.cells), default=0), 1)


def _tokens(header: str) -> list[str]:
    """A header's pieces, each ending where it may wrap: 'final_val_accuracy' -> final_ | val_ | accuracy."""
    return [t for t in re.split(r"(?<=[._@\- ])", header) if t]


def _wrap(text: str, width: int, tokens=_tokens) -> list[str]:
    """Greedy wrap of `text` at its break points into lines of at most `width` cells; a piece longer
    than the width is split across lines (no character is ever dropped)."""
    lines, line = [], ""
    for tok in tokens(text):
        while cell_len(tok) > width:  # hard fold: the piece continues on the next line
            if line:
                lines.append(line.rstrip() or line)
                line = ""
            cut = _cut(tok, width)
            lines.append(tok[:cut])
            tok = tok[cut:]
        if cell_len(line + tok.rstrip()) <= width:
            line += tok
        else:
            lines.append(line.rstrip() or line)
            line = tok
    if line or not lines:
        lines.append(line.rstrip() or line)
    return lines


def _cut(text: str, width: int) -> int:
    n = 0
    for i, ch in enumerate(text):
        n += cell_len(ch)
        if n > width:
            return max(i, 1)
    return len(text)


def _words(text: str) -> list[str]:
    return [t for t in re.split(r"(?<= )", text) if t]


def _total(cols: list[Column]) -> int:
    return sum(c.width for c in cols) + len(SEP) * (len(cols) - 1)


def fit(cols: list[Column], width: int | None, key: int = 0) -> tuple[list[list[Column]], list[str]]:
    """Decide the visible columns and their widths for `width` cells (None: no limit).
    Returns (blocks of columns: one, unless the kept columns alone are too wide, then each block
    starts with column `key`; the keys of hidden columns, in table order)."""
    visible = list(cols)
    for c in visible:
        c.width = c.want() if width is None else c.need()
    if width is None:
        return [visible], []
    width = max(width, MIN_WIDTH)
    steps = []  # (priority, step, column): lowest priority first; for one column, shorter before hidden
    for i, c in enumerate(cols):
        if c.short is not None:
            steps.append((c.priority, 0, -i, c))
        if c.wrap_at is not None:
            steps.append((c.wrap_at, 1, -i, c))
        if not c.keep:
            steps.append((c.priority, 2, -i, c))
    hidden = set()
    for _, step, _, c in sorted(steps, key=lambda s: s[:3]):
        if _total(visible) <= width:
            break
        if step == 0:
            c.cells, c.short = c.short, None
        elif step == 1:
            c.wrapped = True
        else:
            visible.remove(c)
            hidden.add(c.key)
        c.width = c.need()
    for c in sorted((c for c in cols if c.key in hidden), key=lambda c: -c.priority):
        if _total(visible + [c]) <= width:  # room left by hiding a wide column: a narrower one comes back
            visible = [x for x in cols if x in visible or x is c]
            hidden.discard(c.key)
    blocks = [visible] if _total(visible) <= width else _blocks(visible, width, cols[key])
    for block in blocks:
        _spread(block, width)
    return blocks, [c.key for c in cols if c.key in hidden]


def _spread(block: list[Column], width: int) -> None:
    """Give the room left to the columns: first so that the header takes as few lines as it can,
    then to as many one-line headers as fit (cheapest first), then to free text and long names."""
    spare = width - _total(block)

    def widen(c: Column, lines: int) -> int:  # the width at which c's header takes at most `lines` lines
        w = c.width
        while w < c.want() and len(_wrap(c.title, w)) > lines:
            w += 1
        return w

    tallest = max((len(_wrap(c.title, c.width)) for c in block), default=1)
    for h in range(1, tallest):
        extra = [widen(c, h) - c.width for c in block]
        if sum(extra) <= spare:
            for c, e in zip(block, extra):
                c.width += e
            spare -= sum(extra)
            break
    for e, c in sorted(((widen(c, 1) - c.width, c) for c in block), key=lambda x: x[0]):
        if 0 < e <= spare:
            c.width += e
            spare -= e
    for c in block:
        extra = min(spare, c.want() - c.width)
        if extra > 0:
            c.width += extra
            spare -= extra


def _blocks(cols: list[Column], width: int, key: Column) -> list[list[Column]]:
    """Kept columns wider than the page: consecutive blocks, each starting with the key column."""
    for c in cols:
        c.width = min(c.width, width)  # a column wider than the page folds
    rest = [c for c in cols if c is not key]
    if key not in cols or key.width > width // 2:  # a very wide key column: not repeated
        return [[c] for c in cols]
    blocks, block = [], [key]
    for c in rest:
        c.width = min(c.width, width - key.width - len(SEP))
        if _total(block + [c]) > width and len(block) > 1:
            blocks.append(block)
            block = [key]
        block.append(c)
    blocks.append(block)
    return blocks


def render(cols: list[Column], width: int | None, sections: frozenset[int] | set[int] = frozenset(), key: int = 0
           ) -> tuple[list[list[tuple[str, str | None]]], list[str]]:
    """The table's lines, each a list of (text, style) pieces, and the keys of hidden columns.
    `sections`: row indices before which an empty line separates groups of rows; `key`: the column
    repeated in each block when the table continues below."""
    blocks, hidden = fit(cols, width, key)
    lines: list[list[tuple[str, str | None]]] = []
    for b, block in enumerate(blocks):
        if b:
            lines.append([])
        heads = [_wrap(c.title, c.width) for c in block]
        height = max(len(h) for h in heads)
        for k in range(height):  # headers sit on their last line, as numbers sit on the right
            pieces = []
            for c, h in zip(block, heads):
                text = h[k - (height - len(h))] if k >= height - len(h) else ""
                pieces.append((_place(text, c.width, c.align), "bold"))
            lines.append(_join(pieces))
        lines.append(_join([("-" * c.width, None) for c in block]))
        n_rows = len(block[0].cells)
        for r in range(n_rows):
            if r in sections and r:
                lines.append([])
            cells = [_wrap(c.cells[r], c.width, _words if c.fold else _tokens) if c.fold or
                     cell_len(c.cells[r]) > c.width else [c.cells[r]] for c in block]
            for k in range(max(len(x) for x in cells)):
                pieces = []
                for c, x in zip(block, cells):
                    style = c.styles[r] if c.styles else None
                    pieces.append((_place(x[k] if k < len(x) else "", c.width, c.align), style))
                lines.append(_join(pieces))
    for line in lines:  # no trailing blanks
        while line and not line[-1][0].strip():
            line.pop()
        if line:
            line[-1] = (line[-1][0].rstrip(), line[-1][1])
    return lines, hidden


def _place(text: str, width: int, align: str) -> str:
    pad = " " * max(width - cell_len(text), 0)
    return pad + text if align == "right" else text + pad


def _join(pieces: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for i, p in enumerate(pieces):
        if i:
            out.append((SEP, None))
        out.append(p)
    return out


def output_width(option: int | None) -> int | None:
    """The width to fit: --width (0: no limit), else COLUMNS, else the terminal's; piped output
    without either has no limit (a row is one line, for grep and friends)."""
    if option is not None:
        return option or None
    env = os.environ.get("COLUMNS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def wrap_text(text: str, width: int | None) -> list[str]:
    """A line of prose wrapped at spaces to `width` (None: unchanged)."""
    if width is None:
        return [text]
    width = max(width, MIN_WIDTH)

    def phrases(t: str) -> list[str]:  # break between "a · b" parts first, inside one only if it is too long
        parts = [x for x in re.split(r"(?<= · )", t) if x]
        return [w for x in parts for w in ([x] if cell_len(x.rstrip()) <= width else _words(x))]

    return _wrap(text, width, phrases)


def emit(lines: list[list[tuple[str, str | None]]]) -> None:
    """Write lines on stdout: with their styles on a terminal, as plain text when piped."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.text import Text

        console = Console(highlight=False, soft_wrap=True)
        for line in lines:
            text = Text()
            for piece, style in line:
                text.append(piece, style=style or "")
            console.print(text)
    else:
        sys.stdout.write("".join("".join(p for p, _ in line) + "\n" for line in lines))
        sys.stdout.flush()


def plain(text: str) -> list[tuple[str, str | None]]:
    """A line without style."""
    return [(text, None)]
