"""The inputs of the ONNX graph encoded as predict encodes them (data.columns.ColumnEncoder): numeric
columns filled and scaled, categorical levels and dates looked up in small tables, missing-value
indicators; each block says which of the encoding's features its columns are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from nnctl.export.graph import Graph

# DESIGN §5's ISO date (columns._ISO_DATE) in RE2, which has no back-references: one alternative per separator
_TAIL = r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?"
ISO_DASH = r"[0-9]{4}-[0-9]{2}-[0-9]{2}" + _TAIL
ISO_SLASH = r"[0-9]{4}/[0-9]{2}/[0-9]{2}" + _TAIL
DATE_TABLE = (1900, 2100)  # YYYY-MM-DD dates of these years are looked up, not parsed
_DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


@dataclass
class Block:
    """Features computed in the graph: `tensors`, each (width, N) in the network's dtype (one row per
    feature, transposed once they are all stacked); per feature, its index in the encoding's feature
    vector and whether it holds the raw 0/1 value (one-hot levels, missing indicators: their scaling
    is folded into the first layer) or the value already scaled."""

    tensors: list[str]
    features: list[int]
    binary: list[bool]


def na_strings(na_values) -> list[str]:
    """The strings that mean missing in a string input: "" and the run's data.na_values."""
    from nnctl.data.reading import AUTO_NA

    words = AUTO_NA if na_values == "auto" else list(na_values)
    return list(dict.fromkeys(["", *(w.strip() for w in words)]))


def describe_input(e) -> str:
    """The doc_string of a column's graph input: its type and what missing means."""
    if e.kind == "numeric":
        fill = "NaN = missing" + (f", filled with {e.fill:g}" if e.fill is not None else " (no fill: NaN outputs)")
        return f"numeric (float32); {fill}"
    fill = "'' = missing" + (" (filled)" if e.fill is not None else " (no fill: NaN outputs)")
    if e.kind == "date":
        return f"date (ISO text, e.g. 2024-05-31); {fill}"
    levels = ", ".join(e.levels[:20]) + (", ..." if len(e.levels) > 20 else "")
    return f"categorical (text): {levels}; {fill}"


def numeric_block(g: Graph, columns: list, pre, dt) -> Block:
    """The numeric columns, filled, then scaled in float64 as Preprocessor.transform does (a year minus
    its mean must not lose digits in float32); then their indicators, 0/1. Built as rows (one per
    column, (n, N)): onnxruntime stacks (1, N) rows with one copy each and broadcasts (n, 1) constants
    along them fast, where joining (N, 1) columns copies element by element (64 columns of 100k rows:
    3 ms against 46 ms)."""
    flat = g.const([1, -1], np.int64)
    x32 = g.op("Concat", *(g.op("Reshape", e.name, flat) for e, _ in columns), axis=0)  # (n, N)
    x = g.op("Cast", x32, to=g.DOUBLE)  # predict reads numbers in float64
    fills = np.array([np.nan if e.fill is None else e.fill for e, _ in columns])[:, None]
    miss = g.op("IsNaN", x32) if not np.isnan(fills).all() or any(e.indicator for e, _ in columns) else None
    if not np.isnan(fills).all():  # data.missing: impute; otherwise NaN stays NaN: the row is refused
        x = g.op("Where", miss, g.const(fills, np.float64), x)
    features = [offset for _, offset in columns]
    shift, scale = pre.shift[features][:, None], pre.scale[features][:, None]
    if np.any(shift != 0):
        x = g.op("Sub", x, g.const(shift, np.float64))
    if np.any(scale != 1):
        x = g.op("Div", x, g.const(scale, np.float64))
    tensors = [g.op("Cast", x, to=g.elem(dt))]
    flagged = [j for j, (e, _) in enumerate(columns) if e.indicator]
    if flagged:
        rows = miss if len(flagged) == len(columns) else g.op("Gather", miss, g.const(flagged, np.int64), axis=0)
        tensors.append(g.op("Cast", rows, to=g.elem(dt)))
    return Block(tensors, features + [columns[j][1] + 1 for j in flagged],
                 [False] * len(columns) + [True] * len(flagged))


def scaled(g: Graph, x: str, pre, features: list[int]) -> str:
    """(x - shift) / scale in float64 for the encoding's features `features` (the columns of x)."""
    shift, scale = pre.shift[features], pre.scale[features]
    if np.any(shift != 0):
        x = g.op("Sub", x, g.const(shift[None, :], np.float64))
    if np.any(scale != 1):
        x = g.op("Div", x, g.const(scale[None, :], np.float64))
    return x


