"""The ONNX graph of a run: a small builder, the network in inference mode and the outputs.

Preprocessing runs in float64 as in predict (columns.py), then is folded into the first layer; the
network runs in the run's dtype. Constants are shaped to the rank of what they meet: onnxruntime
broadcasts a (1, 1) constant against an (N, 1) tensor far faster than a 0-d one.
"""

from __future__ import annotations

import numpy as np

from nnctl.errors import NnctlError

OPSET = 21  # StringSplit and RegexFullMatch (date parsing) need 20; onnxruntime >= 1.18 runs 21
ML_OPSET = 3  # ai.onnx.ml LabelEncoder with string keys: a level or a date -> a row of a table
OUTPUTS = ("label", "probabilities", "scores", "value")


class Graph:
    """The nodes and constants of a graph being built; every intermediate value gets a fresh name
    that no input or output uses."""

    def __init__(self, reserved: set[str]):
        from onnx import TensorProto, helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.DOUBLE, self.INT64 = TensorProto.DOUBLE, TensorProto.INT64  # element types for Cast
        self._float = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}
        self.nodes: list = []
        self.inits: list = []
        self.reserved = set(reserved)
        self._n = 0

    def elem(self, dtype) -> int:
        """The ONNX element type of a NumPy float dtype."""
        return self._float[np.dtype(dtype)]

    def fresh(self, hint: str) -> str:
        while True:
            self._n += 1
            name = f"{hint}_{self._n}"
            if name not in self.reserved:
                return name

    def const(self, value, dtype=None, hint: str = "c") -> str:
        """A constant (initializer) holding `value`; strings make a string tensor."""
        array = np.asarray(value, dtype=dtype)
        if array.dtype.kind == "U":
            array = array.astype(object)
        name = self.fresh(hint)
        self.inits.append(self.numpy_helper.from_array(array, name))
        return name

    def scalar(self, value, dtype, rank: int) -> str:
        """A one-element constant of shape (1,) * rank. onnxruntime broadcasts it ~20 times faster than
        a 0-d scalar against an operand of the same rank (measured: 0.08 ms against 1.6 ms for a Where
        on 100k rows)."""
        return self.const(np.full((1,) * rank, value, dtype=dtype))

    def op(self, op_type: str, *inputs: str, outputs: int = 1, domain: str | None = None, out: str | None = None,
           **attrs):
        """Add one node; returns its output name (a list of names when `outputs` > 1). `out` names
        the (single) output, for the graph's outputs."""
        names = [out] if out is not None else [self.fresh(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), names, domain=domain, **attrs))
        return names[0] if outputs == 1 else names


