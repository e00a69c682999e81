"""Checks run from a config without training a run: gradient check and learning-rate range test."""

from __future__ import annotations

import math

import numpy as np

from nnctl.build import batch_size, build_optimizer, prepare
from nnctl.config.spec import Spec
from nnctl.errors import NnctlError
from nnctl.nn.optimizers import OPTIMIZERS

GRADCHECK_TOL = 1e-5


def gradcheck_spec(spec: Spec, rows: int = 8, tol: float = GRADCHECK_TOL) -> dict:
    """Backprop vs central differences on the model `spec` builds, in float64, on `rows` training rows.

    Returns {"passed", "tol", "rows", "tensors": [{key, shape, rel_error, passed}]}.
    """
    from nnctl.nn.gradcheck import gradient_errors

    # float32 rounding swamps a central difference
    prepared = prepare(spec.replace(train=spec.train.replace(dtype="float64")))
    X, Y = prepared.X["train"][:rows], prepared.Y["train"][:rows]
    model = prepared.model
    if model.n_params() > 200_000:
        raise NnctlError(f"{spec.source}: {model.n_params()} parameters are too many for a full finite-difference "
                         f"check (2 forward passes each); check a smaller model, e.g. --set model.hidden=[8]")
    if spec.model.needs_batch_stats and len(X) < 2:
        raise NnctlError(f"{spec.model.batch_stats_norm} norm needs at least 2 rows for a gradient check")
    errors = gradient_errors(model, X, Y)
    tensors = [{"key": key, "shape": list(model.params.shapes[key]), "rel_error": err, "passed": err <= tol}
               for key, (err, _, _) in errors.items()]
    return {"passed": all(t["passed"] for t in tensors), "tol": tol, "rows": int(len(X)),
            "n_params": int(model.n_params()), "tensors": tensors}


LR_FIND_STOP = 4.0  # the range test ends once the smoothed loss exceeds this many times its minimum
LR_FIND_FALL = 0.1  # a range test whose loss fell less than this fraction of its start found no minimum
LR_FIND_BLOWUP = 2.0  # ... and its loss blows up where the smoothed loss doubles (noise does not double it)
# Adam-like optimizers move every weight by about lr per step: the hundred steps of the test overstate the rate
# they sustain over a long run at a constant rate, so their suggestion stays under this share of the rate that
# gets the ADAM_HIGH_LR warning (0.25 * 0.1 = 0.025; 0.05 drew LR_TOO_LARGE on iris_csv.yaml over 150 epochs)
LR_FIND_HIGH_SHARE = 0.25


def lr_find(spec: Spec, start: float = 1e-7, end: float = 10.0, steps: int = 100) -> dict:
    """Learning-rate range test (Smith 2017): raise lr exponentially each step, record the loss.

    The test stops once the smoothed loss exceeds LR_FIND_STOP times its minimum. The suggestion
    follows `suggest_lr`. Returns {"lrs", "losses", "smoothed", "suggestion", "reference_lr",
    "basis", "fall", "min_loss_lr", "lowered", "cap", "stopped_early", "optimizer", "batch_size"}.
    """
    if not 0 < start < end:
        raise NnctlError(f"--start {start:g} and --end {end:g}: need 0 < start < end")
    prepared = prepare(spec)
    model = prepared.model
    X, Y = prepared.X["train"], prepared.Y["train"]
    n = len(X)
    batch = batch_size(spec, n)  # >= 2 with batch norm: the config refuses 1-row steps then
    optimizer = build_optimizer(spec, model.params.theta)
    rng = prepared.rngs["shuffle"]
    factor = (end / start) ** (1.0 / max(steps - 1, 1))
    lrs, losses, smoothed = [], [], []
    avg, beta, best = 0.0, 0.9, math.inf
    order, pos = rng.permutation(n), 0
    stopped = False
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for i in range(steps):
            lr = start * factor**i
            if pos + batch > n:
                order, pos = rng.permutation(n), 0
            idx = order[pos:pos + batch]
            pos += batch
            loss = model.loss_and_grad(X[idx], Y[idx], rng=prepared.rngs["dropout"])
            if not math.isfinite(loss):
                stopped = True
                break
            optimizer.step(model.params.theta, model.params.grad, lr)
            avg = beta * avg + (1 - beta) * loss
            s = avg / (1 - beta ** (i + 1))  # bias-corrected moving average
            lrs.append(lr)
            losses.append(loss)
            smoothed.append(s)
            best = min(best, s)
            if i > 5 and s > LR_FIND_STOP * best:
                stopped = True
                break
    if len(smoothed) < 5:
        raise NnctlError("the loss blew up within the first steps; lower --start")
    high = OPTIMIZERS.entry(spec.optimizer.name).high_lr
    cap = high * LR_FIND_HIGH_SHARE if high else None
    return {"lrs": lrs, "losses": losses, "smoothed": smoothed, **suggest_lr(lrs, losses, smoothed, cap), "cap": cap,
            "stopped_early": stopped, "optimizer": spec.optimizer.name, "batch_size": batch}