def categorical_block(g: Graph, e, offset: int, na: list[str], dt) -> Block:
    """A string column's one-hot block (levels, "other", the indicator) as rows of a small table that
    LabelEncoder indexes: a level's row, the "other" row, the unseen-level row (all zeros under
    unknown: ignore, NaN under error) and the missing row (the fill's, or NaN without a fill)."""
    n_levels = len(e.levels) + bool(e.other)
    width = n_levels + e.indicator
    table = np.zeros((n_levels + 2, width))
    table[np.arange(n_levels), np.arange(n_levels)] = 1.0
    unknown, missing = n_levels, n_levels + 1
    if e.unknown == "error":
        table[unknown] = np.nan
    keys = {lv: k for k, lv in enumerate(e.levels)}
    keys.update({lv: len(e.levels) for lv in e.other})
    if e.fill is None:
        table[missing] = np.nan
    else:
        fill = keys.get(e.fill)
        if fill is not None:
            table[missing] = table[fill]
        if e.indicator:
            table[missing, -1] = 1.0
    keys.update({w: missing for w in na if w not in keys})
    row = g.op("LabelEncoder", g.op("Reshape", e.name, g.const([-1], np.int64)), domain="ai.onnx.ml",
               keys_strings=list(keys), values_int64s=list(keys.values()), default_int64=unknown)  # (N,)
    rows = g.op("Transpose", g.op("Gather", g.const(table, dt, "levels"), row, axis=0), perm=[1, 0])  # (width, N)
    return Block([rows], list(range(offset, offset + width)), [True] * width)


def date_block(g: Graph, e, offset: int, na: list[str], pre, dt) -> Block:
    """A date column: year, month, day, weekday, day of year (as columns.date_parts), filled, scaled,
    then the indicator. String kernels are slow, so a YYYY-MM-DD date of 1900-2099 and a missing
    value are looked up (LabelEncoder -> a row of a precomputed table); only other text (date-times,
    slashes, other years, text that is no date) is parsed in the graph, row by row."""
    from nnctl.data.columns import date_parts

    days = np.arange(np.datetime64(f"{DATE_TABLE[0]}-01-01"), np.datetime64(f"{DATE_TABLE[1]}-01-01"))
    features = list(range(offset, offset + 5))
    n_days = len(days)
    parts = np.vstack([date_parts(days), np.full((1, 5), np.nan)])  # the days, then the missing row
    if e.fill is not None:
        parts[n_days] = e.fill
    table = (parts - pre.shift[features]) / pre.scale[features]  # as Preprocessor.transform, in float64
    if e.indicator:
        table = np.hstack([table, np.zeros((n_days + 1, 1))])
        table[n_days, -1] = 1.0
    keys = [*np.datetime_as_string(days).tolist(), *(w for w in na)]
    flat = g.op("Reshape", e.name, g.const([-1], np.int64))
    row = g.op("LabelEncoder", flat, domain="ai.onnx.ml", keys_strings=keys,
               values_int64s=[*range(n_days), *[n_days] * len(na)], default_int64=-1)  # (N,)
    # the rest (usually none): parsed, appended to the table, and pointed at by their rank among the rest
    other = g.op("Less", row, g.scalar(0, np.int64, 1))
    picked = g.op("Reshape", g.op("NonZero", other), g.const([-1], np.int64))  # (M,)
    text = g.op("Concat", g.op("Gather", flat, picked, axis=0), g.const(["1970-01-01"]), axis=0)
    # (M + 1, 1): a valid last row that no row points at, so the string kernels never see an empty tensor
    parsed, unreadable = parse_dates(g, g.op("Unsqueeze", text, g.const([1], np.int64)))
    parsed = g.op("Where", unreadable, g.const(np.nan, np.float64), scaled(g, parsed, pre, features))
    if e.indicator:
        shape = g.op("Concat", g.op("Shape", text), g.const([1], np.int64), axis=0)
        zeros = g.op("ConstantOfShape", shape, value=g.helper.make_tensor("zero", g.DOUBLE, [1], [0.0]))
        parsed = g.op("Concat", parsed, zeros, axis=1)  # not missing: missing values are in the table
    rows = g.op("Concat", g.const(table, dt, "dates"), g.op("Cast", parsed, to=g.elem(dt)), axis=0)
    rank = g.op("CumSum", g.op("Cast", other, to=g.INT64), g.const(0, np.int64))
    row = g.op("Where", other, g.op("Add", rank, g.scalar(n_days, np.int64, 1)), row)  # n_days + 1 + rank - 1
    binary = [False] * 5 + [True] * e.indicator
    rows = g.op("Transpose", g.op("Gather", rows, row, axis=0), perm=[1, 0])  # (width, N)
    return Block([rows], features + [offset + 5] * e.indicator, binary)


