"""`nnctl gd`: plain gradient descent x <- x - lr * grad f(x) on a few built-in functions of one or two
variables, for several learning rates side by side, as in the course notes' first example.

Every function is one entry of `FUNCTIONS` holding f and its exact gradient together (tests check the
gradient against central differences), the start point, learning rates and step count that show its
lesson, and the names of its variables. NumPy only; the CLI imports this module inside the command.
"""

from __future__ import annotations

import math

import numpy as np

from nnctl.errors import ConfigError
from nnctl.registry import Registry

FUNCTIONS = Registry("function")
MAX_STEPS = 100_000
MAX_LRS = 8
BOUND = 1e4  # |x| beyond this (or a non-finite x or f) is "diverged": every built-in minimum is within 10
X0_BOUND = 1e3  # and a start within ±1000, so a run that merely starts far away is not "diverged"
VARIANTS = ("batch", "stochastic", "minibatch")


class Function:
    """f and its gradient, with the defaults that show its lesson. `f`/`grad` take a vector of `dim`
    numbers; `grad_rows(x, rows)` is the gradient on some data rows (linreg only)."""

    def __init__(self, formula, dim, f, grad, x0, lrs, steps, names, about, minimum=None, grad_rows=None):
        self.formula, self.dim, self.f, self.grad = formula, dim, f, grad
        self.x0, self.lrs, self.steps, self.names, self.about = x0, lrs, steps, names, about
        self.minimum, self.grad_rows = minimum, grad_rows


def _add(name: str, function: Function) -> None:
    FUNCTIONS.register(name)(function)


# ---------------------------------------------------------------------------------- the functions
_add("x^2", Function(
    "f(x) = x^2", 1, lambda v: v[0] ** 2, lambda v: np.array([2 * v[0]]),
    x0=(5.0,), lrs=(0.1, 0.9, 1.0, 1.1), steps=50, names=("x",), minimum=(0.0,),
    about="x <- (1 - 2 lr) x: converges for 0 < lr < 1 (alternating sides when lr > 0.5), oscillates "
          "between +x0 and -x0 at lr = 1, diverges for lr > 1"))

_add("x^2+5sin(x)", Function(
    "f(x) = x^2 + 5 sin(x)", 1, lambda v: v[0] ** 2 + 5 * np.sin(v[0]),
    lambda v: np.array([2 * v[0] + 5 * np.cos(v[0])]),
    # from x0 = 5, 50 steps: 0.01 crawls (x = 3.12), 0.1 converges in 36 steps, 0.35 settles into a
    # 2-cycle around the minimum (f'' = 6.48 there, so any lr > 2 / 6.48 = 0.31 cannot settle)
    x0=(5.0,), lrs=(0.01, 0.1, 0.35), steps=50, names=("x",), minimum=(-1.1105105,),
    about="the course notes' first example: one minimum, x* = -1.1105 (f'(x) = 2x + 5 cos x = 0)"))

_add("bowl", Function(
    "f(x, y) = x^2 + 10 y^2", 2, lambda v: v[0] ** 2 + 10 * v[1] ** 2,
    lambda v: np.array([2 * v[0], 20 * v[1]]),
    # curvatures 2 and 20: y <- (1 - 20 lr) y flips sign for lr > 0.05 (zig-zag) and diverges for
    # lr > 0.1, while x <- (1 - 2 lr) x still crawls
    x0=(-8.0, 1.0), lrs=(0.02, 0.09, 0.11), steps=100, names=("x", "y"), minimum=(0.0, 0.0),
    about="a quadratic bowl, 10 times steeper along y than along x: a rate small enough for y is "
          "slow along x, and near the limit (lr < 0.1) the path zig-zags across the valley"))

_add("rosenbrock", Function(
    "f(x, y) = (1 - x)^2 + 100 (y - x^2)^2", 2,
    lambda v: (1 - v[0]) ** 2 + 100 * (v[1] - v[0] ** 2) ** 2,
    lambda v: np.array([-2 * (1 - v[0]) - 400 * v[0] * (v[1] - v[0] ** 2), 200 * (v[1] - v[0] ** 2)]),
    x0=(-1.5, 2.0), lrs=(0.001, 0.002, 0.003), steps=5000, names=("x", "y"), minimum=(1.0, 1.0),
    about="not convex: a curved, flat-bottomed valley; gradient descent reaches the valley at once "
          "and then creeps along it towards the minimum (1, 1); a rate of 0.003 already diverges"))


