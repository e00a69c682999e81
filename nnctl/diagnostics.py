"""Network health in plain language: the findings catalogue and the detectors.

The `Probe` (nnctl/probe.py) measures every layer once per epoch on a fixed batch: activations'
mean and std, dead ReLU units, saturated sigmoid/tanh outputs, gradient norms, update/weight
ratios. `Findings` turns those numbers (and the loss curve) into coded findings, each reported
once, with why it matters and what to try; the same catalogue feeds `nnctl explain`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Concept:
    """A finding's code, its one-line why, what to try, and the longer explanation for `explain`."""

    code: str
    title: str
    why: str
    try_: str
    explain: str


CATALOGUE: dict[str, Concept] = {c.code: c for c in [
    Concept("DEAD_RELU", "dead ReLU units",
            "units whose pre-activation is negative for every input output 0 and get zero gradient: they stop "
            "learning, and recover only if the layers below happen to shift their inputs",
            "lower optimizer.lr, use init: auto (He), a small positive bias_init, or activation: leaky_relu / elu",
            "A ReLU outputs max(0, z). If a unit's weighted input z is negative for every training example, the "
            "unit outputs 0 everywhere and its gradient is 0 everywhere, so gradient descent can never move its "
            "weights again: the unit is dead. It usually happens when a large update (learning rate too high) "
            "throws the weights far negative, or when biases start very negative. A layer with many dead units "
            "has less capacity than its size suggests. Fixes: a smaller learning rate, He initialisation, a "
            "slightly positive bias_init, or an activation with a non-zero slope for z < 0 (leaky_relu, elu)."),
    Concept("SATURATED", "saturated sigmoid/tanh units",
            "outputs stuck near the bounds of sigmoid/tanh have a derivative near 0, so almost no gradient flows",
            "standardize the inputs, use init: auto (Xavier), lower the lr, add norm: batch, or use relu",
            "sigmoid and tanh flatten out for large |z|: sigmoid(z) is near 0 or 1, tanh(z) near -1 or 1, and "
            "their derivative there is nearly 0. A saturated unit passes almost no gradient back, so it and the "
            "layers below it learn very slowly. Saturation comes from inputs that are not standardised, weights "
            "initialised too large (He init is meant for ReLU, Xavier for sigmoid/tanh) or a learning rate that "
            "pushes weights large. Batch norm before the activation keeps z in the responsive range."),
    Concept("VANISHING_GRAD", "vanishing gradients",
            "the gradient shrinks at every layer on its way down, so the first layers barely learn",
            "use relu-family activations with He init, fewer layers, norm: batch / layer, or an adaptive optimizer "
            "(adam)",
            "Backpropagation multiplies the gradient by each layer's weights and activation derivative on its way "
            "down. With saturating activations (sigmoid's derivative is at most 0.25) the product shrinks "
            "geometrically with depth: five sigmoid layers can leave the first layer a thousandth of the output "
            "layer's gradient, so it stays near its initial values. nnctl reports it when the gradient RMS falls "
            "by half or more per layer on average and the first layer gets under 1/20 of the output layer's "
            "(with adam-like optimizers, which rescale small gradients, only if the loss stalls too). Remedies: "
            "ReLU-family activations with He init, normalisation layers, or a shallower network."),
    Concept("ACTIVATION_COLLAPSE", "collapsing activations",
            "the activations' spread shrinks layer by layer to almost nothing, so the last layers see nearly the "
            "same input for every example and the gradients shrink the same way",
            "use init: auto (Xavier for sigmoid/tanh, He for relu) instead of a small fixed std, or add norm: batch "
            "/ layer",
            "Each layer multiplies its input by W: with weights drawn from N(0, s^2) and n inputs, the output's "
            "spread is about s * sqrt(n) times the input's. For s = 0.01 and 64 units that factor is 0.08, so six "
            "layers shrink the signal by 0.08^6: the deep layers output the same value for every example, the "
            "network cannot tell inputs apart, and backpropagation, which multiplies by the same small weights, "
            "brings almost no gradient back. Xavier and He init choose s so the factor is about 1 (s^2 = 2 / "
            "(fan_in + fan_out), or 2 / fan_in for relu); normalisation layers rescale the signal at every layer."),
    Concept("EXPLODING_GRAD", "exploding gradients",
            "the first layer's gradient is orders of magnitude larger than the last layer's, or gradients are huge",
            "set optimizer.clip_grad_norm (e.g. 1.0), lower the lr, check the init scale, or add normalisation",
            "The same multiplication that makes gradients vanish can make them grow geometrically when weights "
            "are large, so early layers get enormous updates and training becomes unstable or diverges. Clipping "
            "the global gradient norm bounds each step; a smaller learning rate, a smaller init scale and "
            "normalisation layers remove the cause."),
    Concept("LR_TOO_SMALL", "learning rate too small",
            "the loss barely moves and each epoch changes the weights by a tiny fraction",
            "raise optimizer.lr (try 10x), or run nnctl lr-find",
            "Gradient descent moves the weights by lr times the gradient. If lr is tiny, every step changes the "
            "weights by a negligible fraction (update/weight ratios far below 1e-3) and the loss curve is nearly "
            "flat: training would need vastly more epochs. A learning-rate range test (nnctl lr-find) shows the "
            "largest rate at which the loss still falls steadily."),
    Concept("LR_TOO_LARGE", "learning rate too large",
            "the loss rises or oscillates instead of falling, and updates are a large fraction of the weights",
            "lower optimizer.lr (try 10x smaller), add a schedule or warmup, or set clip_grad_norm",
            "If the learning rate is too large, each step overshoots the valley of the loss: the loss jumps up, "
            "oscillates, or diverges to infinity, and the update/weight ratio is large (a healthy ratio is around "
            "1e-3). Lower the rate, warm it up, or decay it with a schedule."),
    Concept("SYMMETRY", "symmetric units",
            "all units of a layer compute the same thing, so they get the same gradient and stay identical",
            "use a random init (init: auto, he_normal, xavier_uniform) instead of zeros",
            "If every weight of a layer starts equal (init: zeros), every unit computes the same function, "
            "receives the same gradient and takes the same step: the symmetry is never broken and a layer of 64 "
            "units behaves like a single unit. Random initialisation breaks the symmetry; its scale (Xavier, He) "
            "keeps the signal's variance steady from layer to layer."),
    Concept("BAD_INIT_LOSS", "unexpected initial loss",
            "before training, the loss is far from ln(number of classes), the loss of a network that has not "
            "decided anything yet",
            "use a smaller init scale (init: auto), standardize the inputs, and check the labels",
            "A freshly initialised classifier should be unsure: with C classes its softmax is close to uniform "
            "and the cross-entropy close to ln C (ln 2 = 0.69 for two classes). A much larger initial loss means "
            "the network starts confidently wrong, usually because the weights or inputs are too large. That "
            "wastes the first epochs undoing the initialisation, and can saturate units."),
    Concept("HE_INIT_SATURATING", "He init with a saturating activation",
            "He init doubles the variance meant for ReLU; with sigmoid/tanh it pushes units toward saturation",
            "use init: auto (Xavier for sigmoid/tanh)",
            "He (Kaiming) initialisation draws weights with variance 2 / fan_in, compensating for ReLU zeroing "
            "half its inputs. sigmoid and tanh do not zero anything, so the same scale makes pre-activations too "
            "large and pushes them into the flat, saturated regions. Xavier init (variance 2 / (fan_in + "
            "fan_out)) is designed for them."),
    Concept("BATCHNORM_SMALL_BATCH", "batch norm with small batches",
            "batch statistics from fewer than 8 rows are noisy, so training is noisy and the running statistics "
            "used at inference are poor",
            "use batch_size >= 32, or norm: layer / group, which do not depend on the batch",
            "Batch norm normalises each unit with the mean and variance of the current batch. With a handful of "
            "rows those estimates are very noisy: training sees a different normalisation every step and the "
            "running statistics used at inference do not match. Layer and group norm normalise within each row "
            "and are independent of the batch size."),
    Concept("ADAM_HIGH_LR", "Adam with a large learning rate",
            "Adam's step is about lr per parameter regardless of the gradient's scale; lr >= 0.1 usually "
            "overshoots",
            "use lr around 1e-3 (the default) to 1e-2 for adam/adamw",
            "Adam divides each gradient by a running estimate of its magnitude, so every parameter moves by about "
            "lr each step whatever the gradient's size. lr = 0.1 moves every weight by 0.1 per step, which is "
            "large for weights of typical size 0.1-1; training tends to oscillate or diverge. The torch default "
            "of 1e-3 is a good start."),
    Concept("MSE_CLASSIFICATION", "mean squared error for classification",
            "mse on probabilities learns slowly where the sigmoid/softmax saturates: a confidently wrong "
            "output gets almost no gradient",
            "use train.loss: auto (cross_entropy, or bce for two classes) unless you mean to study the mse pairing",
            "With mse on a sigmoid output the output layer's error signal is 2 (p - y) p (1 - p) / n: when the "
            "unit saturates (p near 0 or 1) the factor p (1 - p) is near zero, so an output that is confidently "
            "WRONG barely moves. Cross-entropy's error signal is (p - y) / n: the link's derivative cancels, and "
            "the worse the mistake the larger the step. It is also the negative log-likelihood of the labels, so "
            "its probabilities are calibrated. mse here is the classic lecture pairing (hand-worked backprop "
            "examples use it); it trains, just usually more slowly."),
    Concept("ZEROS_INIT", "zeros initialisation",
            "with all weights zero, every unit of a layer learns the same thing (symmetry is never broken)",
            "use init: auto, he_normal or xavier_uniform",
            "See SYMMETRY: zero weights make all units of a layer identical, and identical units stay identical "
            "under gradient descent."),
]}