def parse_dates(g: Graph, s: str) -> tuple[str, str]:
    """For ISO date strings s (M, 1): (parts (M, 5) float64, unreadable (M, 1) bool). Only the date
    part of a date-time counts, as in columns.date_parts; the parts of text predict cannot read as a
    date are meaningless, and it is unreadable."""
    ok = g.op("RegexFullMatch", s, pattern=f"{ISO_DASH}|{ISO_SLASH}")
    safe = g.op("Where", ok, s, g.const([["1970-01-01"]]))  # Cast may only see digits
    slash = g.op("Unsqueeze", g.op("RegexFullMatch", safe, pattern=ISO_SLASH), g.const([2], np.int64))
    dash_parts = g.op("StringSplit", safe, outputs=2, delimiter="-", maxsplit=2)[0]  # (M, 1, 3)
    slash_parts = g.op("StringSplit", safe, outputs=2, delimiter="/", maxsplit=2)[0]
    parts = g.op("Where", slash, slash_parts, dash_parts)

    def piece(texts: str, k: int) -> str:
        return g.op("Gather", texts, g.const(k, np.int64), axis=2)  # (M, 1)

    rest = piece(parts, 2)  # the day, then maybe "T10:00:00" or " 10:00"
    for sep in ("T", " "):
        rest = piece(g.op("StringSplit", rest, outputs=2, delimiter=sep, maxsplit=1)[0], 0)
    y, m, day = (g.op("Cast", t, to=g.DOUBLE) for t in (piece(parts, 0), piece(parts, 1), rest))

    def c(v) -> str:
        return g.const(v, np.float64)

    def mod(a: str, k: float) -> str:  # a - k floor(a / k): non-negative for k > 0, as Python's %
        return g.op("Sub", a, g.op("Mul", c(k), g.op("Floor", g.op("Div", a, c(k)))))

    def is_zero(a: str) -> str:
        return g.op("Equal", a, c(0.0))

    leap = g.op("Or", g.op("And", is_zero(mod(y, 4)), g.op("Not", is_zero(mod(y, 100)))), is_zero(mod(y, 400)))
    month0 = g.op("Cast", g.op("Clip", g.op("Sub", m, c(1.0)), c(0.0), c(11.0)), to=g.INT64)  # index 0..11
    after_feb = g.op("Cast", g.op("And", leap, g.op("Greater", m, c(2.0))), to=g.DOUBLE)
    feb29 = g.op("Cast", g.op("And", leap, g.op("Equal", m, c(2.0))), to=g.DOUBLE)
    month_days = g.op("Add", g.op("Gather", g.const(_DAYS_IN_MONTH, np.float64), month0), feb29)
    valid = g.op("And", g.op("And", g.op("GreaterOrEqual", m, c(1.0)), g.op("LessOrEqual", m, c(12.0))),
                 g.op("And", g.op("GreaterOrEqual", day, c(1.0)), g.op("LessOrEqual", day, month_days)))
    before = np.concatenate([[0], np.cumsum(_DAYS_IN_MONTH)[:-1]]).astype(np.float64)
    yday = g.op("Add", g.op("Add", g.op("Gather", g.const(before), month0), day), after_feb)
    # days since 1970-01-01 (proleptic Gregorian; H. Hinnant's days_from_civil), for the weekday
    jan_feb = g.op("Cast", g.op("LessOrEqual", m, c(2.0)), to=g.DOUBLE)
    yy = g.op("Sub", y, jan_feb)
    era = g.op("Floor", g.op("Div", yy, c(400.0)))
    yoe = g.op("Sub", yy, g.op("Mul", era, c(400.0)))
    mp = g.op("Add", m, g.op("Sub", c(9.0), g.op("Mul", c(12.0), g.op("Sub", c(1.0), jan_feb))))  # March = 0
    doy = g.op("Add", g.op("Floor", g.op("Div", g.op("Add", g.op("Mul", mp, c(153.0)), c(2.0)), c(5.0))),
               g.op("Sub", day, c(1.0)))
    doe = g.op("Add", g.op("Sub", g.op("Add", g.op("Mul", yoe, c(365.0)), g.op("Floor", g.op("Div", yoe, c(4.0)))),
                           g.op("Floor", g.op("Div", yoe, c(100.0)))), doy)
    days = g.op("Add", g.op("Mul", era, c(146097.0)), g.op("Sub", doe, c(719468.0)))
    weekday = mod(g.op("Add", days, c(3.0)), 7)  # 1970-01-01 was a Thursday
    parts = g.op("Concat", y, m, day, weekday, yday, axis=1)  # (M, 5)
    return parts, g.op("Not", g.op("And", ok, valid))
