"""`nnctl trace` as text: every matrix with its name, shape and formula, rows as lines, 80 columns.

Plain text, not rich: a trace is copied into notes and diffed, and its numbers must not be
re-wrapped. Numbers have 6 significant digits (J has 10); a matrix wider than 80 columns is
printed in blocks of columns, each headed by the columns it holds.
"""

from __future__ import annotations

import textwrap

WIDTH = 80
INDENT = "  "

# dJ/dZL of each loss and output link (n rows, k output units), as value_and_grad computes it
OUTPUT_GRAD = {
    ("cross_entropy", "softmax"): "(A{L} - Y) / n",
    ("bce", "sigmoid"): "(A{L} - Y) / n",
    ("mse", "identity"): "2 (A{L} - Y) / (n k)",
    ("mse", "sigmoid"): "2 (A{L} - Y) * A{L} (1 - A{L}) / (n k)",
    ("mse", "softmax"): "(G - rowsum(G * A{L})) * A{L}, G = 2 (A{L} - Y) / (n k)",
    ("mae", "identity"): "sign(A{L} - Y) / (n k)",
    ("huber", "identity"): "clip(A{L} - Y, -1, 1) / (n k)",
}
LOSS_TEXT = {
    "cross_entropy": "-mean over rows of log A{L}[true class]",
    "bce": "-mean(Y log A{L} + (1 - Y) log(1 - A{L}))",
    "mse": "mean((A{L} - Y)^2) over all n k elements",
    "mae": "mean(|A{L} - Y|) over all n k elements",
    "huber": "mean(huber(A{L} - Y)) over all n k elements",
    "hinge": "mean(max(0, 1 - Y Z{L})) with Y = -1/+1 (one unit; more classes: per row the sum over j != y of "
             "max(0, 1 - Z{L}[y] + Z{L}[j]) / k)",
    "perceptron": "mean(max(0, -Y Z{L})) with Y = -1/+1; A{L} = step(Z{L}), and dZ{L} = -Y / n on the "
                  "misclassified rows only",
}


def number(v: float, digits: int = 6) -> str:
    return f"{v + 0.0:.{digits}g}"  # + 0.0: a ReLU's -0.0 prints as 0


