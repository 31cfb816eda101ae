"""The core: what every loss shares, written once, importing nothing else of losskit and no
framework.

- :mod:`~losskit.core.backend` — the seam to array libraries (namespace resolution, the
  compute dtype, concrete-versus-traced arrays);
- :mod:`~losskit.core.validation` — checks whose messages name the argument, what was expected
  and what came;
- :mod:`~losskit.core.reduction` — ``mean`` / ``sum`` / ``none`` / ``batchmean``, masks,
  weights and normalizers, applied to a value and its gradient by the same code;
- :mod:`~losskit.core.gradients` — ``loss_function``, ``value_and_grad`` and ``grad``;
- :mod:`~losskit.core.catalog` — the listing behind :func:`losskit.catalog`;
- :mod:`~losskit.core.numerics` — stable sigmoid, softplus, log-sum-exp, softmax, one-hot;
- :mod:`~losskit.core.pointwise` — the plumbing of elementwise losses;
- :mod:`~losskit.core.specs` — the validated options of cross-entropy and linear
  cross-entropy, shared by every implementation of them;
- :mod:`~losskit.core.dispatch` — the registry of fast paths, imported on first use.
"""
