"""What `nnctl explain` knows: course concepts and finding codes, in English and Vietnamese.

Data only, no NumPy: this index names every topic, its aliases, the nnctl command that shows it and
related topics. The words live in one module per language and half of the course (en_model,
en_training, vi_model, vi_training: title, what, formula, when, pitfall, config) and, for finding
codes, in findings.py (Vietnamese for every code; English for a code the diagnostics catalogue
lacks). The English text of a finding code comes from nnctl.diagnostics.CATALOGUE, which only
`finding` imports, so explaining a concept never loads NumPy.
"""

from __future__ import annotations

import difflib
import importlib
import re

from nnctl.errors import NnctlError

LANGS = ("en", "vi")
PARTS = ("what", "formula", "when", "pitfall", "config")  # every concept, in every language
FINDING_PARTS = ("title", "why", "try", "explain")  # every finding code, in every language

# (group, its title per language, its topics in reading order)
GROUPS: tuple[tuple[str, dict[str, str], tuple[str, ...]], ...] = (
    ("neurons", {"en": "Neurons and activations", "vi": "Nơ-ron và hàm kích hoạt"},
     ("perceptron", "activation", "sigmoid", "tanh", "relu", "leaky_relu", "softmax")),
    ("networks", {"en": "Why networks work", "vi": "Vì sao mạng nơ-ron làm được việc"},
     ("universal_approximation", "depth")),
    ("backprop", {"en": "Forward and backward", "vi": "Lan truyền xuôi và lan truyền ngược"},
     ("l_layer", "backprop", "vanishing_gradients")),
    ("losses", {"en": "Loss functions", "vi": "Hàm mất mát"}, ("mse", "cross_entropy")),
    ("data", {"en": "Preparing the inputs", "vi": "Chuẩn bị dữ liệu đầu vào"}, ("preprocessing", "pca", "whitening")),
    ("init", {"en": "Initialisation", "vi": "Khởi tạo trọng số"}, ("init", "xavier", "he")),
    ("norm", {"en": "Normalisation layers", "vi": "Các tầng chuẩn hoá"},
     ("batch_norm", "layer_norm", "group_norm", "instance_norm")),
    ("descent", {"en": "Gradient descent", "vi": "Hạ gradient"},
     ("gradient_descent", "batch", "minibatch", "sgd", "learning_rate", "momentum", "adam")),
    ("generalise", {"en": "Generalisation", "vi": "Khả năng tổng quát hoá"},
     ("overfitting", "early_stopping", "dropout")),
)
TOPICS: tuple[str, ...] = tuple(t for _, _, topics in GROUPS for t in topics)

# finding codes (DESIGN §1), as `nnctl explain` groups them
CODE_GROUPS: tuple[tuple[str, dict[str, str], tuple[str, ...]], ...] = (
    ("findings", {"en": "Findings while training", "vi": "Phát hiện trong lúc huấn luyện"},
     ("DEAD_RELU", "SATURATED", "VANISHING_GRAD", "EXPLODING_GRAD", "ACTIVATION_COLLAPSE", "LR_TOO_SMALL",
      "LR_TOO_LARGE", "SYMMETRY", "BAD_INIT_LOSS")),
    ("warnings", {"en": "Config warnings", "vi": "Cảnh báo từ cấu hình"},
     ("HE_INIT_SATURATING", "ZEROS_INIT", "BATCHNORM_SMALL_BATCH", "ADAM_HIGH_LR", "MSE_CLASSIFICATION")),
)
CODES: tuple[str, ...] = tuple(c for _, _, codes in CODE_GROUPS for c in codes)

