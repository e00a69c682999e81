"""Checks run from a config without training a run: gradient check and learning-rate range test."""

from __future__ import annotations

import math

import numpy as np

from nnctl.build import batch_size, build_optimizer, prepare
from nnctl.config.spec import Spec
from nnctl.errors import NnctlError

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


def lr_find(spec: Spec, start: float = 1e-7, end: float = 10.0, steps: int = 100) -> dict:
    """Learning-rate range test (Smith 2017): raise lr exponentially each step, record the loss.

    The test stops once the smoothed loss exceeds 4x its minimum. The suggestion is a tenth of the
    rate with the lowest smoothed loss, capped at the rate where the loss falls fastest.
    Returns {"lrs", "losses", "smoothed", "suggestion", "min_loss_lr", "steepest_lr", "stopped_early"}.
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
            if i > 5 and s > 4 * best:
                stopped = True
                break
    if len(smoothed) < 5:
        raise NnctlError("the loss blew up within the first steps; lower --start")
    logs = np.log10(lrs)
    sm = np.asarray(smoothed)
    skip = max(len(sm) // 10, 1)  # the first steps' moving average rests on a handful of batches
    i_min = skip + int(np.argmin(sm[skip:]))
    slope = np.gradient(sm, logs)
    i_steep = skip + int(np.argmin(slope[skip:i_min + 1])) if i_min > skip else i_min
    # The loss is lowest just before it blows up, so that rate is too large to train at; a tenth of it
    # (fastai's "lr_min") is a robust choice, and it is never above the steepest-descent rate here.
    suggestion = min(lrs[i_min] / 10, lrs[i_steep])
    return {"lrs": lrs, "losses": losses, "smoothed": smoothed, "suggestion": suggestion,
            "min_loss_lr": lrs[i_min], "steepest_lr": lrs[i_steep], "stopped_early": stopped,
            "optimizer": spec.optimizer.name, "batch_size": batch}
