"""`nnctl gd` as text, 80 columns: a summary line per run, then each run's iterates (x, f(x), f'(x)).

Plain text like render_trace: it is copied into notes. Numbers have 6 significant digits. A long
run shows its first and last steps (or every N-th with --every); the JSON has them all.
"""

from __future__ import annotations

import textwrap

from nnctl.cli.render_trace import number

WIDTH = 80
HEAD, TAIL = 10, 5  # steps shown at each end of a long run
SHOW_ALL = HEAD + TAIL + 5  # runs this short are shown whole


def _point(v) -> str:
    return number(float(v[0])) if len(v) == 1 else "(" + ", ".join(number(float(c)) for c in v) + ")"


def _label(r: dict) -> str:
    return f"lr {r['lr']:g}" + (f" {r['gd']}" if "gd" in r else "")


def _steps_shown(n: int, every: int | None) -> list[int]:
    if every:
        return sorted({*range(0, n + 1, every), n})
    if n + 1 <= SHOW_ALL:
        return list(range(n + 1))
    return [*range(HEAD), *range(n + 1 - TAIL, n + 1)]


def lines(result: dict, every: int | None = None) -> list[str]:
    """The whole text: header, summary table, then the iterates of each run."""
    from nnctl.gd import behaviour

    names, out = result["names"], []
    dim = len(names)
    wrap = lambda s: textwrap.wrap(s, WIDTH, subsequent_indent="  ")  # noqa: E731
    out += wrap(f"gradient descent on {result['formula']}  ({result['function']})")
    out += wrap(result["about"])
    var = names[0] if dim == 1 else "(" + ", ".join(names) + ")"
    grad = f"f'({names[0]})" if dim == 1 else f"grad f{var}"
    out += wrap(f"{var} <- {var} - lr * {grad}, from {var} = {_point(result['x0'])}, for at most "
                f"{result['steps']} steps or until |{grad}| < {result['tol']:g}")
    sizes = {r["batch_size"] for r in result["runs"] if r.get("gd", "batch") != "batch"}
    if sizes:
        out += wrap(f"stochastic/minibatch: each step uses the gradient on {' or '.join(map(str, sorted(sizes)))} "
                    f"row(s), in an order reshuffled every epoch (seed {result['seed']}); f and |grad| are on "
                    f"all {result['rows']} rows")
    if result["minimum"] is not None:
        kind = "least-squares solution" if result["function"] == "linreg" else "minimum"
        out.append(f"{kind}: {var}* = {_point(result['minimum'])}")
    out.append("")
    rows = [(_label(r), str(r["steps"]), _point(r["x"][-1]), f"{r['f'][-1]:.4g}", _norm(r["grad"][-1]), r["stopped"])
            for r in result["runs"]]
    head = ("run", "steps", "final " + var, "f", "|grad|", "stopped")
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    detailed = [(*row[:5], ", ".join(filter(None, (row[5], behaviour(r))))) for row, r in zip(rows, result["runs"])]
    if sum(widths[:5]) + 10 + max(len(row[5]) for row in detailed) <= WIDTH:
        rows, widths[5] = detailed, max(len(row[5]) for row in detailed)
    for row in [head, *rows]:
        out.append("  ".join(c.ljust(w) if i in (0, 5) else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    cols = [*names, "f"] + ([f"f'({names[0]})"] if dim == 1 else [f"df/d{n}" for n in names])
    for r in result["runs"]:
        how = behaviour(r)
        out += ["", f"{_label(r)}: {r['stopped']} after {r['steps']} step{'s' * (r['steps'] != 1)}"
                    + (f", {how}" if how else "")]
        out.append(f"{'k':>6}" + "".join(f"{c:>14}" for c in cols))
        shown = _steps_shown(r["steps"], every)
        for i, k in enumerate(shown):
            if i and k != shown[i - 1] + 1 and not every:
                out.append(f"{'...':>6}  ({k - shown[i - 1] - 1} steps not shown; --every N or --json for them)")
            values = [*r["x"][k], r["f"][k], *r["grad"][k]]
            out.append(f"{k:>6}" + "".join(f"{number(float(v)):>14}" for v in values))
    return out


def _norm(g) -> str:
    import numpy as np

    return f"{float(np.linalg.norm(g)):.3g}"  # |f'(x)| for one variable


def gd(result: dict, every: int | None = None) -> None:
    """Print the result on stdout."""
    print("\n".join(lines(result, every)))