# other names a student may type -> a topic or a finding code (after `normalise`)
ALIASES: dict[str, str] = {
    "rosenblatt": "perceptron", "neuron": "perceptron",
    "activations": "activation", "activation_function": "activation", "nonlinearity": "activation",
    "logistic": "sigmoid", "rectifier": "relu", "leakyrelu": "leaky_relu", "lrelu": "leaky_relu",
    "universal_approximation_theorem": "universal_approximation", "uat": "universal_approximation",
    "deep": "depth", "why_deep": "depth", "deep_network": "depth", "depth_vs_width": "depth",
    "shapes": "l_layer", "shape": "l_layer", "caches": "l_layer", "cache": "l_layer", "llayer": "l_layer",
    "l_layer_network": "l_layer", "forward": "l_layer", "forward_propagation": "l_layer", "notation": "l_layer",
    "backpropagation": "backprop", "back_propagation": "backprop", "chain_rule": "backprop",
    "computational_graph": "backprop", "computation_graph": "backprop",
    "vanishing_gradient": "vanishing_gradients", "vanishing": "vanishing_gradients",
    "exploding_gradients": "vanishing_gradients", "exploding_gradient": "vanishing_gradients",
    "mean_squared_error": "mse", "squared_error": "mse", "l2_loss": "mse",
    "crossentropy": "cross_entropy", "ce": "cross_entropy", "bce": "cross_entropy", "log_loss": "cross_entropy",
    "logloss": "cross_entropy", "nll": "cross_entropy", "binary_cross_entropy": "cross_entropy",
    "preprocess": "preprocessing", "standardize": "preprocessing", "standardise": "preprocessing",
    "standardization": "preprocessing", "standardisation": "preprocessing", "center": "preprocessing",
    "centre": "preprocessing", "centering": "preprocessing", "scaling": "preprocessing",
    "feature_scaling": "preprocessing", "minmax": "preprocessing", "z_score": "preprocessing",
    "principal_component_analysis": "pca", "whiten": "whitening", "zca": "whitening",
    "initialization": "init", "initialisation": "init", "weight_init": "init", "zeros": "init",
    "zero_init": "init", "small_random": "init", "random_init": "init",
    "glorot": "xavier", "xavier_uniform": "xavier", "xavier_normal": "xavier", "glorot_uniform": "xavier",
    "glorot_normal": "xavier",
    "kaiming": "he", "he_normal": "he", "he_uniform": "he", "kaiming_normal": "he", "kaiming_uniform": "he",
    "msra": "he",
    "batchnorm": "batch_norm", "bn": "batch_norm", "batch_normalization": "batch_norm",
    "batch_normalisation": "batch_norm",
    "layernorm": "layer_norm", "layer_normalization": "layer_norm", "layer_normalisation": "layer_norm",
    "groupnorm": "group_norm", "group_normalization": "group_norm", "group_normalisation": "group_norm",
    "instancenorm": "instance_norm", "instance_normalization": "instance_norm",
    "instance_normalisation": "instance_norm",
    "gd": "gradient_descent", "descent": "gradient_descent",
    "full_batch": "batch", "fullbatch": "batch", "batch_gd": "batch", "batch_gradient_descent": "batch",
    "mini_batch": "minibatch", "minibatch_gd": "minibatch", "batch_size": "minibatch",
    "stochastic": "sgd", "stochastic_gradient_descent": "sgd",
    "lr": "learning_rate", "step_size": "learning_rate", "schedule": "learning_rate",
    "lr_schedule": "learning_rate",
    "nesterov": "momentum", "heavy_ball": "momentum", "adamw": "adam",
    "overfit": "overfitting", "underfitting": "overfitting", "generalization": "overfitting",
    "generalisation": "overfitting", "regularization": "overfitting", "regularisation": "overfitting",
    "weight_decay": "overfitting", "l2": "overfitting",
    "earlystopping": "early_stopping", "patience": "early_stopping",
}

