"""Rosenblatt's perceptron (train.loss: perceptron): the classic lesson. On linearly separable data it
stops making mistakes after finitely many updates and its weights stop changing; on XOR no line
separates the classes, so every epoch still has mistakes."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.build import prepare
from nnctl.config.load import load_spec
from nnctl.errors import ConfigError
from nnctl.training.loop import Trainer

RULE = {"model": {"hidden": []}, "optimizer": {"name": "sgd", "lr": 1.0},
        "train": {"loss": "perceptron", "gd": "stochastic", "epochs": 25, "diagnostics": False}}


def _train(source: dict):
    spec = load_spec(data={"data": source, **RULE})
    trainer = Trainer(prepare(spec))
    weights = [trainer.model.params.theta.copy()]  # [0]: before training; [e]: after epoch e
    trainer.on_epoch = lambda row: weights.append(trainer.model.params.theta.copy())
    result = trainer.fit()
    return result, weights, len(trainer.prepared.X["train"])


def test_perceptron_converges_on_linearly_separable_blobs():
    result, weights, n = _train({"source": "sklearn:blobs",
                                 "options": {"n_samples": 300, "centers": 2, "cluster_std": 1.5, "random_state": 7}})
    acc = [r["train_accuracy"] for r in result.rows]
    mistakes = [round((1 - a) * n) for a in acc]
    first = acc.index(1.0) + 1  # the first epoch without a mistake: no update in it
    assert first >= 2, "too easy: the first epoch already made no mistake"
    assert all(a == 1.0 for a in acc[first - 1:]), mistakes
    assert all(np.array_equal(w, weights[first - 1]) for w in weights[first:]), "weights changed after convergence"
    assert not np.array_equal(weights[0], weights[first - 1])
    print("mistakes per epoch", mistakes)
    assert result.rows[-1]["train_loss"] == 0.0


def test_perceptron_never_separates_xor():
    result, weights, n = _train({"source": "sklearn:xor", "options": {"n_samples": 200}})
    mistakes = [round((1 - r["train_accuracy"]) * n) for r in result.rows]
    assert len(mistakes) == 25 and min(mistakes) > n // 10, mistakes  # mistakes in every epoch
    assert not np.array_equal(weights[-2], weights[-1])  # so it keeps updating
    print("mistakes per epoch", mistakes, "of", n)


@pytest.mark.parametrize("override,key", [({"model": {"hidden": [4]}}, "model.hidden"),
                                          ({"data": {"source": "sklearn:iris"}}, "train.loss"),
                                          ({"train": {**RULE["train"], "class_weight": "balanced"}},
                                           "train.class_weight")])
def test_perceptron_pairings_refused(override, key):
    data = {"data": {"source": "sklearn:moons"}, **RULE, **override}
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        prepare(load_spec(data=data))