def config_findings(spec) -> list[dict]:
    """Findings knowable from the config alone (before training)."""
    from nnctl.nn.optimizers import OPTIMIZERS

    out = []
    for i, layer in enumerate(spec.model.layers, start=1):
        act = layer.activation
        if act.bounds is not None and layer.init.startswith("he_"):
            out.append(finding("HE_INIT_SATURATING", None, i, f"layer {i}: {layer.init} with {act.registry_name}"))
        if layer.init == "zeros":
            out.append(finding("ZEROS_INIT", None, i, f"layer {i}: init zeros"))
    t, o = spec.train, spec.optimizer
    norm = spec.model.batch_stats_norm
    if norm is not None and t.gd == "minibatch" and t.batch_size < 8:
        out.append(finding("BATCHNORM_SMALL_BATCH", None, None, f"{norm} norm with batch_size {t.batch_size}"))
    if t.loss == "mse" and spec.data.task == "classification":
        out.append(finding("MSE_CLASSIFICATION", None, None, "train.loss mse on a classification task: squared "
                           "error of the probabilities against the 0/1 (one-hot) targets"))
    high = OPTIMIZERS.entry(o.name).high_lr
    if high is not None and o.lr >= high:
        out.append(finding("ADAM_HIGH_LR", None, None, f"{o.name} with lr {o.lr:g}"))
    return out


