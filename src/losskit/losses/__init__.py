"""The losses, one module per family, each written once over the Python array API.

Every public function here is re-exported by :mod:`losskit` (``losskit.mse``,
``losskit.cross_entropy``, ...); these modules import only :mod:`losskit.core`.  Faster
implementations for one array library (NumPy kernels, torch autograd Functions, JAX custom
derivatives) are reached through :mod:`losskit.core.dispatch`, never imported here.

- :mod:`~losskit.losses.activations` — output layers (sigmoid, softmax, log-softmax, ...);
- :mod:`~losskit.losses.regression` — MSE, MAE, Huber, smooth L1, log-cosh, quantile,
  Poisson/Gaussian NLL, MAPE, MSLE, Tweedie;
- :mod:`~losskit.losses.classification` — binary and multiclass cross-entropy, NLL,
  generalized cross-entropy, Brier score, label smoothing;
- :mod:`~losskit.losses.focal` — focal losses and PolyLoss;
- :mod:`~losskit.losses.linear_cross_entropy` — output layer + cross-entropy, chunked;
- :mod:`~losskit.losses.margin` — hinge, perceptron and margin losses;
- :mod:`~losskit.losses.sparsemax` — the sparsemax projection and its loss;
- :mod:`~losskit.losses.divergence` — KL, JS, generalized KL, distillation;
- :mod:`~losskit.losses.contrastive` — triplet, cosine, InfoNCE, NT-Xent, SupCon, Circle;
- :mod:`~losskit.losses.ranking` — margin ranking, softmax ranking;
- :mod:`~losskit.losses.segmentation` — Dice, Tversky;
- :mod:`~losskit.losses.sequence` — CTC;
- :mod:`~losskit.losses.penalties` — L1 / L2 weight penalties.
"""
