"""`nnctl trace`: every number of a few training steps, in the lecture's notation, to check by hand.

The model and data are built by `build.prepare`, exactly as `nnctl train` builds them (same seed,
split, preprocessing, initial weights or `model.init_from`, optimizer and learning rate). The batch
is the first N rows of the training split (the split keeps the rows in data order), and every one
of the K steps uses that same batch: forward in training mode, as a training step runs (dropout
masks drawn from the run's dropout stream, batch statistics in batch norm, running statistics
updated), the loss, backprop, the gradient clipping the config asks for, and one optimizer step.
`train.gd` and `train.batch_size` do not apply: there is one batch.

A trace is meant to be read, so it is small: at most MAX_ROWS rows, MAX_STEPS steps and MAX_WIDTH
columns in any matrix (inputs, units, outputs). A larger network is refused, not truncated: the
next layer's Z depends on every unit, so a cut matrix could not be checked by hand.
"""

from __future__ import annotations

import math

import numpy as np

from nnctl.config.spec import Spec
from nnctl.errors import ConfigError

MAX_ROWS = 16
MAX_STEPS = 20
MAX_WIDTH = 16


def check_trace_size(spec: Spec, rows: int, steps: int) -> None:
    """ConfigError for a batch, a step count or a hidden layer too large to read (before loading data)."""
    if not 1 <= rows <= MAX_ROWS:
        raise ConfigError(f"--rows must be 1 to {MAX_ROWS} (a trace is read by eye); got {rows}")
    if not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"--steps must be 1 to {MAX_STEPS}; got {steps}")
    for i, layer in enumerate(spec.model.layers, start=1):
        if layer.width > MAX_WIDTH:
            cols = f"{layer.units} units" + (f" x {layer.width // layer.units} pieces" if layer.width > layer.units
                                             else "")
            raise ConfigError(f"{spec.source}: model layer {i} has {cols}; trace prints every number, so it "
                              f"takes at most {MAX_WIDTH} per layer; try --set model.hidden=[3,3]")
    if spec.model.needs_batch_stats and rows < 2:
        raise ConfigError(f"{spec.model.batch_stats_norm} norm needs at least 2 rows in a training step; use "
                          f"--rows 2 or more")


def trace_spec(spec: Spec, rows: int = 2, steps: int = 1) -> dict:
    """Forward, loss, backward and update of `steps` training steps on the first `rows` training rows.

    Returns {"steps": [...]} in the shape DESIGN §1 gives `trace --json` (every array a NumPy array:
    the CLI converts), plus what the human output shows around it: "X", "Y", "params_before",
    "rows" (indices in the loaded data), "layers" (per layer: number, activation, norm, dropout,
    shapes), "loss_name", "link", "optimizer", "lr", "dtype", "notes", "diverged" (a step's loss or
    gradient was not finite: the trace stops there, as training would). Raises ConfigError (exit 2)
    for a trace too large to read, DataError for data that cannot be loaded.
    """
    from nnctl.build import build_optimizer, build_schedule, prepare
    from nnctl.diagnostics import config_findings

    check_trace_size(spec, rows, steps)
    prepared = prepare(spec)
    spec, model = prepared.spec, prepared.model
    notes: list[str] = []
    n_inputs = model.n_inputs
    if n_inputs > MAX_WIDTH:
        raise ConfigError(f"{spec.source}: the data has {n_inputs} inputs after preprocessing; trace prints every "
                          f"number, so it takes at most {MAX_WIDTH}; try data.preprocess: pca with "
                          f"data.pca_components: 4, or fewer data.features")
    if model.output_layer.width > MAX_WIDTH:
        raise ConfigError(f"{spec.source}: the output layer has {model.output_layer.width} units (one per class); "
                          f"trace takes at most {MAX_WIDTH}")
    n_train = len(prepared.X["train"])
    if n_train < rows:
        notes.append(f"--rows {rows}: the training split has {n_train} rows; tracing all of them")
        rows = n_train
    X, Y = prepared.X["train"][:rows], prepared.Y["train"][:rows]
    if prepared.target is not None:
        notes.append("regression targets are standardized on the training rows (data.target_scale: auto): Y and "
                     "the output A are in standardized units")
    optimizer = build_optimizer(spec, model.params.theta)
    lr = build_schedule(spec).lr(0)  # the first epoch's rate (warmup included), as training's first steps
    params_before = _params(model)
    # a diverging trace is reported (null in JSON, a note), not warned about, as training does
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out_steps = _steps(model, X, Y, optimizer, lr, spec.optimizer.clip_grad_norm, prepared.rngs["dropout"],
                           steps, notes)
    split_rows = prepared.split["train"][:rows]
    return {"steps": out_steps, "X": X.copy(), "Y": Y.copy(), "params_before": params_before,
            "rows": [int(r) for r in split_rows], "n_train": n_train, "layers": _layers(model),
            "loss_name": spec.train.loss, "link": model.loss.link, "task": spec.data.task,
            "classes": list(prepared.dataset.class_names or []), "optimizer": spec.optimizer.name, "lr": lr,
            "options": dict(spec.optimizer.options), "class_weight": prepared.class_weight is not None,
            "weight_decay": spec.optimizer.weight_decay, "dtype": spec.train.dtype, "name": spec.name,
            "notes": notes, "findings": config_findings(spec),
            "diverged": any(n.startswith("step ") and "diverged" in n for n in notes),
            "init": f"from model.init_from {spec.model.init_from}" if spec.model.init_from else
            f"drawn by model.init, seed {spec.seed}"}