# The nnctl commands that show a concept. The first one names a config file under configs/; `snippet`
# is the part of that config (after the command's --set overrides) the concept is about.
SHOW: dict[str, dict] = {
    "perceptron": {"snippet": "model:\n  hidden: []\n",
                   "run": ["nnctl train configs/xor.yaml --set 'model.hidden=[]'", "nnctl train configs/xor.yaml"]},
    "activation": {"snippet": "model:\n  activation: linear\n",
                   "run": ["nnctl train configs/moons.yaml --set model.activation=linear", "nnctl plot RUN_DIR"]},
    "sigmoid": {"snippet": "model:\n  activation: sigmoid\n",
                "run": ["nnctl train configs/moons.yaml --set model.activation=sigmoid", "nnctl inspect RUN_DIR"]},
    "tanh": {"snippet": "model:\n  hidden: [8]\n  activation: tanh\n", "run": ["nnctl train configs/circles.yaml"]},
    "relu": {"snippet": "model:\n  activation: relu\n  bias_init: -3.0\n",
             "run": ["nnctl train configs/moons.yaml --set model.bias_init=-3", "nnctl inspect RUN_DIR"]},
    "leaky_relu": {"snippet": "model:\n  activation: leaky_relu\n  activation_options: {alpha: 0.01}\n"
                              "  bias_init: -3.0\n",
                   "run": ["nnctl train configs/moons.yaml --set model.activation=leaky_relu --set model.bias_init=-3",
                           "nnctl train configs/moons.yaml --set model.bias_init=-3"]},
    "softmax": {"snippet": "data:\n  target: species\ntrain:\n  loss: auto\n",
                "run": ["nnctl train configs/iris_csv.yaml", "nnctl predict RUN_DIR datasets/iris.csv --proba"]},
    "universal_approximation": {"snippet": "model:\n  hidden: [2]\n  activation: tanh\n",
                                "run": ["nnctl train configs/sine.yaml --set 'model.hidden=[2]'",
                                        "nnctl train configs/sine.yaml", "nnctl plot RUN_DIR"]},
    "depth": {"snippet": "model:\n  hidden: [8, 8, 8]\n  norm: none\n  norm_options: {}\n",
              "run": ["nnctl train configs/spiral.yaml --set model.norm=none --set 'model.norm_options={}' "
                      "--set 'model.hidden=[8,8,8]'",
                      "nnctl train configs/spiral.yaml --set model.norm=none --set 'model.norm_options={}' "
                      "--set 'model.hidden=[24]'"]},
    "l_layer": {"snippet": "model:\n  hidden: [16, 16]\n", "run": ["nnctl gradcheck configs/moons.yaml"]},
    "backprop": {"snippet": "model:\n  hidden: [16, 16]\n  activation: relu\n",
                 "run": ["nnctl gradcheck configs/moons.yaml", "nnctl gradcheck configs/classification.yaml"]},
    "vanishing_gradients": {"snippet": "model:\n  hidden: [32, 32, 32, 32, 32]\n  activation: sigmoid\n"
                                       "optimizer:\n  name: sgd\n  lr: 0.1\n",
                            "run": ["nnctl train configs/moons.yaml --set 'model.hidden=[32,32,32,32,32]' "
                                    "--set model.activation=sigmoid --set optimizer.name=sgd --set optimizer.lr=0.1",
                                    "nnctl inspect RUN_DIR"]},
    "mse": {"snippet": "train:\n  loss: mse\n",
            "run": ["nnctl train configs/diabetes.yaml", "nnctl train configs/diabetes.yaml --set train.loss=huber"]},
    "cross_entropy": {"snippet": "train:\n  loss: cross_entropy\n",
                      "run": ["nnctl train configs/iris.yaml --set train.loss=cross_entropy"]},
    "preprocessing": {"snippet": "data:\n  preprocess: none\n",
                      "run": ["nnctl train configs/wine.yaml --set data.preprocess=none",
                              "nnctl train configs/wine.yaml"]},
    "pca": {"snippet": "data:\n  preprocess: pca\n  pca_components: 0.9\n",
            "run": ["nnctl train configs/digits.yaml --set data.preprocess=pca --set data.pca_components=0.9"]},
    "whitening": {"snippet": "data:\n  preprocess: whiten\n  pca_components: 0.9\n",
                  "run": ["nnctl train configs/digits.yaml --set data.preprocess=whiten "
                          "--set data.pca_components=0.9"]},
    "init": {"snippet": "model:\n  hidden: [64, 64, 64, 64, 64]\n  init: normal\n  init_std: 0.01\n"
                        "optimizer:\n  name: sgd\n  lr: 0.1\n",
             "run": ["nnctl train configs/moons.yaml --set 'model.hidden=[64,64,64,64,64]' --set model.init=normal "
                     "--set model.init_std=0.01 --set optimizer.name=sgd --set optimizer.lr=0.1",
                     "nnctl inspect RUN_DIR", "nnctl train configs/moons.yaml --set model.init=zeros"]},
    "xavier": {"snippet": "model:\n  activation: tanh\n  init: xavier_uniform\n",
               "run": ["nnctl train configs/circles.yaml --set model.init=xavier_uniform"]},
    "he": {"snippet": "model:\n  activation: relu\n  init: he_normal\n",
           "run": ["nnctl train configs/moons.yaml --set model.init=he_normal",
                   "nnctl train configs/circles.yaml --set model.init=he_normal"]},
    "batch_norm": {"snippet": "model:\n  norm: batch\ntrain:\n  batch_size: 64\n",
                   "run": ["nnctl train configs/classification.yaml",
                           "nnctl train configs/classification.yaml --set train.batch_size=4"]},
    "layer_norm": {"snippet": "model:\n  norm: layer\n", "run": ["nnctl train configs/digits.yaml"]},
    "group_norm": {"snippet": "model:\n  norm: group\n  norm_options: {groups: 8}\n",
                   "run": ["nnctl train configs/spiral.yaml"]},
    "instance_norm": {"snippet": "model:\n  hidden: [8]\n  norm: layer\n  norm_options: {}\n",
                      "run": ["nnctl train configs/spiral.yaml --set 'model.hidden=[8]' --set model.norm=layer "
                              "--set 'model.norm_options={}'"]},
    "gradient_descent": {"snippet": "model:\n  hidden: []\noptimizer:\n  name: sgd\n  lr: 0.2\ntrain:\n  gd: batch\n",
                         "run": ["nnctl train configs/regression.yaml"]},
    "batch": {"snippet": "optimizer:\n  name: sgd\n  lr: 0.5\ntrain:\n  gd: batch\n",
              "run": ["nnctl train configs/moons.yaml --set train.gd=batch --set optimizer.name=sgd "
                      "--set optimizer.lr=0.5 --set train.epochs=200"]},
    "minibatch": {"snippet": "train:\n  gd: minibatch\n  batch_size: 32\n",
                  "run": ["nnctl train configs/moons.yaml",
                          "nnctl sweep configs/moons.yaml --grid train.batch_size=8,32,128"]},
    "sgd": {"snippet": "optimizer:\n  name: sgd\n  lr: 0.01\ntrain:\n  gd: stochastic\n",
            "run": ["nnctl train configs/moons.yaml --set train.gd=stochastic --set optimizer.name=sgd "
                    "--set optimizer.lr=0.01 --set train.epochs=20"]},
    "learning_rate": {"snippet": "optimizer:\n  name: sgd\n  lr: 1.0e-05\n",
                      "run": ["nnctl train configs/moons.yaml --set optimizer.name=sgd --set optimizer.lr=1e-5",
                              "nnctl lr-find configs/moons.yaml",
                              "nnctl train configs/moons.yaml --set optimizer.lr=0.5"]},
    "momentum": {"snippet": "optimizer:\n  name: momentum\n  lr: 0.05\n  options: {momentum: 0.9}\n",
                 "run": ["nnctl train configs/blobs.yaml",
                         "nnctl train configs/blobs.yaml --set optimizer.name=sgd"]},
    "adam": {"snippet": "optimizer:\n  name: adam\n  lr: 0.01\n  options: {betas: [0.9, 0.999]}\n",
             "run": ["nnctl train configs/moons.yaml", "nnctl train configs/moons.yaml --set optimizer.lr=0.5"]},
    "overfitting": {"snippet": "data:\n  options: {n_samples: 100, noise: 0.3}\nmodel:\n  hidden: [256, 256]\n",
                    "run": ["nnctl train configs/moons.yaml --set 'data.options={n_samples: 100, noise: 0.3}' "
                            "--set 'model.hidden=[256,256]' --set train.epochs=300",
                            "nnctl plot RUN_DIR"]},
    "early_stopping": {"snippet": "train:\n  early_stopping: {monitor: val_loss, patience: 20}\n",
                       "run": ["nnctl train configs/breast_cancer.yaml",
                               "nnctl train configs/moons.yaml --set 'data.options={n_samples: 100, noise: 0.3}' "
                               "--set 'model.hidden=[256,256]' --set train.epochs=300 "
                               "--set 'train.early_stopping={patience: 20}'"]},
    "dropout": {"snippet": "model:\n  dropout: 0.2\n",
                "run": ["nnctl train configs/breast_cancer.yaml",
                        "nnctl train configs/breast_cancer.yaml --set model.dropout=0"]},
}