def build_onnx(loaded):
    """The onnx ModelProto of a loaded run (evaluate.LoadedRun): encoding, preprocessing, network, outputs."""
    from onnx import TensorProto, helper

    import nnctl
    from nnctl.data.columns import encoding_from_json
    from nnctl.export.columns import categorical_block, date_block, describe_input, na_strings, numeric_block

    encoders = encoding_from_json(loaded.columns).encoders
    names = [e.name for e in encoders]
    clash = sorted(set(names) & set(OUTPUTS))
    if clash:
        raise NnctlError(f"{loaded.run.path}: feature column {clash[0]!r} has the name of an output of the ONNX "
                         f"graph ({', '.join(OUTPUTS)}); it cannot be exported")
    if not encoders:
        raise NnctlError(f"{loaded.run.path}: the run records no feature columns; it cannot be exported")
    g = Graph(set(names) | set(OUTPUTS))
    model, pre = loaded.model, loaded.pre
    dt = model.dtype
    na = na_strings(loaded.spec.data.na_values)
    offsets = np.cumsum([0] + [e.width for e in encoders])[:-1]
    numeric = [(e, int(o)) for e, o in zip(encoders, offsets) if e.kind == "numeric"]
    blocks = [numeric_block(g, numeric, pre, dt)] if numeric else []
    for e, o in zip(encoders, offsets):
        if e.kind == "categorical":
            blocks.append(categorical_block(g, e, int(o), na, dt))
        elif e.kind == "date":
            blocks.append(date_block(g, e, int(o), na, pre, dt))
    n_rows = g.op("Shape", encoders[0].name, start=0, end=1)
    ones = g.op("Expand", g.scalar(1.0, dt, 2), g.op("Concat", g.const([1], np.int64), n_rows, axis=0))  # (1, N)
    X = g.op("Transpose", g.op("Concat", *(t for b in blocks for t in b.tensors), ones, axis=0), perm=[1, 0])
    # (N, d + 1): the features (stacked as rows, then transposed once), then ones for the first layer's bias
    features = [f for b in blocks for f in b.features]
    # a row predict would refuse is NaN in X (a missing value with no fill, an unseen level under
    # unknown: error, text that is no date), or infinite
    refused = _not_finite(g, X, len(features) + 1, dt)
    W1, b1 = _first_layer(model, pre, features, [x for b in blocks for x in b.binary])
    Z = _network(g, model, X, W1, b1)
    n_out = int(model.output_layer.width)
    refused = g.op("Or", refused, _not_finite(g, Z, n_out, dt))  # (N, 1); an output predict calls not finite
    inputs = []
    for e in encoders:
        kind = TensorProto.FLOAT if e.kind == "numeric" else TensorProto.STRING
        inputs.append(helper.make_tensor_value_info(e.name, kind, ["N", 1], doc_string=describe_input(e)))
    outputs = _outputs(g, loaded, Z, refused)
    graph = helper.make_graph(g.nodes, f"nnctl {loaded.spec.name}", inputs, outputs, g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
                          producer_name="nnctl", producer_version=nnctl.__version__)
    m.ir_version = min(m.ir_version, 10)  # what opset 21 came with: older runtimes accept it
    m.doc_string = (f"nnctl run {loaded.run.path.name}: {loaded.task}; inputs are the training file's feature "
                    f"columns, each (N, 1); rows predict would refuse give NaN outputs and an empty label")
    meta = {"run": loaded.run.path.name, "task": loaded.task, "columns": ",".join(names)}
    if loaded.classes is not None:
        meta["classes"] = ",".join(loaded.classes)
    if loaded.target_name:
        meta["target"] = loaded.target_name
    helper.set_model_props(m, meta)
    return m


def _not_finite(g: Graph, A: str, width: int, dt) -> str:
    """(N, 1) bool: the row of A (N, width) holds a NaN or an infinity (0 * inf is NaN). A product
    with a zero column: one cheap kernel, where Mul and ReduceSum take two passes over A."""
    return g.op("IsNaN", g.op("MatMul", A, g.const(np.zeros((width, 1)), dt)))