def matrix(name: str, M, formula: str = "") -> list[str]:
    """`name (shape) = formula`, then the rows of M (a vector is one row), in blocks that fit WIDTH."""
    import numpy as np

    M = np.asarray(M)
    shape = "(" + ", ".join(str(d) for d in M.shape) + ("," if M.ndim == 1 else "") + ")"
    head = f"{name} {shape}" + (f" = {formula}" if formula else "")
    lines = textwrap.wrap(head, WIDTH, subsequent_indent=INDENT * 2) or [head]
    rows = M.reshape(1, -1) if M.ndim == 1 else M
    cells = [[number(float(v)) for v in row] for row in rows]
    cell = max((len(c) for row in cells for c in row), default=1)
    per_block = max((WIDTH - len(INDENT)) // (cell + 2), 1)
    n_cols = rows.shape[1]
    for start in range(0, n_cols, per_block):
        stop = min(start + per_block, n_cols)
        if n_cols > per_block:
            lines.append(f"{INDENT}columns {start + 1}-{stop} of {n_cols}:")
        lines += [INDENT + "".join(c.rjust(cell + 2) for c in row[start:stop]) for row in cells]
    return lines


def _prose(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, subsequent_indent=INDENT)


def _layer_words(layer: dict, L: int) -> str:
    units = f"{layer['units']} unit{'s' * (layer['units'] != 1)}"
    if layer["layer"] == L:
        return f"layer {L} output ({units})"
    extra = "".join(f", {x}" for x in (f"{layer['norm']} norm" if layer["norm"] else "",
                                       f"dropout {layer['dropout']:g}" if layer["dropout"] else "") if x)
    return f"layer {layer['layer']} {layer['activation']} ({units}{extra})"


def _output_meaning(result: dict, L: int) -> str:
    link, classes = result["link"], result["classes"]
    if link == "sigmoid":
        second = f" {classes[1]!r}" if len(classes) == 2 else ""
        return f"sigmoid(Z{L}), the probability of class{second}"
    if link == "softmax":
        return f"softmax(Z{L}), one column per class" + (f" ({', '.join(classes)})" if classes else "")
    if link == "step":
        return f"step(Z{L}): 1 where Z{L} >= 0 (class {classes[1]!r}), else 0" if len(classes) == 2 else f"step(Z{L})"
    if result["task"] == "classification":
        return f"Z{L} (identity: the raw scores the margin loss compares)"
    return f"Z{L} (identity: the predicted value)"


def _hidden_A(layer: dict) -> str:
    l, act = layer["layer"], layer["activation"]
    inner = f"{layer['norm']}_norm(Z{l})" if layer["norm"] else f"Z{l}"
    text = f"{act}({inner})"
    if layer["dropout"]:
        text += f" * mask / {1 - layer['dropout']:g} (dropout)"
    return text


def _hidden_dZ(layer: dict, nxt: int) -> str:
    l, act = layer["layer"], layer["activation"]
    dA = f"dZ{nxt} @ W{nxt}.T"
    if layer["dropout"]:
        dA = f"({dA}) * mask / {1 - layer['dropout']:g}"
    if layer["norm"]:
        return f"{dA}, back through {act} and {layer['norm']} norm"
    if act == "maxout":
        return f"{dA}, routed to each unit's largest piece"
    return f"{dA} * {act}'(Z{l})" if layer["dropout"] else f"({dA}) * {act}'(Z{l})"


def _update(result: dict) -> str:
    wd = result["weight_decay"]
    if result["optimizer"] == "sgd" and not result["options"]:
        grad = "dP" if not wd else f"(dP + {wd:g} P)"
        return f"P <- P - {number(result['lr'])} {grad} for every parameter P"
    return f"the {result['optimizer']} update of torch.optim, lr {number(result['lr'])}, weight_decay {wd:g}"


def trace_lines(result: dict) -> list[str]:
    """The whole human trace, line by line (no line longer than WIDTH)."""
    layers, L = result["layers"], len(result["layers"])
    n, steps = len(result["X"]), len(result["steps"])
    sizes = "-".join(str(x) for x in [layers[0]["fan_in"], *(ly["units"] for ly in layers)])
    rows = ", ".join(str(r) for r in result["rows"])
    out = _prose(f"trace of {result['name']}: {n} row{'s' * (n != 1)}, {steps} step{'s' * (steps != 1)}, "
                 f"{result['dtype']}")
    out += _prose(f"network {sizes}: " + ", ".join(_layer_words(ly, L) for ly in layers))
    out += _prose(f"loss {result['loss_name']}" + (" (weighted by class)" if result["class_weight"] else "")
                  + f", output link {result['link']}; optimizer {result['optimizer']}, lr {number(result['lr'])}")
    out += _prose(f"batch: the first {n} rows of the training split (rows {rows} of the data, counted from 0), "
                  f"the same batch every step, in training mode as a training step runs")
    out += _prose("notation: rows are samples; Z = A_prev @ W + b with W of shape (fan_in, fan_out); A0 = X; "
                  "each step's formulas use the parameters before its update")
    out += ["", *matrix("X", result["X"], "A0, the inputs after preprocessing"),
            *matrix("Y", result["Y"], "the targets the loss compares with")]
    out += ["", *_prose(f"parameters before step 1 ({result['init']})")]
    for key, value in result["params_before"].items():
        out += matrix(key, value)
    for s in result["steps"]:
        out += ["", f"=== step {s['step']} " + "=" * (WIDTH - 10 - len(str(s["step"]))), "", "forward"]
        for f, ly in zip(s["forward"], layers):
            l = f["layer"]
            prev = "X" if l == 1 else f"A{l - 1}"
            z_note = f" (before {ly['norm']} norm)" if ly["norm"] else ""
            out += matrix(f"Z{l}", f["Z"], f"{prev} @ W{l} + b{l}{z_note}")
            out += matrix(f"A{l}", f["A"], _output_meaning(result, L) if l == L else _hidden_A(ly))
        out += _prose(f"J = {number(s['loss'], 10)}, " + LOSS_TEXT[result["loss_name"]].format(L=L))
        out += ["", "backward"]
        for b in s["backward"]:
            l = b["layer"]
            if l == L:
                grad = OUTPUT_GRAD.get((result["loss_name"], result["link"]), "dJ/dZ{L}").format(L=L)
                if result["class_weight"]:
                    grad = f"dJ/dZ{L} (loss weighted by class)"
            else:
                grad = _hidden_dZ(layers[l - 1], l + 1)
            out += matrix(f"dZ{l}", b["dZ"], grad)
            out += matrix(f"dW{l}", b["dW"], f"{'X' if l == 1 else f'A{l - 1}'}.T @ dZ{l}")
            out += matrix(f"db{l}", b["db"], f"dZ{l} summed over the rows")
            for name in ("gamma", "beta"):
                if f"d{name}" in b:
                    out += matrix(f"d{name}{l}", b[f"d{name}"])
        out += ["", *_prose(f"parameters after step {s['step']}: {_update(result)}")]
        for key, value in s["params_after"].items():
            out += matrix(key, value)
    return out


def trace(result: dict) -> None:
    """Print the trace on stdout (plain text)."""
    import sys

    sys.stdout.write("\n".join(trace_lines(result)) + "\n")