def _linreg_data():
    """The fixed data set: 20 points on y = 2x + 1 with noise (seed 0), x in [-1, 3]."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 3.0, 20)
    return x, 2.0 * x + 1.0 + rng.normal(0.0, 0.5, 20)


LINREG_X, LINREG_Y = _linreg_data()


def _linreg_loss(v, rows=slice(None)):
    r = v[0] * LINREG_X[rows] + v[1] - LINREG_Y[rows]  # residuals of y = w x + b
    return float(np.mean(r * r))


def _linreg_grad(v, rows=slice(None)):
    r = v[0] * LINREG_X[rows] + v[1] - LINREG_Y[rows]
    return np.array([2 * np.mean(r * LINREG_X[rows]), 2 * np.mean(r)])


_add("linreg", Function(
    "J(w, b) = mean((w x_i + b - y_i)^2) over 20 points", 2, _linreg_loss, _linreg_grad,
    x0=(-1.0, 4.0), lrs=(0.05,), steps=200, names=("w", "b"), grad_rows=_linreg_grad,
    about="the mean squared error of the line y = w x + b on 20 fixed points (y = 2x + 1 plus noise, "
          "x in [-1, 3]); --gd batch uses all 20 points per step, stochastic one, minibatch --batch-size"))

ALIASES = {"x2": "x^2", "x**2": "x^2", "square": "x^2",
           "x2+5sin(x)": "x^2+5sin(x)", "x^2+5*sin(x)": "x^2+5sin(x)", "x**2+5*sin(x)": "x^2+5sin(x)",
           "x2+5sinx": "x^2+5sin(x)", "x^2+5sinx": "x^2+5sin(x)", "notes": "x^2+5sin(x)",
           "quadratic_bowl": "bowl", "linear_regression": "linreg", "rosen": "rosenbrock"}


def resolve(name: str) -> str:
    """The canonical name of a built-in function (spaces, case and aliases forgiven); ConfigError
    with the closest names if unknown."""
    key = "".join(str(name).split()).lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in FUNCTIONS:
        FUNCTIONS.entry(str(name), where="gd")  # raises, with "did you mean"
    return key


# ---------------------------------------------------------------------------------- the descent
def descend(fn: Function, lr: float, x0, steps: int, tol: float, variant: str = "batch",
            batch_size: int = 1, seed: int = 0) -> dict:
    """One run: the iterates x_0..x_K, f and the (full-batch) gradient at each, and why it stopped.

    With linreg's stochastic/minibatch variants one step is one update on `batch_size` rows, the rows
    drawn without replacement within an epoch (reshuffled each epoch, seeded); the stopping rule and
    the recorded gradient are always the full-batch ones."""
    x = np.array(x0, dtype=float)  # (dim,)
    xs, fs, gs = [x.copy()], [fn.f(x)], [fn.grad(x)]
    rng = np.random.default_rng(seed)
    order, pos = np.empty(0, dtype=int), 0
    stopped = "max_steps"
    with np.errstate(all="ignore"):  # overflow is what "diverged" detects
        for _ in range(steps + 1):
            if not (np.all(np.isfinite(x)) and np.all(np.abs(x) <= BOUND) and math.isfinite(fs[-1])):
                stopped = "diverged"
                break
            if float(np.linalg.norm(gs[-1])) < tol:
                stopped = "converged"
                break
            if len(xs) > steps:
                break
            if variant == "batch":
                g = gs[-1]
            else:
                if pos + batch_size > len(order):  # a new epoch: a fresh permutation
                    order, pos = rng.permutation(len(LINREG_X)), 0
                g = fn.grad_rows(x, order[pos:pos + batch_size])
                pos += batch_size
            x = x - lr * g  # a new array: xs keeps every iterate
            xs.append(x.copy())
            fs.append(float(fn.f(x)))
            gs.append(fn.grad(x))
    return {"lr": lr, "x": xs, "f": fs, "grad": gs, "stopped": stopped, "steps": len(xs) - 1}


def behaviour(run: dict) -> str:
    """How a run that hit max_steps was going ("" otherwise): "oscillating, shrinking/steady/growing"
    when most of its last updates turn back on the one before, else "still moving"."""
    if run["stopped"] != "max_steps":
        return ""
    d = np.diff(np.array(run["x"][-12:]), axis=0)  # the last updates, (<= 11, dim)
    turns = np.sum(d[1:] * d[:-1], axis=1) < 0
    if len(turns) and np.mean(turns) > 0.5:
        size = np.linalg.norm(d, axis=1)
        trend = "shrinking" if size[-1] < 0.5 * size[0] else "growing" if size[-1] > 2 * size[0] else "steady"
        return f"oscillating, {trend}"
    return "still moving"


def parse_numbers(text: str, option: str) -> tuple[float, ...]:
    """'0.01,0.1' -> (0.01, 0.1); ConfigError naming the option and the piece that is not a number."""
    values = []
    for piece in str(text).split(","):
        try:
            values.append(float(piece.strip()))
        except ValueError:
            raise ConfigError(f"{option}: expected numbers separated by commas (e.g. {option} 0.01,0.1); "
                              f"got {piece.strip()!r}") from None
    return tuple(values)


def parse_variants(text: str) -> tuple[str, ...]:
    """'batch,stochastic' -> ("batch", "stochastic"); ConfigError with a suggestion if one is unknown."""
    from nnctl.errors import did_you_mean

    variants = tuple(v.strip().lower() for v in str(text).split(","))
    for v in variants:
        if v not in VARIANTS:
            raise ConfigError(f"--gd: unknown variant {v!r}{did_you_mean(v, VARIANTS)}; "
                              f"choose from {', '.join(VARIANTS)}")
    return tuple(dict.fromkeys(variants))


def check_args(fn: Function, name: str, lrs, x0, steps: int, tol: float, variants, batch_size: int) -> None:
    """Refuse bad input before any work, one message each (ConfigError, exit 2)."""
    if not 1 <= len(lrs) <= MAX_LRS:
        raise ConfigError(f"--lr: give 1 to {MAX_LRS} learning rates; got {len(lrs)}")
    for lr in lrs:
        if not (math.isfinite(lr) and lr > 0):
            raise ConfigError(f"--lr: every learning rate must be a finite number > 0; got {lr:g}")
    if len(x0) != fn.dim:
        want = "one number" if fn.dim == 1 else f"{fn.dim} numbers ({', '.join(fn.names)}), e.g. --x0 1,2"
        raise ConfigError(f"--x0: {name} is a function of {fn.dim} variable{'s' * (fn.dim > 1)}; give {want}; "
                          f"got {len(x0)} number{'s' * (len(x0) != 1)}")
    if not all(math.isfinite(v) and abs(v) <= X0_BOUND for v in x0):
        raise ConfigError(f"--x0: every coordinate must be a finite number within ±{X0_BOUND:g}; got {x0}")
    if not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"--steps must be an integer from 1 to {MAX_STEPS}; got {steps}")
    if not (math.isfinite(tol) and tol >= 0):
        raise ConfigError(f"--tol must be a number >= 0; got {tol:g}")
    if variants != ("batch",) and fn.grad_rows is None:
        raise ConfigError(f"--gd: {name} has no data rows; stochastic and minibatch apply to linreg only")
    if not 1 <= batch_size <= len(LINREG_X):
        raise ConfigError(f"--batch-size must be from 1 to {len(LINREG_X)} (the rows of linreg); got {batch_size}")


def gd(name: str, lrs=None, x0=None, steps: int | None = None, tol: float = 1e-6, variants=None,
       batch_size: int = 5, seed: int = 0) -> dict:
    """Gradient descent on the built-in function `name` for each learning rate (and each --gd variant).

    Parameters: lrs, x0, steps default to the function's own; variants (batch/stochastic/minibatch)
    default to all three for linreg, batch otherwise.
    Returns: {"function", "formula", "names", "x0", "steps", "tol", "minimum", "runs": [descend(...)
    plus "gd" and "batch_size" for linreg]}."""
    name = resolve(name)
    fn = FUNCTIONS.entry(name)
    lrs = tuple(fn.lrs if lrs is None else lrs)
    x0 = tuple(fn.x0 if x0 is None else x0)
    steps = fn.steps if steps is None else steps
    variants = tuple(variants or (VARIANTS if fn.grad_rows else ("batch",)))
    check_args(fn, name, lrs, x0, steps, tol, variants, batch_size)
    runs = []
    for lr in lrs:
        for variant in variants:
            size = {"batch": len(LINREG_X), "stochastic": 1}.get(variant, batch_size)
            run = descend(fn, lr, x0, steps, tol, variant, size, seed)
            if fn.grad_rows is not None:
                run.update(gd=variant, batch_size=size)
            runs.append(run)
    minimum = fn.minimum
    if name == "linreg":  # the least-squares solution
        design = np.column_stack([LINREG_X, np.ones_like(LINREG_X)])  # (20, 2): rows [x_i, 1]
        minimum = tuple(float(v) for v in np.linalg.lstsq(design, LINREG_Y, rcond=None)[0])
    return {"function": name, "formula": fn.formula, "names": fn.names, "about": fn.about, "x0": x0,
            "steps": steps, "tol": tol, "minimum": minimum, "seed": seed,
            "rows": len(LINREG_X) if fn.grad_rows is not None else None, "runs": runs}


def json_document(result: dict) -> dict:
    """DESIGN's `gd --json` document: each x, f'(x) a number for one variable, a list for two."""
    one = len(result["names"]) == 1

    def value(v):
        return float(v[0]) if one else [float(c) for c in v]

    runs = []
    for r in result["runs"]:
        doc = {"lr": r["lr"], "x": [value(x) for x in r["x"]], "f": r["f"],
               "grad": [value(g) for g in r["grad"]], "stopped": r["stopped"]}
        if "gd" in r:
            doc.update(gd=r["gd"], batch_size=r["batch_size"])
        runs.append(doc)
    return {"function": result["function"], "runs": runs}