# related topics and codes, shown as "See also"
SEE_ALSO: dict[str, tuple[str, ...]] = {
    "perceptron": ("activation", "universal_approximation", "cross_entropy"),
    "activation": ("sigmoid", "tanh", "relu", "universal_approximation"),
    "sigmoid": ("tanh", "cross_entropy", "xavier", "SATURATED"),
    "tanh": ("sigmoid", "xavier", "SATURATED", "HE_INIT_SATURATING"),
    "relu": ("leaky_relu", "he", "DEAD_RELU"),
    "leaky_relu": ("relu", "he", "DEAD_RELU"),
    "softmax": ("cross_entropy", "sigmoid"),
    "universal_approximation": ("depth", "activation"),
    "depth": ("universal_approximation", "vanishing_gradients", "batch_norm"),
    "l_layer": ("backprop", "init"),
    "backprop": ("l_layer", "vanishing_gradients", "gradient_descent"),
    "vanishing_gradients": ("VANISHING_GRAD", "EXPLODING_GRAD", "ACTIVATION_COLLAPSE", "he", "batch_norm"),
    "mse": ("cross_entropy", "preprocessing"),
    "cross_entropy": ("softmax", "sigmoid", "BAD_INIT_LOSS"),
    "preprocessing": ("pca", "whitening", "batch_norm"),
    "pca": ("whitening", "preprocessing"),
    "whitening": ("pca", "preprocessing"),
    "init": ("xavier", "he", "SYMMETRY", "ZEROS_INIT", "ACTIVATION_COLLAPSE"),
    "xavier": ("he", "init", "tanh"),
    "he": ("xavier", "init", "relu", "HE_INIT_SATURATING"),
    "batch_norm": ("layer_norm", "group_norm", "BATCHNORM_SMALL_BATCH"),
    "layer_norm": ("batch_norm", "group_norm", "instance_norm"),
    "group_norm": ("layer_norm", "instance_norm"),
    "instance_norm": ("group_norm", "layer_norm"),
    "gradient_descent": ("learning_rate", "batch", "minibatch", "sgd"),
    "batch": ("minibatch", "sgd"),
    "minibatch": ("batch", "sgd", "batch_norm"),
    "sgd": ("minibatch", "learning_rate", "momentum"),
    "learning_rate": ("LR_TOO_SMALL", "LR_TOO_LARGE", "adam"),
    "momentum": ("sgd", "adam"),
    "adam": ("momentum", "learning_rate", "ADAM_HIGH_LR"),
    "overfitting": ("early_stopping", "dropout"),
    "early_stopping": ("overfitting",),
    "dropout": ("overfitting", "batch_norm"),
    "DEAD_RELU": ("relu", "leaky_relu", "he"),
    "SATURATED": ("sigmoid", "tanh", "preprocessing", "xavier"),
    "VANISHING_GRAD": ("vanishing_gradients", "he", "batch_norm"),
    "EXPLODING_GRAD": ("vanishing_gradients", "learning_rate"),
    "ACTIVATION_COLLAPSE": ("init", "xavier", "he", "vanishing_gradients"),
    "LR_TOO_SMALL": ("learning_rate",),
    "LR_TOO_LARGE": ("learning_rate", "adam"),
    "SYMMETRY": ("init",),
    "BAD_INIT_LOSS": ("cross_entropy", "init", "preprocessing"),
    "HE_INIT_SATURATING": ("he", "xavier", "tanh"),
    "ZEROS_INIT": ("init", "SYMMETRY"),
    "BATCHNORM_SMALL_BATCH": ("batch_norm", "layer_norm"),
    "ADAM_HIGH_LR": ("adam", "learning_rate"),
    "MSE_CLASSIFICATION": ("mse", "cross_entropy"),
}


