"""`nnctl explain` in English, first half of the course: neurons, activations, why networks work,
forward and backward passes, losses. Formulas are plain ASCII in the notation of DESIGN §4 (rows are
samples, W of shape (fan_in, fan_out)); each "config" note refers to the commands in concepts.SHOW."""

TOPICS: dict[str, dict[str, str]] = {
    "perceptron": {
        "title": "the perceptron: one neuron with a step output",
        "what": "Rosenblatt's perceptron (1958) is a single artificial neuron: it weighs its inputs, adds a bias "
                "and outputs 1 if the sum is at least 0, else 0. Geometrically it splits the input space with one "
                "straight line (a hyperplane in more dimensions). It learns by nudging the weights toward every "
                "example it gets wrong.",
        "formula": "z = x . w + b\ny_hat = 1 if z >= 0 else 0\nlearning rule, one example at a time:\n"
                   "  w <- w + lr * (y - y_hat) * x,   b <- b + lr * (y - y_hat)",
        "when": "As the first model of a course, and whenever the classes are linearly separable: then the "
                "learning rule is guaranteed to find a separating line in a finite number of mistakes.",
        "pitfall": "One neuron can only draw one straight boundary, so it cannot learn XOR or any problem whose "
                   "classes are not linearly separable; on such data the rule never settles. The step has zero "
                   "derivative almost everywhere, so gradient descent cannot train stacks of perceptrons: that is "
                   "why networks use smooth activations such as sigmoid.",
        "config": "hidden: [] leaves only the output layer. With one sigmoid unit and cross-entropy this is "
                  "logistic regression, the perceptron with its step smoothed into a sigmoid. On XOR it stays near "
                  "chance (about 0.55 validation accuracy); the shipped config with one hidden layer of 8 tanh "
                  "units gets about 0.96.",
    },
    "activation": {
        "title": "activation functions: why a network needs a non-linearity",
        "what": "An activation function g is applied to every unit's weighted sum: A = g(Z). Without it, a stack "
                "of layers is one linear map, however deep, because a product of matrices is a matrix. The "
                "non-linearity is what lets a network bend its decision boundary.",
        "formula": "without g:  (X @ W1 + b1) @ W2 + b2 = X @ (W1 @ W2) + (b1 @ W2 + b2)\n"
                   "          = one layer with W = W1 @ W2\nwith g:     A1 = g(X @ W1 + b1),  A2 = A1 @ W2 + b2",
        "when": "Every hidden layer needs one. ReLU and its relatives are the default for hidden layers; tanh "
                "suits small networks and smooth functions; sigmoid and softmax belong on the output layer of a "
                "classifier (nnctl chooses the output activation itself).",
        "pitfall": "activation: linear in the hidden layers silently turns the whole network into a linear "
                   "model. Bounded activations (sigmoid, tanh) saturate when their inputs are large; unbounded "
                   "ones (ReLU) can die. The activation also decides the right initialisation.",
        "config": "With linear activations the moons network draws a straight boundary and stops near 0.87 "
                  "validation accuracy; with relu (the config as shipped) it bends around the moons and gets "
                  "about 0.96. nnctl plot draws both boundaries.",
    },
    "sigmoid": {
        "title": "the sigmoid (logistic) function",
        "what": "The sigmoid squashes any real number into (0, 1), so its output reads as a probability. It is "
                "smooth and its derivative is cheap to compute from its output. It was the classic hidden-layer "
                "activation; today it is mainly the output of a binary classifier.",
        "formula": "sigmoid(z) = 1 / (1 + e^-z)\nsigmoid'(z) = sigmoid(z) * (1 - sigmoid(z)) <= 0.25\n"
                   "sigmoid(0) = 0.5,  sigmoid(-z) = 1 - sigmoid(z)",
        "when": "The output unit of a binary classifier, with binary cross-entropy (nnctl's automatic choice "
                "for two classes: one output unit giving the probability of the second class). Also gates "
                "that must lie between 0 and 1.",
        "pitfall": "For |z| above about 5 the curve is flat and the derivative nearly 0: the unit saturates "
                   "and passes back almost no gradient. Even at best the derivative is 0.25, so every sigmoid "
                   "layer shrinks the gradient at least fourfold, and deep sigmoid networks suffer vanishing "
                   "gradients. Its outputs are all positive (not centred on 0), which also slows learning.",
        "config": "init: auto gives sigmoid layers Xavier initialisation. On moons two sigmoid layers still "
                  "learn (about 0.96); nnctl inspect shows each layer's saturated fraction, the share of "
                  "outputs within 0.03 of 0 or 1.",
    },
    "tanh": {
        "title": "the hyperbolic tangent",
        "what": "tanh squashes its input into (-1, 1). It is a rescaled sigmoid, but centred on 0, so the next "
                "layer receives inputs of both signs and its gradient is four times steeper at the origin.",
        "formula": "tanh(z) = (e^z - e^-z) / (e^z + e^-z) = 2 * sigmoid(2z) - 1\ntanh'(z) = 1 - tanh(z)^2   "
                   "(1 at z = 0)",
        "when": "Small networks, smooth regression targets (a sine curve), and problems where a bounded, "
                "zero-centred hidden representation helps. Pair it with Xavier initialisation.",
        "pitfall": "Like sigmoid it saturates: for |z| above about 3 the derivative is nearly 0. Unscaled "
                   "inputs or He initialisation (meant for ReLU) push units into saturation right at the start.",
        "config": "circles uses one hidden layer of 8 tanh units; init: auto picks xavier_uniform for it. Add "
                  "--set model.init=he_normal and nnctl warns HE_INIT_SATURATING before training.",
    },
    "relu": {
        "title": "the rectified linear unit (ReLU)",
        "what": "ReLU passes positive inputs unchanged and turns negative ones into 0. It is the default "
                "activation of modern networks: cheap, not saturating for positive inputs, and it makes many "
                "units exactly 0 (a sparse representation). A ReLU network computes a piecewise-linear function.",
        "formula": "relu(z) = max(0, z)\nrelu'(z) = 1 if z > 0 else 0",
        "when": "Hidden layers of almost any MLP, with He initialisation (nnctl's init: auto does that for the "
                "whole ReLU family).",
        "pitfall": "A unit whose input is negative for every example outputs 0 and gets zero gradient, so it "
                   "can never recover: a dead ReLU. Too large a learning rate or very negative biases kill "
                   "units; leaky_relu or elu keep a small gradient for z < 0.",
        "config": "bias_init: -3 starts every unit with a negative input: nnctl reports DEAD_RELU while "
                  "training and the network stays at chance. nnctl inspect shows the dead fraction per layer.",
    },
    "leaky_relu": {
        "title": "leaky ReLU",
        "what": "Leaky ReLU is ReLU with a small slope alpha for negative inputs instead of a flat zero. The unit "
                "always passes some gradient back, so it cannot die.",
        "formula": "leaky_relu(z) = z if z > 0 else alpha * z     (alpha = 0.01 by default)\n"
                   "leaky_relu'(z) = 1 if z > 0 else alpha",
        "when": "When ReLU units die (the DEAD_RELU finding), or as a drop-in replacement for ReLU. init: auto "
                "uses He initialisation for it too.",
        "pitfall": "With alpha = 0.01 the negative side learns 100 times more slowly: a unit pushed far negative "
                   "revives only slowly, so lowering a too-large learning rate is still the real fix. alpha is one "
                   "more hyperparameter; alpha = 1 makes the unit linear.",
        "config": "bias_init: -3 starts every unit with a negative input. relu stays at chance (0.5 validation "
                  "accuracy); leaky_relu keeps learning through its negative side and reaches about 0.88. Set the "
                  "slope with activation_options, e.g. --set 'model.activation_options={alpha: 0.1}'.",
    },
    "softmax": {
        "title": "softmax: class probabilities",
        "what": "Softmax turns a row of C scores (logits) into C positive numbers that add up to 1, one "
                "probability per class. The largest score gets the largest probability, but every class keeps "
                "some.",
        "formula": "softmax(z)_k = e^(z_k) / sum_j e^(z_j)\ncomputed as e^(z_k - max(z)) / sum_j e^(z_j - max(z)):\n"
                   "  the same value, and e^z never overflows\nwith cross-entropy:  dJ/dZ = (A - Y) / n",
        "when": "The output layer of a classifier with three or more classes, always with cross-entropy (nnctl's "
                "automatic choice: one output unit per class, in sorted label order).",
        "pitfall": "Not for hidden layers, and not for multi-label problems where several classes can be true at "
                   "once. Computed naively, e^z overflows for scores above about 700 (float64) or 88 (float32). A "
                   "confident softmax is not a calibrated one: probabilities near 1 can still be wrong.",
        "config": "iris_csv has three species, so nnctl builds a softmax output layer. predict --proba prints "
                  "one probability column per species, each row summing to 1.",
    },
    "universal_approximation": {
        "title": "the universal approximation theorem",
        "what": "A network with one hidden layer, enough units and a non-polynomial activation (sigmoid, tanh, "
                "ReLU, ...) can approximate any continuous function on a bounded region as closely as you like "
                "(Cybenko 1989, Hornik 1991, Leshno et al. 1993). Each unit contributes a bump or a bend; enough "
                "of them add up to any shape.",
        "formula": "f(x) ~ c + sum_{j=1..m} v_j * g(x . w_j + b_j)\nfor every eps > 0 there is an m with "
                   "|f(x) - network(x)| < eps on the region",
        "when": "To know that an MLP is flexible enough in principle, e.g. for a smooth regression target, and "
                "to reason about width: more units, finer approximation.",
        "pitfall": "The theorem says a good network exists; it does not say how many units it needs (possibly "
                   "astronomically many), whether gradient descent will find it, or whether it generalises "
                   "beyond the training data. It also says nothing about depth, which is often far more "
                   "efficient than width.",
        "config": "sine fits y = sin(x) with one hidden layer. With 2 tanh units the fit is coarse (validation "
                  "r2 about 0.90); with 32 it reaches the noise level (r2 about 0.97) and stops early. nnctl plot "
                  "draws the fitted curve over the data.",
    },
    "depth": {
        "title": "depth: why deep networks",
        "what": "A deep network composes simple functions: each layer re-describes the previous layer's output. "
                "Some functions need exponentially fewer units when computed in several layers than in one, "
                "because composition repeats structure: folding the input again at every layer multiplies the "
                "number of linear pieces a ReLU network can draw.",
        "formula": "f(x) = f_L(... f_2(f_1(x)))\n1-D input: one hidden layer of m ReLU units draws at most m + 1 "
                   "pieces;\nthe tent map t(x) = 2 relu(x) - 4 relu(x - 0.5) composed L times draws\n"
                   "2^L linear pieces with only 2 units per layer",
        "when": "When the target has structure that repeats or builds on itself (spirals, images, hierarchies). "
                "For small tabular problems, one to three hidden layers are usually enough.",
        "pitfall": "Deeper networks are harder to train: gradients vanish or explode through many layers, so "
                   "they need good initialisation (Xavier/He), normalisation, and often more epochs. Extra depth "
                   "on a simple problem only adds parameters to overfit.",
        "config": "On the spiral, three layers of 8 ReLU units (195 parameters) reach a validation loss of about "
                  "0.01; one layer of 24 units (147 parameters) stays near 0.07, and even 64 units (387 "
                  "parameters) near 0.04. Group norm is switched off to compare the plain networks.",
    },
    "l_layer": {
        "title": "an L-layer network: notation, shapes and caches",
        "what": "nnctl writes the forward pass with rows as samples: a batch X has n rows and n_0 columns. Layer "
                "l multiplies the previous activations by W_l, adds b_l, then applies its activation. The "
                "forward pass keeps a cache per layer (A_prev and Z, plus norm and dropout state) because the "
                "backward pass needs exactly those values.",
        "formula": "A_0 = X                                    (n, n_0)\nZ_l = A_{l-1} @ W_l + b_l   W_l "
                   "(n_{l-1}, n_l), b_l (n_l,)\nA_l = g_l(Z_l)                             (n, n_l)\n"
                   "cache_l = (A_{l-1}, Z_l)     weights.npz keys W1, b1, ..., WL, bL",
        "when": "Whenever you write or read an MLP by hand, check shapes layer by layer: W_l has as many rows "
                "as the layer has inputs (fan_in) and as many columns as it has units (fan_out).",
        "pitfall": "Many course notes put samples in columns (Z = W A + b, W of shape (n_l, n_{l-1})); nnctl, "
                   "NumPy code and PyTorch's data put samples in rows, so every matrix is transposed. Mixing the "
                   "two gives shape errors, or silently wrong results when a matrix happens to be square. b is "
                   "broadcast over the rows, one value per unit.",
        "config": "gradcheck lists every parameter tensor with its shape: for moons (2 inputs, hidden [16, 16], "
                  "one output unit) W1 is 2x16, W2 16x16, W3 16x1, and each b has one entry per unit.",
    },
    "backprop": {
        "title": "backpropagation: the chain rule on a computational graph",
        "what": "Backpropagation computes the gradient of the loss with respect to every weight in one backward "
                "sweep. The forward pass is a graph of simple operations; the chain rule says a node's gradient "
                "is the gradient arriving from above times the node's local derivative. Going from the loss "
                "back to the inputs computes each intermediate gradient once and reuses it, so the whole "
                "gradient costs about as much as two forward passes.",
        "formula": "chain rule: dJ/dx = dJ/dy * dy/dx\nper layer, from l = L down to 1 (rows are samples):\n"
                   "  dZ_l = dA_l * g'(Z_l)      (dZ_L = (A_L - Y) / n for softmax or sigmoid\n"
                   "                              with cross-entropy)\n"
                   "  dW_l = A_{l-1}.T @ dZ_l,   db_l = sum of dZ_l over the rows\n  dA_{l-1} = dZ_l @ W_l.T\n"
                   "worked example: x = 2, w = 3, b = 1, y = 5, J = (a - y)^2 / 2, a = relu(z)\n"
                   "  z = 7, a = 7, J = 2;  dJ/da = 2, dJ/dz = 2, dJ/dw = 2 * x = 4, dJ/db = 2",
        "when": "Every time a network is trained by gradient descent: it is how nnctl computes each gradient. "
                "Knowing it lets you predict when gradients vanish or explode, and what a layer needs to keep "
                "in its cache.",
        "pitfall": "A bug in a backward formula does not crash: training just goes worse. Check a hand-written "
                   "backward pass against finite differences. The caches cost memory proportional to the batch "
                   "size times the width of every layer.",
        "config": "gradcheck nudges every parameter by 1e-6, measures the change of the loss and compares it "
                  "with backprop's gradient, tensor by tensor (in float64); it passes when all agree to 1e-5. The "
                  "second command checks batch norm and dropout's backward passes as well.",
    },
    "vanishing_gradients": {
        "title": "vanishing and exploding gradients",
        "what": "On its way down, the gradient is multiplied by every layer's weights and activation "
                "derivative. If those factors are mostly below 1 the product shrinks geometrically and the "
                "first layers hardly learn (vanishing); if they are above 1 it grows and training blows up "
                "(exploding). nnctl watches the ratio of the first to the last layer's gradient norm.",
        "formula": "dA_{l-1} = (dA_l * g'(Z_l)) @ W_l.T\n|dA_1| ~ |dA_L| * prod_l (|W_l| * |g'(Z_l)|)\n"
                   "sigmoid: g' <= 0.25, so 10 layers give a factor of at most 0.25^10 ~ 1e-6",
        "when": "Suspect it in deep networks, with sigmoid or tanh, with a too-small or too-large init scale, "
                "and when the early layers' weights barely change while the last layer's do.",
        "pitfall": "A falling training loss does not rule it out: the last layers can fit while the first ones "
                   "stay random. Fixes address the factors: ReLU-family activations with He init, Xavier for "
                   "tanh, normalisation layers, fewer layers, and gradient clipping against explosion.",
        "config": "Five sigmoid layers with plain SGD stay at chance on moons. nnctl inspect shows the gradient "
                  "norm falling layer by layer toward layer 1 (about 100 times smaller than the output "
                  "layer's), while the relu config learns in a few epochs.",
    },
    "mse": {
        "title": "mean squared error",
        "what": "The mean squared error averages the squared difference between prediction and target. It is "
                "the natural loss for regression: minimising it is maximum likelihood when the noise is "
                "Gaussian, and its gradient is simply the error.",
        "formula": "J = (1 / N) * sum (y_hat - y)^2       (mean over all N elements, as torch)\n"
                   "dJ/dy_hat = 2 * (y_hat - y) / N",
        "when": "Regression with an identity output layer: nnctl's automatic choice for a numeric target. "
                "nnctl standardises the target on the training rows (target_scale: auto), so the loss is in "
                "standard deviations while r2 and mae are in the original units.",
        "pitfall": "Squaring makes large errors dominate: a few outliers pull the whole fit; mae or huber are "
                   "more robust. For classification, mse on a sigmoid output learns slowly when the unit is "
                   "saturated and wrong (its gradient carries an extra sigmoid' factor); cross-entropy does not.",
        "config": "diabetes is a small, noisy regression trained with loss: mse; the second command trains it "
                  "with huber, which treats errors beyond 1 linearly. Compare the two runs with nnctl compare.",
    },
    "cross_entropy": {
        "title": "cross-entropy (log loss)",
        "what": "Cross-entropy measures how much probability the model gives to the true class: minus the log of "
                "it, averaged over the rows. A confident right answer costs almost 0, a confident wrong one a lot. "
                "With a softmax or sigmoid output its gradient is just prediction minus target.",
        "formula": "multi-class: J = -(1 / n) * sum_i sum_k Y_ik * log(A_ik)\n"
                   "binary:      J = -(1 / n) * sum_i [y_i log p_i + (1 - y_i) log(1 - p_i)]\n"
                   "dJ/dZ = (A - Y) / n;   an untrained model with C classes scores about ln C",
        "when": "Every classification task: nnctl uses softmax + cross_entropy for several classes and sigmoid "
                "+ bce for two.",
        "pitfall": "log(0) is infinite, so it must be computed from the scores Z (log-sum-exp), never from "
                   "rounded probabilities; nnctl does. Mislabelled rows get huge losses and pull hard. An initial "
                   "loss far above ln C means the network starts confidently wrong (BAD_INIT_LOSS).",
        "config": "iris has three classes, so an untrained network's loss is of the order of ln 3 = 1.10 "
                  "(metrics.csv shows 1.35 averaged over the first epoch) and training brings it to about 0.02. "
                  "loss: auto picks the same loss; train.loss names it explicitly.",
    },
}
