"""JAX at the edge.  Importing this package imports JAX.

:func:`losskit.cross_entropy` and :func:`losskit.linear_cross_entropy` given JAX arrays run
the custom-derivative fast paths of :mod:`losskit.jax.functional` (through
:mod:`losskit.core.dispatch`): the gradient is computed in the forward sweep, linear
cross-entropy never holds the N x V logits, and both work under ``jax.jit``, ``jax.grad`` and
``jax.vmap``.  They are the same functions here, under the names of this package::

    import losskit.jax as lj
    loss = lj.cross_entropy(logits, labels, label_smoothing=0.1)

:mod:`losskit.jax.ops` holds JAX's ``stop_gradient`` and ``scan`` for the core.
"""

from __future__ import annotations

from ..losses.classification import cross_entropy
from ..losses.linear_cross_entropy import linear_cross_entropy
from . import functional  # noqa: F401  (imports JAX, as this package promises)

__all__ = ["cross_entropy", "linear_cross_entropy"]