def normalise(name: str) -> str:
    """A typed name in the form topics and aliases are kept: lower case, words joined by '_'."""
    return re.sub(r"[\s\-./]+", "_", name.strip().lower()).strip("_")


def resolve(name: str) -> tuple[str, str]:
    """("concept", topic) or ("code", CODE) for a topic, an alias or a finding code, in any case and with
    '-' or spaces for '_'. NnctlError (exit 2) with the closest names if it is none of them."""
    key = normalise(name)
    if key in TOPICS:
        return "concept", key
    if key in ALIASES:
        target = ALIASES[key]
        return ("code", target) if target.isupper() else ("concept", target)
    codes = all_codes()
    if key.upper() in codes:
        return "code", key.upper()
    names = [*TOPICS, *ALIASES, *(c.lower() for c in codes)]
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
    shown = []
    for c in close:
        target = ALIASES.get(c, c)
        label = target.upper() if target.upper() in codes else target
        if label not in shown:
            shown.append(label)
    hint = f" (did you mean {' or '.join(repr(s) for s in shown)}?)" if shown else ""
    raise NnctlError(f"unknown topic {name!r}{hint}; `nnctl explain` lists every concept and finding code")


def all_codes() -> tuple[str, ...]:
    """The finding codes of DESIGN §1, then any the diagnostics catalogue adds."""
    from nnctl.diagnostics import CATALOGUE

    return CODES + tuple(c for c in CATALOGUE if c not in CODES)


def concept(topic: str, lang: str) -> dict[str, str]:
    """A concept's title and PARTS in `lang`."""
    texts = {}
    for half in ("model", "training"):
        texts.update(importlib.import_module(f"nnctl.concepts.{lang}_{half}").TOPICS)
    return texts[topic]


def titles(lang: str) -> dict[str, str]:
    """Every concept's title in `lang`."""
    out = {}
    for half in ("model", "training"):
        out.update({t: d["title"] for t, d in importlib.import_module(f"nnctl.concepts.{lang}_{half}").TOPICS.items()})
    return out


def finding(code: str, lang: str) -> dict[str, str]:
    """A finding code's title, why, try and explain in `lang`: English from the diagnostics catalogue
    (or findings.EN for a code it lacks); Vietnamese from findings.VI (English if a code has none)."""
    from nnctl.concepts import findings
    from nnctl.diagnostics import CATALOGUE

    c = CATALOGUE.get(code)
    english = {"title": c.title, "why": c.why, "try": c.try_, "explain": c.explain} if c else findings.EN[code]
    return findings.VI.get(code, english) if lang == "vi" else english
