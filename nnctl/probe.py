"""The probe: per-epoch, per-layer measurements of a network on a fixed batch of training rows.

Once per epoch (not per step, so it stays cheap) the `Probe` runs the model on a fixed batch drawn
from the training split and records, for every layer: the activations' mean and std, the fraction
of dead ReLU units (never positive on the probe batch), the fraction of saturated sigmoid/tanh
outputs (within 0.03 of a bound), the gradient's norm and RMS, and the update/weight ratio
||W_end - W_start|| / ||W_start|| over the epoch: diagnostics.csv. nnctl/diagnostics.py turns
these rows into findings.
"""

from __future__ import annotations

import math

import numpy as np

PROBE_ROWS = 256
SATURATION_MARGIN = 0.03
DIAG_COLUMNS = ["epoch", "layer", "units", "act_mean", "act_std", "dead_frac", "saturated_frac", "grad_norm",
                "grad_rms", "update_ratio", "first_last_grad_ratio", "preact_std"]


class Probe:
    """Measures every layer on a fixed probe batch once per epoch; fills `rows` (diagnostics.csv)."""

    def __init__(self, model, X: np.ndarray, Y: np.ndarray, rng: np.random.Generator):
        self.model = model
        idx = np.sort(rng.choice(len(X), size=min(PROBE_ROWS, len(X)), replace=False))
        self.X, self.Y = X[idx], Y[idx]
        self.seed = int(rng.integers(2**63))  # fixed dropout masks for the probe gradient
        # per-unit variation of the network's input (the first layer's gain divides by it): fixed
        self.spread = float(self.X.astype(np.float64).std(axis=0).mean())
        # without dropout or batch norm the training-mode pass computes exactly what inference does,
        # so one forward pass serves both the activations and the gradient
        self.one_pass = not any(layer.dropout > 0 or (layer.norm is not None and layer.norm.needs_batch_stats)
                                for layer in model.hidden)
        # each layer's weight matrix W as a segment of the flat parameter vector; `w_bounds`: the
        # segments' [start, stop) pairs as np.add.reduceat indices (None if they do not ascend)
        self.w_slices = [model.params.slices[layer.W] for layer in model.layers]
        self.w_sizes = [sl.stop - sl.start for sl in self.w_slices]
        edges = [e for sl in self.w_slices for e in (sl.start, sl.stop)]
        ascending = all(a < b for a, b in zip(edges, edges[1:])) and edges[-1] < model.params.theta.size
        self.w_bounds = np.asarray(edges, dtype=np.intp) if ascending else None
        self.rows: list[dict] = []
        self.start: np.ndarray | None = None
        self.initial_loss = float("nan")

    def initial(self) -> None:
        """Record the untrained model's loss on the probe batch (for BAD_INIT_LOSS)."""
        Z, _ = self.model.forward(self.X)
        self.initial_loss = self.model.loss.value(Z, self.Y)

    def epoch_start(self) -> None:
        self.start = self.model.params.theta.copy()

    def epoch_end(self, epoch: int) -> list[dict]:
        """Measure after epoch `epoch` (1-based); returns this epoch's per-layer rows."""
        model = self.model
        params = model.params
        # activations in inference mode (what the network computes), gradients in training mode
        # with frozen batch-norm statistics and fixed dropout masks
        if self.one_pass:
            Z_out, cache = model.forward(self.X, train=True, update_stats=False)
            rows = self._activations(cache.hidden)  # before backward, which reuses buffers
            _, dZ = model.loss.value_and_grad(Z_out, self.Y)
            model.backward(dZ, cache)
        else:
            rows = self._activations(model.forward(self.X)[1].hidden)
            model.loss_and_grad(self.X, self.Y, rng=np.random.default_rng(self.seed), update_stats=False)
        grad_sq, w0_sq, step_sq = self._weight_sums()
        norms = []
        for i, layer in enumerate(model.layers):
            size = self.w_sizes[i]
            grad_norm = math.sqrt(grad_sq[i])
            norms.append(grad_norm)
            row = rows[i]
            row.update({"epoch": epoch, "layer": layer.index, "units": layer.units, "grad_norm": grad_norm,
                        "grad_rms": grad_norm / math.sqrt(max(size, 1)),
                        "update_ratio": (math.sqrt(step_sq[i]) / max(math.sqrt(w0_sq[i]), 1e-12)
                                         if step_sq is not None else float("nan"))})
            if i < len(model.hidden):
                # identical units = identical incoming weights and biases (dead units merely look alike)
                W, b = params.views[layer.W], params.views[layer.b]
                row["_symmetric"] = bool(W.shape[1] > 1 and float(np.max(np.ptp(W, axis=1), initial=0.0)) < 1e-7
                                         and float(np.ptp(b)) < 1e-7)
        ratio = norms[0] / norms[-1] if norms[-1] > 0 else float("inf") if norms[0] > 0 else float("nan")
        for row in rows:
            row["first_last_grad_ratio"] = ratio
        self.rows.extend(rows)
        return rows

    def _weight_sums(self) -> tuple[list[float], list[float] | None, list[float] | None]:
        """Per layer, over its weight matrix W (float64 sums): the squared gradient, the squared
        weights at the start of the epoch, and the squared change since then (the last two None
        before the first epoch_start). One pass over the flat vectors for all layers at once: the
        W blocks are segments of `theta`, summed by one np.add.reduceat."""
        params = self.model.params
        bounds = self.w_bounds
        f64 = np.float64

        def sums(v: np.ndarray) -> list[float]:
            v = np.asarray(v, dtype=f64)
            if bounds is None:  # W blocks not in increasing order: one layer at a time
                return [float(np.dot(v[sl], v[sl])) for sl in self.w_slices]
            return np.add.reduceat(v * v, bounds)[::2].tolist()

        grad = sums(params.grad)
        if self.start is None:
            return grad, None, None
        w0 = np.asarray(self.start, dtype=f64)
        return grad, sums(w0), sums(np.asarray(params.theta, dtype=f64) - w0)

    def _activations(self, caches) -> list[dict]:
        """One row per layer (output layer last, empty) with the hidden layers' activation statistics.

        Every hidden layer's H and Z side by side in one float64 matrix, so that a handful of NumPy
        calls measure them all (per-call overhead, not arithmetic, is the probe's cost on small
        nets): per-column means and variances (two-pass), then each block's mean, its std over all
        values (the mean of the column variances plus the spread of the column means) and its mean
        per-unit std."""
        hidden = self.model.hidden
        if not hidden:
            return [{}]
        blocks = [m for c in caches for m in (c.H, c.Z)]
        widths = [m.shape[1] for m in blocks]
        A = np.concatenate(blocks, axis=1, dtype=np.float64)
        n = len(A)
        col_mean = np.add.reduce(A, axis=0) / n  # A.mean(axis=0), without its Python-level overhead
        A -= col_mean
        A *= A
        col_var = np.add.reduce(A, axis=0) / n
        starts = np.cumsum([0, *widths[:-1]])
        k = np.asarray(widths, dtype=np.float64)
        mean = np.add.reduceat(col_mean, starts) / k
        col_var_all = col_var + (col_mean - np.repeat(mean, widths)) ** 2
        std = np.sqrt(np.add.reduceat(col_var_all, starts) / k)
        unit_std_all = np.add.reduceat(np.sqrt(col_var), starts) / k
        rows: list[dict] = []
        spread = self.spread
        for i, (layer, c) in enumerate(zip(hidden, caches)):
            h, z = 2 * i, 2 * i + 1
            row = {"act_mean": float(mean[h]), "act_std": float(std[h]), "preact_std": float(std[z])}
            # how much each unit's output varies with the input (std over rows, averaged over units):
            # what a collapse takes away, unlike act_std, which also counts units that differ by a constant
            unit_std = float(unit_std_all[h])
            row["_unit_std"] = unit_std
            # what the weights did to that variation: about 1 with Xavier/He init
            row["_gain"] = float(unit_std_all[z]) / spread if spread > 0 else float("nan")
            spread = unit_std
            act = layer.activation
            if act.can_die:  # not applicable columns stay empty in diagnostics.csv
                row["dead_frac"] = float(np.mean(np.all(c.Z <= 0, axis=0)))
            if act.bounds is not None:
                lo, hi = act.bounds
                H64 = np.asarray(c.H, dtype=np.float64)
                near = (H64 <= lo + SATURATION_MARGIN) | (H64 >= hi - SATURATION_MARGIN)
                row["saturated_frac"] = float(near.mean())
            rows.append(row)
        rows.append({})  # the output layer
        return rows

    def state_dict(self) -> tuple[float, np.ndarray]:
        """The initial loss, and the rows so far as one float matrix in DIAG_COLUMNS order (NaN: not measured)."""
        matrix = np.array([[r.get(c, np.nan) for c in DIAG_COLUMNS] for r in self.rows],
                          dtype=np.float64).reshape(len(self.rows), len(DIAG_COLUMNS))
        return self.initial_loss, matrix

    def load_state_dict(self, initial_loss: float, matrix: np.ndarray) -> None:
        self.rows = [{c: (int(v) if c in ("epoch", "layer", "units") else float(v))
                      for c, v in zip(DIAG_COLUMNS, r) if not np.isnan(v)} for r in matrix]
        self.initial_loss = float(initial_loss)
