"""Numbers as text, one format per column: the same decimals (or the same scientific form) for every
value of a column, so the values line up and compare at a glance (0.1040, 0.1246, 0.9500 rather than
0.104, 0.1246, 0.95), and a mean ± std shows the std at the mean's decimals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

SIG = 4  # significant digits of the largest value of a column


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def float_format(values: Sequence[float], sig: int = SIG) -> Callable[[float], str]:
    """One formatter for all of `values`: fixed decimals giving the largest |value| `sig`
    significant digits (and the smallest at least 2), or scientific notation with `sig`
    significant digits when the values span more than `sig` orders of magnitude, or are very
    large or very small."""
    mags = [abs(v) for v in values if _is_num(v) and math.isfinite(v) and v != 0]
    if not mags:
        return _plain
    hi, lo = math.floor(math.log10(max(mags))), math.floor(math.log10(min(mags)))
    if hi >= 6 or lo < -4 or hi - lo >= sig:
        return lambda v: _plain(v) if not math.isfinite(v) else f"{v:.{sig - 1}e}"
    decimals = max(sig - 1 - hi, 1 - lo, 0)
    return lambda v: _plain(v) if not math.isfinite(v) else f"{v:.{decimals}f}"


def _plain(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return "0" if v == 0 else f"{v:.{SIG}g}"


def format_column(values: Sequence, stds: Sequence | None = None, sig: int = SIG) -> list[str]:
    """Text for every value of a column: '' for None, integers as they are, floats in one shared
    format; with `stds`, 'mean ± std' (the std at the mean's format) where a std is given. A column
    of integers whose std is 0 (every seed ran 60 epochs) shows the integer alone."""
    stds = list(stds) if stds is not None else [None] * len(values)
    floats = [float(v) for v in values if _is_num(v) and isinstance(v, float)]
    floats += [float(s) for s in stds if _is_num(s) and s != 0]  # the stds share the column's decimals
    fmt = float_format(floats, sig) if floats else _plain
    means, devs = [], []
    for v, s in zip(values, stds):
        if v is None:
            means.append("")
        elif not _is_num(v):
            means.append(str(v))
        elif isinstance(v, int):
            means.append(str(v))
        else:
            means.append(fmt(v))
        if not _is_num(v) or not _is_num(s) or (isinstance(v, int) and s == 0):
            devs.append("")
        else:
            devs.append(fmt(float(s)) if s != 0 else "0")
    width = max((len(d) for d in devs), default=0)
    return [m if not d else f"{m} ± {d.ljust(width)}" for m, d in zip(means, devs)]


def float32_text(v: float) -> str:
    """The shortest text that reads back as the same float32 (159.67564, not 159.67564392089844):
    a float32 model's outputs hold about 7 significant digits, the rest is noise."""
    import numpy as np

    return str(np.float32(v))
