"""`nnctl explain` in English, second half of the course: preparing the inputs, initialisation,
normalisation layers, gradient descent and its learning rate, generalisation."""

TOPICS: dict[str, dict[str, str]] = {
    "preprocessing": {
        "title": "preprocessing the inputs: center, standardize, minmax",
        "what": "Preprocessing puts every input column on a comparable scale before the network sees it. "
                "Centering subtracts each column's mean; standardizing also divides by its standard deviation; "
                "minmax maps each column onto [0, 1]. The statistics come from the training rows only and are "
                "then applied unchanged to validation, test and prediction inputs.",
        "formula": "center:      x' = x - mean\nstandardize: x' = (x - mean) / std      (std with ddof = 0)\n"
                   "minmax:      x' = (x - min) / (max - min)",
        "when": "Almost always: standardize is nnctl's default. Columns in very different units (grams and "
                "kilometres) stretch the loss surface into a narrow valley where gradient descent zigzags, and "
                "large inputs saturate sigmoid and tanh units. Initialisation schemes also assume inputs of "
                "unit scale.",
        "pitfall": "Fitting the statistics on all the data leaks the validation and test sets into training; "
                   "nnctl fits on the training rows and saves them in preprocess.npz so predict applies the same "
                   "transform. A constant column has std 0 (nnctl leaves it unscaled). minmax is fragile with "
                   "outliers: one extreme value squeezes every other row.",
        "config": "wine's 13 columns range from about 0.1 to over 1000. Without preprocessing the untrained "
                  "loss is about 59 (BAD_INIT_LOSS) and validation accuracy stays near 0.83; standardized, the "
                  "same network reaches about 0.97.",
    },
    "pca": {
        "title": "principal component analysis (PCA)",
        "what": "PCA rotates the centred data onto the directions along which it varies most (the principal "
                "axes) and keeps the first k of them. Correlated columns collapse into a few components, so the "
                "network gets fewer, uncorrelated inputs that keep most of the variance.",
        "formula": "Xc = X - mean;   Xc = U S V.T   (SVD)\nvariance of component j: lambda_j = S_j^2 / (n - 1)\n"
                   "X_pca = Xc @ V[:, :k];  explained variance ratio = lambda_j / sum(lambda)",
        "when": "Many correlated inputs (pixels, sensor channels): fewer inputs train faster and drop "
                "low-variance noise. pca_components takes a count, or a fraction of the variance to keep.",
        "pitfall": "PCA ignores the target: a low-variance direction may be exactly the one that separates the "
                   "classes. It is linear. nnctl only centres before PCA (as scikit-learn does), so a column "
                   "measured in large units dominates the components; standardise such data first or choose "
                   "other inputs. The axes are fitted on the training rows only.",
        "config": "digits has 64 pixel columns on one scale (0 to 16), a good case for PCA: keeping 90% of the "
                  "variance leaves 21 components and validation accuracy stays about 0.97.",
    },
    "whitening": {
        "title": "whitening",
        "what": "Whitening goes one step past PCA: after rotating onto the principal axes it divides each "
                "component by its standard deviation, so the inputs are uncorrelated and all have variance 1. "
                "The loss surface of the first layer then looks round rather than stretched.",
        "formula": "X_white = Xc @ V[:, :k] / sqrt(lambda[:k])      (PCA whitening)\n"
                   "cov(X_white) = I\nZCA whitening rotates back: X_zca = X_white @ V[:, :k].T",
        "when": "Inputs that are strongly correlated, for linear models and shallow networks trained by plain "
                "gradient descent, where a round loss surface speeds up convergence.",
        "pitfall": "Components with tiny variance are mostly noise, and dividing by their small standard "
                   "deviation blows that noise up to the same size as the signal: keep fewer components "
                   "(pca_components) or add a small eps to lambda. The rescaling also discards which directions "
                   "were large, which may have mattered.",
        "config": "preprocess: whiten uses the same pca_components as pca. On digits, keeping 90% of the "
                  "variance, validation accuracy is about 0.96, close to plain PCA.",
    },
    "init": {
        "title": "weight initialisation: zeros, small random, scaled random",
        "what": "Training starts from the initial weights, and they decide whether the signal survives the trip "
                "through the layers. All-zero (or all-equal) weights make every unit of a layer identical; small "
                "random weights break that symmetry but shrink the signal at every layer; scaled random weights "
                "(Xavier, He) keep its variance steady. Biases may start at 0.",
        "formula": "Var(z) = fan_in * Var(w) * E[a^2]   for one unit's input\nkeep it steady:  Var(w) = 1 / "
                   "fan_in (LeCun),  2 / fan_in (He),\n                 2 / (fan_in + fan_out) (Xavier)\n"
                   "N(0, 0.01^2), fan_in = 64: each ReLU layer scales the std by ~0.08 / sqrt(2)",
        "when": "Leave init: auto (He for the ReLU family, Xavier for the others) unless you are studying "
                "initialisation itself; normal with init_std is for experiments.",
        "pitfall": "Zeros: every unit gets the same gradient and stays a copy of the others (SYMMETRY). Too "
                   "small: the activations collapse toward 0 layer by layer and the gradients vanish with them "
                   "(ACTIVATION_COLLAPSE). Too large: sigmoid and tanh saturate, ReLU activations and gradients "
                   "explode, and the first loss is far above ln C.",
        "config": "Five layers of 64 ReLU units drawn from N(0, 0.01^2) and trained with SGD stay at chance: "
                  "nnctl inspect shows the activation std falling from about 1e-2 in layer 1 to about 1e-5 by "
                  "layer 3 and 0 in layer 5. The last command starts from zeros and reports ZEROS_INIT and "
                  "SYMMETRY.",
    },
    "xavier": {
        "title": "Xavier (Glorot) initialisation",
        "what": "Xavier initialisation (Glorot and Bengio, 2010) scales random weights so that the variance of "
                "the signal stays about the same going forward (which wants Var(w) = 1 / fan_in) and the gradient "
                "going backward (1 / fan_out). It takes the compromise between the two.",
        "formula": "Var(W) = 2 / (fan_in + fan_out)\nxavier_uniform: W ~ U(-a, a),  a = sqrt(6 / (fan_in + "
                   "fan_out))\nxavier_normal:  W ~ N(0, 2 / (fan_in + fan_out))",
        "when": "Layers with sigmoid, tanh or linear activations, which are roughly linear around 0: nnctl's "
                "init: auto uses xavier_uniform for them. nnctl uses gain 1, as torch's default.",
        "pitfall": "With ReLU, half of each layer's inputs are zeroed, so Xavier's variance is about half of "
                   "what is needed: in a deep ReLU network the signal shrinks layer after layer. Use He there. "
                   "fan_in is the number of rows of W in nnctl (W is fan_in x fan_out).",
        "config": "circles trains one tanh layer; init: auto already picks xavier_uniform, so the command only "
                  "names it. A 2-input, 8-unit layer draws from U(-0.77, 0.77).",
    },
    "he": {
        "title": "He (Kaiming) initialisation",
        "what": "He initialisation (He et al., 2015) is designed for ReLU. A ReLU zeroes about half of its "
                "inputs, which halves the second moment of the signal at each layer; doubling the weight "
                "variance to 2 / fan_in makes up for it, so activations keep their scale through a deep network.",
        "formula": "Var(W) = 2 / fan_in\nhe_normal:  W ~ N(0, 2 / fan_in)\nhe_uniform: W ~ U(-a, a),  a = "
                   "sqrt(6 / fan_in)",
        "when": "Layers with ReLU, leaky ReLU, ELU and the rest of the ReLU family: nnctl's init: auto picks "
                "he_normal for them (torch's kaiming_normal_ with its defaults).",
        "pitfall": "With sigmoid or tanh, which do not zero anything, the doubled variance pushes "
                   "pre-activations into the flat regions and the units saturate (nnctl warns "
                   "HE_INIT_SATURATING). Note which dimension is fan_in: in nnctl W has shape (fan_in, "
                   "fan_out), while a torch Linear stores (fan_out, fan_in).",
        "config": "moons with he_normal is what init: auto already does for relu. The second command puts He "
                  "init under tanh units, and nnctl prints the HE_INIT_SATURATING warning before training.",
    },
    "batch_norm": {
        "title": "batch normalisation",
        "what": "Batch norm standardises each unit's pre-activation over the rows of the current batch, then "
                "lets the network rescale and shift it with two learned vectors, gamma and beta. It keeps every "
                "layer's inputs in a steady range, which allows larger learning rates and eases deep training. "
                "At inference time it uses running averages of the batch statistics instead.",
        "formula": "per unit j, over the rows of the batch:\n"
                   "  mu_j = mean(Z[:, j]),  var_j = mean((Z[:, j] - mu_j)^2)\n"
                   "Z_hat = (Z - mu) / sqrt(var + eps),  Y = gamma * Z_hat + beta  (eps = 1e-5)\n"
                   "running = (1 - m) * running + m * batch statistic   (m = momentum = 0.1)",
        "when": "Deeper MLPs trained with minibatches of 32 rows or more. nnctl puts it between Z = A_prev @ W + "
                "b and the activation, never on the output layer.",
        "pitfall": "Statistics of a few rows are noisy, so small batches train erratically and the running "
                   "averages fit inference poorly (BATCHNORM_SMALL_BATCH). One row per step is impossible: its "
                   "variance is 0 (nnctl refuses gd: stochastic with batch norm). The model behaves differently "
                   "in training and inference, and the bias b becomes redundant (beta takes its role).",
        "config": "classification trains two layers with batch norm and batches of 64 rows. With batch_size "
                  "4 nnctl warns BATCHNORM_SMALL_BATCH before training.",
    },
    "layer_norm": {
        "title": "layer normalisation",
        "what": "Layer norm standardises each row over the units of a layer, instead of each unit over the "
                "rows. Every example is normalised on its own, so the result does not depend on the batch and "
                "training and inference compute the same thing.",
        "formula": "per row i, over the layer's units:\n  mu_i = mean(Z[i, :]),  var_i = mean((Z[i, :] - mu_i)^2)\n"
                   "Y = gamma * (Z - mu) / sqrt(var + eps) + beta",
        "when": "Small batches, one row per step, or when inference must match training exactly. It is group "
                "norm with a single group.",
        "pitfall": "It forces the units of each row to mean 0 and variance 1, which removes information when a "
                   "layer has very few units: with one unit the output is always beta. It normalises across "
                   "units that may measure unrelated things.",
        "config": "digits uses norm: layer on its two hidden layers (128 and 64 units).",
    },
    "group_norm": {
        "title": "group normalisation",
        "what": "Group norm splits a row's units into G equal groups and standardises each group separately, "
                "then applies the learned gamma and beta. It sits between layer norm (one group) and instance "
                "norm (one unit per group), and like layer norm it ignores the batch.",
        "formula": "units of a layer split into G groups of units / G\nper row and group g:  Y = gamma * (Z - "
                   "mu_g) / sqrt(var_g + eps) + beta\nG = 1: layer norm;  G = units: instance norm (useless in an "
                   "MLP)",
        "when": "Small batches where layer norm's single group is too coarse. Set the groups with "
                "norm_options: {groups: G}; G must divide the number of units (nnctl checks).",
        "pitfall": "Groups of one unit leave nothing to normalise: each unit minus its own mean is 0, so the "
                   "layer outputs beta whatever the input (see instance_norm). Small groups give noisy "
                   "statistics, as small batches do for batch norm.",
        "config": "spiral normalises each row's 64 units in 8 groups of 8.",
    },
    "instance_norm": {
        "title": "instance normalisation, and why it does not apply to an MLP",
        "what": "In image networks, instance norm standardises each channel of each image over its pixels. An "
                "MLP unit has no pixels: for one row it is a single number. Normalising a group that holds one "
                "value subtracts the value from itself, so the result is 0 and the output is always beta: the "
                "layer forgets its input and no gradient reaches its weights.",
        "formula": "group of one unit:  mu = z,  z - mu = 0,  var = 0\nY = gamma * 0 / sqrt(0 + eps) + beta = beta"
                   "   for every input",
        "when": "Never in an MLP. For a batch-independent normalisation use norm: layer, or norm: group with "
                "several units per group.",
        "pitfall": "In nnctl, instance norm would be norm: group with groups equal to the layer's units, and "
                   "that config is refused with this reason. Followed by a ReLU, every unit would output "
                   "relu(beta) = 0 from the start, the network would stay at chance and its weights would never "
                   "move.",
        "config": "spiral's groups: 8 on a hidden layer of 8 units would be exactly that: try --set "
                  "'model.hidden=[8]' alone and nnctl refuses it, naming instance norm. The command below uses "
                  "layer norm on the same 8 units instead and reaches about 0.91.",
    },
    "gradient_descent": {
        "title": "gradient descent",
        "what": "Gradient descent minimises the loss by repeatedly stepping against its gradient, the direction "
                "in which the loss rises fastest. Each step changes every parameter in proportion to how much "
                "it increases the loss. Which rows the gradient is computed on gives its variants: batch, "
                "minibatch and stochastic.",
        "formula": "theta <- theta - lr * dJ/dtheta\nf(x) = x^2: x <- x - lr * 2x = (1 - 2 lr) x   (converges "
                   "for 0 < lr < 1)",
        "when": "Training every network in nnctl: optimizer.name chooses the update rule (sgd is the plain one "
                "above) and train.gd chooses how many rows each step uses.",
        "pitfall": "The step size matters more than anything else (see learning_rate). Gradient descent only "
                   "finds a point where the gradient is small: a local minimum, or in a network more often a "
                   "saddle or a flat region. Features on different scales make it zigzag.",
        "config": "regression is plain linear regression (hidden: []) trained by full-batch gradient descent: "
                  "one step per epoch on all training rows, with a learning rate decaying from 0.2.",
    },
    "batch": {
        "title": "batch (full-batch) gradient descent",
        "what": "Batch gradient descent computes the gradient on all training rows before each step, so there is "
                "one step per epoch and the gradient is the exact gradient of the training loss. The loss curve "
                "is smooth.",
        "formula": "g = (1 / n) * sum_{i=1..n} grad J_i(theta)\ntheta <- theta - lr * g       (one step per epoch)",
        "when": "Small data sets, convex problems such as linear and logistic regression, and to study "
                "gradient descent without noise.",
        "pitfall": "Each step costs a pass over the whole data, so progress per second is slow on large data, "
                   "and all rows must fit in memory. With no noise it can settle in sharp minima or saddles that "
                   "minibatch noise would escape.",
        "config": "train.gd: batch on moons with plain SGD at lr 0.5 needs about 200 epochs (200 steps) to reach "
                  "about 0.96 validation accuracy; one row per step (see sgd) gets there in 20 epochs.",
    },
    "minibatch": {
        "title": "minibatch gradient descent",
        "what": "Minibatch gradient descent shuffles the training rows each epoch and steps once per batch of B "
                "rows. The batch gradient is a noisy estimate of the full gradient, cheap to compute with matrix "
                "products, and there are many steps per epoch.",
        "formula": "steps per epoch = ceil(n / B)\ng_batch = (1 / B) * sum_{i in batch} grad J_i(theta)\n"
                   "noise of g_batch ~ 1 / sqrt(B)",
        "when": "The default (train.gd: minibatch, batch_size 32). Batch sizes of 16 to 256 are common; larger "
                "batches give smoother gradients and allow a somewhat larger learning rate.",
        "pitfall": "Batch size and learning rate interact: change one and you may need to retune the other. "
                   "The last batch of an epoch can be smaller. Batch norm needs batches big enough for stable "
                   "statistics.",
        "config": "moons steps on batches of 32 rows. The sweep trains batch sizes 8, 32 and 128 side by side "
                  "and prints the comparison.",
    },
    "sgd": {
        "title": "stochastic gradient descent",
        "what": "Stochastic gradient descent steps after every single training row, in a shuffled order: n steps "
                "per epoch, each using one row's gradient. The steps are very noisy but cheap, and the noise "
                "averages out over many of them.",
        "formula": "for each row i in shuffled order:  theta <- theta - lr * grad J_i(theta)",
        "when": "Online learning and teaching. In libraries, \"SGD\" usually means the plain update rule applied "
                "to minibatches: in nnctl optimizer.name: sgd is the rule and train.gd: stochastic makes each "
                "batch one row.",
        "pitfall": "The noise keeps the parameters jittering around the minimum unless the learning rate "
                   "decays, so use a smaller lr than for batches. One row at a time is slow in NumPy and "
                   "incompatible with batch norm (the variance of one row is 0).",
        "config": "On moons, one row per step with lr 0.01 reaches about 0.96 validation accuracy in 20 "
                  "epochs, but each epoch takes hundreds of small steps.",
    },
    "learning_rate": {
        "title": "the learning rate",
        "what": "The learning rate lr scales every gradient step. Too small and training crawls; too large and "
                "each step overshoots the valley, so the loss oscillates or diverges. A schedule changes lr "
                "during training (step, exponential, cosine, plateau, with warmup).",
        "formula": "theta <- theta - lr * g\nf(x) = x^2:  x <- (1 - 2 lr) x\n  0 < lr < 0.5: smooth\n"
                   "  0.5 < lr < 1: oscillates but converges\n  lr > 1: diverges",
        "when": "Tune it first: it matters more than any other hyperparameter. Typical starts: 0.1 for sgd, "
                "0.01 with momentum, 1e-3 for adam.",
        "pitfall": "The right value depends on the optimizer, the batch size and the scale of the inputs. A "
                   "loss that rises, oscillates or becomes NaN usually means lr is too large (LR_TOO_LARGE); a "
                   "flat loss with tiny updates means too small (LR_TOO_SMALL).",
        "config": "sgd with lr 1e-5 hardly moves: nnctl reports LR_TOO_SMALL (update/weight ratio about 5e-6). "
                  "lr-find ramps the rate and suggests one. adam with lr 0.5 triggers ADAM_HIGH_LR and "
                  "LR_TOO_LARGE.",
    },
    "momentum": {
        "title": "momentum",
        "what": "Momentum keeps a running velocity: each step adds the new gradient to a decayed sum of the past "
                "ones. Directions in which the gradients agree build up speed; directions in which they flip "
                "sign cancel out, so zigzagging across a narrow valley is damped. Nesterov momentum evaluates "
                "the step one look ahead.",
        "formula": "v <- mu * v + g;   theta <- theta - lr * v     (torch.optim.SGD, mu = 0.9)\n"
                   "constant gradient: effective step lr / (1 - mu) = 10 * lr",
        "when": "Whenever plain SGD is slow or zigzags; optimizer.name: momentum (or nesterov) with momentum "
                "0.9.",
        "pitfall": "With mu = 0.9 the effective step is ten times lr, so a learning rate tuned for plain SGD "
                   "may now overshoot: lower it when you switch. Momentum can carry the parameters past a "
                   "minimum before turning back.",
        "config": "blobs trains with momentum 0.9 at lr 0.05 and ends near a validation loss of 0.16; plain sgd "
                  "at the same lr, in the same 40 epochs, is near 0.23.",
    },
    "adam": {
        "title": "Adam (and AdamW)",
        "what": "Adam combines momentum with a per-parameter step size: it keeps running averages of the gradient "
                "(m) and of its square (v), and divides one by the square root of the other. Every parameter "
                "therefore moves by about lr per step, whatever the scale of its gradient. AdamW applies weight "
                "decay directly to the weights instead of through the gradient.",
        "formula": "m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g^2   (b1 = 0.9, b2 = 0.999)\n"
                   "m_hat = m / (1 - b1^t);   v_hat = v / (1 - b2^t)\n"
                   "theta <- theta - lr * m_hat / (sqrt(v_hat) + eps)    (eps = 1e-8)",
        "when": "A robust default for most networks, with lr around 1e-3 (up to 1e-2 for small MLPs). Use "
                "adamw when you want weight decay.",
        "pitfall": "Because each step is about lr per parameter, lr = 0.1 or more usually overshoots "
                   "(ADAM_HIGH_LR). weight_decay with adam is L2 added to the gradient and then rescaled by "
                   "Adam, which weakens it; adamw decouples it.",
        "config": "moons trains with adam at lr 0.01. At lr 0.5 nnctl warns ADAM_HIGH_LR before training, then "
                  "reports LR_TOO_LARGE and dead ReLU units.",
    },
    "overfitting": {
        "title": "overfitting and underfitting",
        "what": "A network overfits when it learns the training rows, noise included, instead of the pattern: "
                "the training loss keeps falling while the validation loss turns and rises. It underfits when "
                "it is too small or trained too briefly to fit even the training rows. The gap between "
                "validation and training loss measures overfitting.",
        "formula": "gap = J_val - J_train\nweight decay (L2): J + (wd / 2) * ||W||^2, so g <- g + wd * W",
        "when": "Watch both curves on every run (nnctl plot). Remedies for overfitting: more data, a smaller "
                "network, weight decay, dropout, early stopping. For underfitting: a bigger network, more "
                "epochs, a better learning rate.",
        "pitfall": "Judging a model by its training loss hides overfitting; choosing hyperparameters on the "
                   "test split overfits to it too: tune on validation and report the test split once (nnctl "
                   "eval).",
        "config": "moons with only 100 rows, noise 0.3 and two layers of 256 units: after 300 epochs the "
                  "training loss is about 0.0002 while the validation loss climbed from 0.29 (epoch 8) to about "
                  "1.3. nnctl plot shows the curves part.",
    },
    "early_stopping": {
        "title": "early stopping",
        "what": "Early stopping watches a validation metric and stops training once it has not improved for a "
                "number of epochs (the patience), then restores the weights of the best epoch. It cuts training "
                "off where overfitting begins.",
        "formula": "if val_loss < best - min_delta: best = val_loss, wait = 0, keep the weights\n"
                   "else: wait = wait + 1;  stop when wait >= patience",
        "when": "Nearly every run with a validation split: train.early_stopping: {monitor: val_loss, patience: "
                "10}. It also saves choosing the number of epochs.",
        "pitfall": "Too small a patience stops on a noisy dip; the validation split used to stop is no longer "
                   "an unbiased estimate, so report the test split. A learning-rate schedule that plans for the "
                   "full number of epochs (cosine) is cut short.",
        "config": "breast_cancer stops after 20 epochs without a better val_loss. The second command is the "
                  "overfitting moons run with patience 20: it stops early and keeps the epoch-8 weights "
                  "(validation loss about 0.29 instead of 1.3).",
    },
    "dropout": {
        "title": "dropout",
        "what": "During training, dropout sets each hidden unit's output to 0 with probability p, independently "
                "for every row and step, and scales the kept ones by 1 / (1 - p). No unit can rely on a "
                "particular other unit, which acts like training many thinned networks at once. At inference "
                "nothing is dropped.",
        "formula": "M ~ Bernoulli(1 - p) per unit and row\nA_drop = A * M / (1 - p)      (inverted dropout: "
                   "E[A_drop] = A)\ninference: A unchanged",
        "when": "Wide networks on small data sets that overfit; p between 0.1 and 0.5 on hidden layers (nnctl "
                "never drops the output layer).",
        "pitfall": "The training loss is computed with units dropped, so it is higher and noisier than without "
                   "dropout, and can sit above the validation loss. Too much dropout underfits. It is no cure "
                   "for every overfit: on a tiny data set early stopping or a smaller network may help more.",
        "config": "breast_cancer uses dropout: 0.2 on both hidden layers. Both runs reach about 0.98 "
                  "validation accuracy, but with dropout the training loss ends near 0.04 and without it near 0.01.",
    },
}