def finding(code: str, epoch: int | None, layer: int | None, message: str, evidence: dict | None = None) -> dict:
    """One finding record (as stored in summary.json): what was seen, the numbers behind it, why it
    matters and what to try."""
    c = CATALOGUE[code]
    return {"code": code, "epoch": epoch, "layer": layer, "message": message, "evidence": evidence or {},
            "why": c.why, "try": c.try_}


# ------------------------------------------------------------------------------------ findings
# How the detectors decide (each from the mechanism it names, not tuned to example configs):
# - a signal or gradient that shrinks by half or more at every layer it crosses, and is 20x smaller
#   after crossing them all, is vanishing (sigmoid's derivative is at most 1/4: the textbook case loses
#   about 4x per layer); the same shrinkage of the activations' std, down to nearly nothing, is a
#   collapse of the forward signal, which takes the gradient down with it;
# - saturation and dead units matter when they stop learning: at the start (a consequence of the
#   init or the input scale) or while the loss is stuck, not in a net that learned and grew confident;
# - a small learning rate is the cause of a stall only when nothing else explains it and there is a
#   gradient to follow.
DECAY_PER_LAYER = 0.5  # the signal keeps at most half its size at every layer it crosses...
DECAY_TOTAL = 0.05  # ...and arrives 20x smaller, or less
COLLAPSED_STD = 0.01  # the last hidden layer's activations barely vary (tanh/relu/sigmoid ranges are O(1))
BUSY = 0.5  # at least half the units (dead) or outputs (saturated)
STALL_EPOCHS, STALL_CHANGE = 5, 0.01  # the loss fell less than 1% over the last 5 epochs
# findings that explain a stalled loss better than the learning rate does
CAUSES = ("SYMMETRY", "ZEROS_INIT", "ACTIVATION_COLLAPSE", "VANISHING_GRAD", "DEAD_RELU", "SATURATED")


def _keep_per_layer(values: list[float]) -> float | None:
    """The fraction of a per-layer series kept at each layer crossed, on average (geometric mean of
    values[i+1] / values[i]); None unless every value is finite and positive."""
    if len(values) < 2 or not all(math.isfinite(v) and v > 0 for v in values):
        return None
    return (values[-1] / values[0]) ** (1 / (len(values) - 1))