def _first_layer(model, pre, features: list[int], binary: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    """The first layer's (W, b) for the graph's feature columns, with the preprocessing folded in.

    The network sees X' = (S @ P) / post (S the scaled features, P the PCA projection, post the
    whitening scales) and computes X' @ W1 + b1 = S @ G + b1 with G = (P / post) @ W1. A scaled
    column j of the graph takes row G[f] of its feature f; a raw 0/1 column v takes G[f] / scale[f]
    and moves -shift[f] / scale[f] * G[f] into the bias. Folded in float64, then cast: one matrix
    product in the graph, where predict has two (the projection in float64, then the layer)."""
    first = model.layers[0]
    G = first.weight.astype(np.float64)  # (fan_in, width)
    if pre.projection is not None:
        P = pre.projection.astype(np.float64)
        if pre.post_scale is not None:
            P = P / pre.post_scale[None, :]
        G = P @ G  # (features, width)
    if sorted(features) != list(range(G.shape[0])):
        raise NnctlError(f"the run's encoding gives {len(features)} features; its preprocessing expects {G.shape[0]}")
    f = np.asarray(features)
    raw = np.asarray(binary, dtype=bool)
    W = G[f].copy()
    W[raw] /= pre.scale[f[raw], None]
    b = first.bias.astype(np.float64) - (pre.shift[f[raw]] / pre.scale[f[raw]]) @ G[f[raw]]
    return W, b


def _network(g: Graph, model, X: str, W1: np.ndarray, b1: np.ndarray) -> str:
    """The MLP in inference mode: per layer Z = A @ W + b, the norm, the activation; returns the logits.

    The first layer's W1, b1 have the preprocessing folded in (_first_layer), and X's last column is
    ones: Z = X @ [W1; b1], a MatMul, where a Gemm with a bias input first writes the bias into every
    output row (100k rows, 64 units, ReLU: 8 ms against 5 ms). In later layers that pass is cheaper
    than carrying a ones column (an odd width, units + 1, slows the products more)."""
    dt = model.dtype
    A = X
    for layer in model.layers:
        if layer.index == 1:
            Z = g.op("MatMul", A, g.const(np.vstack([W1, b1]), dt, "W"))
        else:
            Z = g.op("Add", g.op("MatMul", A, g.const(layer.weight, dt, "W")), g.const(layer.bias, dt, "b"))
        if layer is model.output_layer:
            return Z
        if layer.norm is not None:
            Z = _norm(g, layer, Z, dt)
        A = _activation(g, layer.activation, Z, dt)
    raise AssertionError("a model has an output layer")


def _norm(g: Graph, layer, Z: str, dt) -> str:
    """nn.norms in inference: batch norm with the running statistics; layer/group norm per row."""
    norm, name = layer.norm, layer.norm.registry_name
    gamma, beta = layer.norm_p["gamma"], layer.norm_p["beta"]
    if name == "batch":
        mean, var = layer.norm_state["running_mean"], layer.norm_state["running_var"]
        inv_std = 1.0 / np.sqrt(var + norm.eps)  # the same constant BatchNorm.forward computes
        Xhat = g.op("Mul", g.op("Sub", Z, g.const(mean, dt)), g.const(inv_std, dt))
    elif name in ("layer", "group"):
        width = layer.width
        Zg = g.op("Reshape", Z, g.const([-1, norm.groups, width // norm.groups], np.int64))
        axis = g.const([2], np.int64)
        D = g.op("Sub", Zg, g.op("ReduceMean", Zg, axis, keepdims=1))
        var = g.op("ReduceMean", g.op("Mul", D, D), axis, keepdims=1)  # biased, per row and group
        inv_std = g.op("Reciprocal", g.op("Sqrt", g.op("Add", var, g.scalar(norm.eps, dt, 3))))
        Xhat = g.op("Reshape", g.op("Mul", D, inv_std), g.const([-1, width], np.int64))
    else:
        raise NnctlError(f"norm {name!r} has no ONNX export yet")
    return g.op("Add", g.op("Mul", Xhat, g.const(gamma, dt)), g.const(beta, dt))


def _activation(g: Graph, act, Z: str, dt) -> str:
    """One nn.activations entry as ONNX operators (the torch.nn definitions nnctl follows)."""
    name = act.registry_name
    if name == "linear":
        return Z
    if name in ("sigmoid", "tanh", "relu", "mish"):
        return g.op({"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "mish": "Mish"}[name], Z)
    if name == "leaky_relu":
        return g.op("LeakyRelu", Z, alpha=float(act.alpha))
    if name == "elu":
        return g.op("Elu", Z, alpha=float(act.alpha))
    if name == "relu6":
        return g.op("Clip", Z, g.const(0.0, dt), g.const(6.0, dt))
    if name == "swish":
        return g.op("Mul", Z, g.op("Sigmoid", Z))
    if name == "gelu":
        return g.op("Gelu", Z, approximate=act.approximate)
    if name == "selu":
        from nnctl.nn.activations import _SELU_ALPHA, _SELU_SCALE

        return g.op("Selu", Z, alpha=_SELU_ALPHA, gamma=_SELU_SCALE)
    if name == "softplus":
        bz = g.op("Mul", Z, g.scalar(act.beta, dt, 2))
        # max(bz, 0) + log(1 + exp(-|bz|)): never overflows, whatever the threshold
        soft = g.op("Add", g.op("Relu", bz), g.op("Log", g.op("Add", g.scalar(1.0, dt, 2),
                                                              g.op("Exp", g.op("Neg", g.op("Abs", bz))))))
        big = g.op("Greater", bz, g.scalar(act.threshold, dt, 2))
        return g.op("Where", big, Z, g.op("Div", soft, g.scalar(act.beta, dt, 2)))
    if name == "maxout":
        k = int(act.pieces)
        Zr = g.op("Reshape", Z, g.const([0, -1, k], np.int64))  # (N, units, pieces)
        return g.op("ReduceMax", Zr, g.const([2], np.int64), keepdims=0)
    raise NnctlError(f"activation {name!r} has no ONNX export yet")


def _outputs(g: Graph, loaded, Z: str, refused: str) -> list:
    """The graph's outputs from the logits Z: label and probabilities (or scores), or value; rows flagged
    in `refused` (N, 1) get NaN and an empty label."""
    from onnx import TensorProto, helper

    loss, dt = loaded.model.loss, loaded.model.dtype
    n_out = int(loaded.model.output_layer.width)

    def output(V: str, width: int, dtype, name: str):
        """V (N, width) as the graph output `name`, NaN on refused rows: V + (NaN or 0) (N, 1) @ ones
        (1, width), a same-shape Add (a broadcast Where costs ten times more)."""
        mask = g.op("Where", refused, g.scalar(np.nan, dtype, 2), g.scalar(0.0, dtype, 2))
        g.op("Add", V, g.op("MatMul", mask, g.const(np.ones((1, width)), dtype)), out=name)
        elem = TensorProto.DOUBLE if np.dtype(dtype) == np.float64 else TensorProto.FLOAT
        return helper.make_tensor_value_info(name, elem, ["N", width])

    def as_float32(V: str) -> str:
        return V if np.dtype(dt) == np.float32 else g.op("Cast", V, to=TensorProto.FLOAT)

    if loaded.task == "regression":
        V = g.op("Cast", Z, to=TensorProto.DOUBLE)
        if loaded.target is not None:  # back to the original units, in float64 as LoadedRun.values
            V = g.op("Add", g.op("Mul", V, g.const(loaded.target.scale[None, :], np.float64)),
                     g.const(loaded.target.shift[None, :], np.float64))
        return [output(V, n_out, np.float64, "value")]
    classes = loaded.classes
    if n_out == 1:  # one unit: bce / mse give P(second class) > 0.5 at Z > 0; hinge / perceptron take Z >= 0
        second = g.op("Greater" if loss.has_proba else "GreaterOrEqual", Z, g.scalar(0.0, dt, 2))
        index = g.op("Cast", g.op("Squeeze", second, g.const([1], np.int64)), to=TensorProto.INT64)
    else:
        index = g.op("ArgMax", Z, axis=1, keepdims=0)  # ties: the first, as np.argmax
    row_refused = g.op("Squeeze", refused, g.const([1], np.int64))
    index = g.op("Where", row_refused, g.scalar(-1, np.int64, 1), index)  # refused: -1, no class
    g.op("LabelEncoder", index, domain="ai.onnx.ml", keys_int64s=list(range(len(classes))), values_strings=classes,
         default_string="", out="label")  # (N,); a little faster than a Gather of strings
    label = helper.make_tensor_value_info("label", TensorProto.STRING, ["N"])
    if not loss.has_proba:  # hinge, perceptron: raw scores, not probabilities
        return [label, output(as_float32(Z), n_out, np.float32, "scores")]
    if loss.link == "softmax":
        P = g.op("Softmax", Z, axis=1)
    elif loss.link == "sigmoid":
        p = g.op("Sigmoid", Z)  # (N, 1): the probability of the second class
        P = g.op("Concat", g.op("Sub", g.scalar(1.0, dt, 2), p), p, axis=1)
    else:
        raise NnctlError(f"output link {loss.link!r} has no ONNX export yet")
    return [label, output(as_float32(P), len(classes), np.float32, "probabilities")]