def lr_find_head(n: int) -> int:
    """How many of a range test's first steps only set its starting loss: a tenth, at least 10 (a
    moving average over fewer batches is noise), at most half."""
    return max(n // 10, min(10, n // 2), 1)


def suggest_lr(lrs, losses, smoothed, cap: float | None = None) -> dict:
    """The suggested rate of a range test from its rising rates, losses and smoothed losses.

    The first steps (`lr_find_head`: a tenth, at least 10) only set the start: their rates are too
    small to move the weights, and their moving average rests on a handful of batches. Then:
    1. the reference rate is the one with the lowest smoothed loss, if that loss is at least
       LR_FIND_FALL below the start's (the mean loss over the first steps); if the loss never fell
       that far, the lowest point is noise, and the reference is where the loss blows up: the last
       rate before the smoothed loss, past its lowest point, first exceeds LR_FIND_BLOWUP times it
       (or the last rate tested);
    2. the suggestion is a tenth of the reference (fastai's "lr_min", after Smith): at the minimum
       the loss is about to blow up;
    3. if the smoothed loss is rising at that tenth (a bump on the way down), the suggestion moves
       down the tested rates to the foot of the rise;
    4. it is at most `cap` (lr_find: LR_FIND_HIGH_SHARE of the rate that gets ADAM_HIGH_LR).
    Returns {"suggestion", "reference_lr", "basis": "lowest loss" | "blow-up", "fall" (1 - lowest
    smoothed loss / start), "min_loss_lr", "lowered": None | "rise" (step 3) | "cap" (step 4)}.
    """
    lrs = np.asarray(lrs, dtype=float)
    sm = np.asarray(smoothed, dtype=float)
    skip = lr_find_head(len(sm))
    start = float(np.mean(np.asarray(losses, dtype=float)[:skip]))
    i_ref = i_min = skip + int(np.argmin(sm[skip:]))
    fall = 1.0 - float(sm[i_min]) / start if start > 0 else 0.0
    basis = "lowest loss"
    if fall < LR_FIND_FALL:
        above = np.flatnonzero(sm[i_min:] > LR_FIND_BLOWUP * sm[i_min])
        i_ref, basis = (i_min + max(int(above[0]) - 1, 0) if len(above) else len(sm) - 1), "blow-up"
    suggestion, lowered = float(lrs[i_ref] / 10), None
    j = int(np.searchsorted(lrs, suggestion, side="right")) - 1  # the last tested rate <= the suggestion
    if skip <= j < len(sm) - 1 and sm[j + 1] > sm[j]:  # rising between the tested rates around it
        while j > skip and sm[j - 1] < sm[j]:
            j -= 1
        suggestion, lowered = float(lrs[j]), "rise"
    if cap is not None and suggestion > cap:
        suggestion, lowered = float(cap), "cap"
    return {"suggestion": suggestion, "reference_lr": float(lrs[i_ref]), "basis": basis, "fall": fall,
            "min_loss_lr": float(lrs[i_min]), "lowered": lowered}


def suggestion_reason(result: dict) -> str:
    """Why lr-find suggests its rate, in the words of `suggest_lr`'s rule (for the table and the plot)."""
    ref = result["reference_lr"]
    if result["basis"] == "lowest loss":
        why = f"a tenth of {ref:.2g}, the rate with the lowest smoothed loss"
    else:
        why = (f"the loss fell only {max(result['fall'], 0):.0%} in the test, so a tenth of {ref:.2g}, the last rate "
               f"before it blew up to {LR_FIND_BLOWUP:g}x its lowest")
    if result["lowered"] == "rise":
        why += "; the loss was rising there, so lowered to the foot of that rise"
    elif result["lowered"] == "cap":
        why += f"; at most {result['cap']:g} for {result['optimizer']}"
    return why