def _steps(model, X, Y, optimizer, lr: float, clip: float | None, dropout_rng, steps: int, notes: list[str]
           ) -> list[dict]:
    """`steps` training steps on the batch (X, Y), each recorded as DESIGN's `trace --json` step."""
    theta, grad = model.params.theta, model.params.grad  # flat vectors; grads: the per-key views
    out_steps = []
    for step in range(1, steps + 1):
        record: dict[int, np.ndarray] = {}
        Z_L, cache = model.forward(X, train=True, rng=dropout_rng)
        forward = _forward_records(model, cache, Z_L)
        loss, dZ = model.loss.value_and_grad(Z_L, Y)
        model.backward(dZ, cache, record)
        grads = model.params.grads
        # layer L down to 1; a norm's gain and shift (dgamma, dbeta) ride along for the human output
        backward = [{"layer": layer.index, "dZ": record[layer.index], "dW": grads[layer.W].copy(),
                     "db": grads[layer.b].copy(),
                     **{f"d{name}": grads[key].copy() for name, key in layer.norm_params.items()}}
                    for layer in reversed(model.layers)]
        sq = float(np.dot(grad, grad))
        entry = {"step": step, "forward": forward, "loss": loss, "backward": backward}
        out_steps.append(entry)
        if not (math.isfinite(loss) and math.isfinite(sq)):
            notes.append(f"step {step}: the loss or a gradient is not finite; training would stop here (diverged), "
                         f"so no update is made")
            entry["params_after"] = _params(model)
            break
        if clip is not None:  # as Trainer.run_epoch: torch's clip_grad_norm_
            coef = clip / (math.sqrt(sq) + 1e-6)
            if coef < 1.0:
                grad *= coef
                notes.append(f"step {step}: gradient norm {math.sqrt(sq):.6g} > clip_grad_norm {clip:g}: "
                             f"gradients scaled by {coef:.6g} before the update (dW, db above are unclipped)")
        optimizer.step(theta, grad, lr)  # theta updated IN PLACE: the layer views depend on it
        entry["params_after"] = _params(model)
        if not np.isfinite(theta).all():  # finite gradients, but the step overflowed the weights
            notes.append(f"step {step}: the update made some weights infinite or NaN; training would stop "
                         f"(diverged)")
            break
    return out_steps


def _params(model) -> dict[str, np.ndarray]:
    return {key: view.copy() for key, view in model.params.views.items()}


def _forward_records(model, cache, Z_L: np.ndarray) -> list[dict]:
    """Per layer: Z (A_prev @ W + b, before any norm) and A (what the next layer receives: after the
    norm, the activation and dropout; for the output layer the model's output, probability or value)."""
    out = []
    for i, (layer, c) in enumerate(zip(model.hidden, cache.hidden)):
        Z = c.A_prev @ layer.weight + layer.bias if layer.norm is not None else c.Z.copy()
        A = cache.hidden[i + 1].A_prev if i + 1 < len(cache.hidden) else cache.A_last
        out.append({"layer": layer.index, "Z": Z, "A": A.copy()})
    out.append({"layer": model.output_layer.index, "Z": Z_L.copy(), "A": model.loss.output(Z_L)})
    return out


def _layers(model) -> list[dict]:
    """What the human output says about each layer."""
    out = []
    for layer in model.layers:
        act = layer.activation
        out.append({"layer": layer.index, "fan_in": layer.fan_in, "width": layer.width, "units": layer.units,
                    "activation": act.registry_name if act is not None else None,
                    "norm": layer.norm.registry_name if layer.norm is not None else None,
                    "dropout": layer.dropout})
    return out


def json_document(result: dict) -> dict:
    """Exactly the document `trace --json` prints (DESIGN §1), arrays still NumPy: {"steps": [{"step",
    "forward": [{"layer", "Z", "A"}], "loss", "backward": [{"layer", "dZ", "dW", "db"}], "params_after"}]}."""
    return {"steps": [{"step": s["step"],
                       "forward": [{"layer": f["layer"], "Z": f["Z"], "A": f["A"]} for f in s["forward"]],
                       "loss": s["loss"],
                       "backward": [{"layer": b["layer"], "dZ": b["dZ"], "dW": b["dW"], "db": b["db"]}
                                    for b in s["backward"]],
                       "params_after": s["params_after"]} for s in result["steps"]]}