class Findings:
    """Turns probe rows and the loss curve into findings; each code is reported once per layer.

    A finding records `message` (what was seen), `evidence` (the numbers, per layer), `why` and `try`."""

    def __init__(self, model, task: str, n_classes: int, adaptive: bool = False):
        self.model = model
        self.task = task
        self.n_classes = n_classes
        self.adaptive = adaptive  # Adam & co. rescale small gradients: vanishing matters only if it stalls
        self.reported: set[tuple[str, int | None]] = set()
        self.items: list[dict] = []
        self.previous: list[dict] = []  # the probe rows of the measurement before this one
        self.initial_loss = math.nan  # the untrained network's loss on the probe batch

    def state_dict(self) -> list[dict]:
        return list(self.items)

    def load_state_dict(self, items: list[dict]) -> None:
        self.items = list(items)
        self.reported = {(f["code"], f["layer"]) for f in self.items}

    def _codes(self) -> set[str]:
        return {code for code, _ in self.reported}

    def _add(self, code, epoch, layer, detail, evidence=None) -> dict | None:
        key = (code, layer)
        if key in self.reported:
            return None
        self.reported.add(key)
        f = finding(code, epoch, layer, detail, evidence)
        self.items.append(f)
        return f

    def initial(self, initial_loss: float) -> list[dict]:
        """BAD_INIT_LOSS from the untrained model's loss on the probe batch."""
        self.initial_loss = initial_loss
        # ln C is the log loss of an undecided classifier; mse on probabilities has no such landmark
        if self.task != "classification" or self.model.loss.registry_name == "mse" or not self.model.loss.has_proba \
                or not math.isfinite(initial_loss):
            return []
        k = self.n_classes
        # the loss of a network that predicts uniform probabilities: ln C (softmax), ln 2 per unit (sigmoid)
        expected = math.log(k) if self.model.loss.link == "softmax" else math.log(2)
        if initial_loss > 2.0 * expected + 0.5:
            base = k if self.model.loss.link == "softmax" else 2
            bias = self.model.layers[-1].definition.bias_init
            shifted = f"; bias_init {bias:g} shifts every output" if bias else ""
            f = self._add("BAD_INIT_LOSS", 0, None, f"initial loss {initial_loss:.3g}, expected about "
                                                    f"{expected:.3g} (ln {base}){shifted}",
                          {"initial_loss": initial_loss, "expected": expected})
            return [f] if f else []
        return []

    def epoch(self, epoch: int, diag_rows: list[dict], metric_rows: list[dict], diverged: bool = False,
              history: list[dict] | None = None) -> list[dict]:
        """Findings after epoch `epoch` (0: the untrained network), from its probe rows, the metrics so far
        and the probe rows of every measurement (`history`, epoch 0 first)."""
        new = []

        def add(*args):
            f = self._add(*args)
            if f:
                new.append(f)

        losses = [r["train_loss"] for r in metric_rows if math.isfinite(r.get("train_loss", math.nan))]
        # stuck: still above half the starting loss, and neither falling nor rising over the last epochs
        stalled = (len(losses) > STALL_EPOCHS and losses[-1] > 0.5 * losses[0]
                   and abs(losses[-STALL_EPOCHS - 1] - losses[-1]) < STALL_CHANGE * abs(losses[-STALL_EPOCHS - 1]))
        hidden = [r for r in diag_rows if "act_mean" in r]
        early = epoch <= 1  # the untrained network and its first epoch: what init and inputs did
        symmetric = {r["layer"] for r in hidden if r.get("_symmetric")}
        for r in hidden:
            if r["layer"] in symmetric and epoch >= 1:
                add("SYMMETRY", epoch, r["layer"], f"layer {r['layer']}: all {r['units']} units identical",
                    {"units": r["units"]})
        if len(hidden) >= 2 and not symmetric and "SYMMETRY" not in self._codes():
            std = [r.get("_unit_std", r["act_std"]) for r in hidden]
            keep = _keep_per_layer([max(v, 1e-30) for v in std]) if std[0] > 0 else None
            gains = [r.get("_gain", math.nan) for r in hidden]
            known = [g for g in gains if math.isfinite(g)]  # a layer whose input no longer varies has none
            weights_shrink = bool(known) and max(math.prod(known), 1e-300) ** (1 / len(known)) <= 0.5
            if keep is not None and keep <= DECAY_PER_LAYER and std[-1] < COLLAPSED_STD and weights_shrink:
                d = self.model.layers[0].definition
                cause = (f"; init {d.init} with std {d.init_std:g} is too small for this depth"
                         if d.init == "normal" else "; the weights are too small for this depth")
                add("ACTIVATION_COLLAPSE", epoch, hidden[-1]["layer"],
                    "activation std over examples by layer " + " -> ".join(f"{v:.2g}" for v in std) + cause,
                    {"act_std": std, "weight_gain": gains})
        # a collapsed signal also makes relu units look dead (their input barely varies) and takes the
        # gradient down: the collapse is the finding, not its consequences
        collapsed = "ACTIVATION_COLLAPSE" in self._codes()
        for r in hidden:
            layer = r["layer"]
            dead = r.get("dead_frac")  # measured only where a unit can die (zero gradient below 0)
            before = next((p.get("dead_frac") for p in self.previous if p["layer"] == layer), None)
            if (dead is not None and dead >= BUSY and before is not None and before >= BUSY and (early or stalled)
                    and layer not in symmetric and not collapsed):
                add("DEAD_RELU", epoch, layer, f"layer {layer}: {dead:.0%} of {r['units']} units dead "
                                               f"({before:.0%} one epoch earlier)",
                    {"dead_frac": dead, "dead_frac_before": before})
            sat = r.get("saturated_frac")
            if sat is not None and sat >= BUSY and (early or stalled) and not collapsed:
                when = "before training" if epoch == 0 else f"after epoch {epoch}"
                add("SATURATED", epoch, layer, f"layer {layer}: {sat:.0%} of outputs saturated {when}"
                                               + ("" if early else " while the loss is stuck"),
                    {"saturated_frac": sat})
        if diverged:
            add("LR_TOO_LARGE", epoch, None, "the loss became infinite or NaN", None)
        elif len(losses) >= 1 and epoch == 1 and math.isfinite(self.initial_loss) and \
                losses[0] > 1.5 * self.initial_loss + 0.1:
            add("LR_TOO_LARGE", epoch, None, f"the first epoch's loss {losses[0]:.3g} is above the untrained "
                                             f"network's {self.initial_loss:.3g}: the steps overshoot",
                {"train_loss": losses[:1], "initial_loss": self.initial_loss})
        elif len(losses) >= 5:
            best = min(losses[:-3])
            # a rise that lasts (not a spike an adaptive optimizer recovers from): 1.5x the best so far for
            # three epochs, by at least a tenth of the starting loss
            if min(losses[-3:]) > 1.5 * best and min(losses[-3:]) - best > 0.1 * abs(losses[0]):
                add("LR_TOO_LARGE", epoch, None, f"train loss rose to {losses[-1]:.3g} from a best of {best:.3g} "
                                                 f"and stayed up for 3 epochs", {"train_loss": losses[-5:]})
        explained = {"SYMMETRY", "ACTIVATION_COLLAPSE", "SATURATED", "DEAD_RELU", "LR_TOO_LARGE"}
        if len(diag_rows) >= 3 and not symmetric and not self._codes() & explained:
            rms = [r["grad_rms"] for r in diag_rows]
            keep = _keep_per_layer(rms[::-1])  # from the output layer down to the first
            # the untrained network already loses its gradient on the way down: a property of the
            # architecture and init, not the near-zero gradients of a model that has converged
            start = [r["grad_rms"] for r in (history or diag_rows) if r["epoch"] == 0] or rms
            keep0 = _keep_per_layer(start[::-1]) if len(start) == len(rms) else keep
            if (keep is not None and keep <= DECAY_PER_LAYER and rms[0] / rms[-1] <= DECAY_TOTAL
                    and keep0 is not None and keep0 <= DECAY_PER_LAYER and (stalled or not self.adaptive)):
                add("VANISHING_GRAD", epoch, None, "gradient RMS by layer " + " -> ".join(f"{v:.2g}" for v in rms)
                    + f": layer 1 gets {rms[0] / rms[-1]:.1e} of the output layer's, {keep:.2f}x per layer",
                    {"grad_rms": rms})
            if keep is not None and rms[0] / rms[-1] >= 1e3:  # the first layer's gradient 1000x the last one's
                add("EXPLODING_GRAD", epoch, None, "gradient RMS by layer " + " -> ".join(f"{v:.2g}" for v in rms),
                    {"grad_rms": rms})
        updates = [r["update_ratio"] for r in diag_rows if math.isfinite(r.get("update_ratio", math.nan))]
        grads = [r["grad_rms"] for r in diag_rows]
        if (len(losses) == 10 and updates and grads and max(grads) > 1e-8 and not self._codes() & set(CAUSES)):
            change = (losses[0] - losses[-1]) / max(abs(losses[0]), 1e-12)
            if change < 0.01 and max(updates) < 1e-3:
                add("LR_TOO_SMALL", epoch, None, f"loss fell {change:.2%} in 10 epochs; update/weight ratios "
                                                 f"about {np.median(updates):.0e}",
                    {"loss_change": change, "update_ratio": updates})
        if diag_rows:
            self.previous = diag_rows
        return new


def diag_table_rows(rows: list[dict]) -> list[dict]:
    """Rows for diagnostics.csv (private keys dropped)."""
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
