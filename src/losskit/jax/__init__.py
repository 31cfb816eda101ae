"""JAX at the edge.  Importing this package imports JAX.

:func:`losskit.cross_entropy` and :func:`losskit.linear_cross_entropy` given JAX arrays run
the custom-derivative fast paths of :mod:`losskit.jax.functional` (through
:mod:`losskit.core.dispatch`): the gradient is computed in the forward sweep, linear
cross-entropy never holds the N x V logits, and both work under ``jax.jit``, ``jax.grad`` and
``jax.vmap``.  They are the same functions here, under the names of this package::

    import losskit.jax as lj
    loss = lj.cross_entropy(logits, labels, label_smoothing=0.1)

:func:`linear_log_probs` (per-token log-probs of a linear head, chunked) runs the
``custom_vjp`` of :mod:`losskit.jax.log_probs`.

:mod:`losskit.jax.ops` holds JAX's ``stop_gradient`` and ``scan`` for the core.
"""

from __future__ import annotations

try:
    import jax  # noqa: F401
except ModuleNotFoundError as error:  # pragma: no cover - exercised in a subprocess by the tests
    if error.name != "jax":
        raise
    raise ModuleNotFoundError(
        "losskit.jax needs JAX, which is not installed: pip install 'losskit[jax]' "
        "(or install jax itself, any version the extra allows)",
        name="jax",
    ) from error

from ..losses.classification import cross_entropy
from ..losses.linear_cross_entropy import linear_cross_entropy
from ..losses.log_probs import linear_log_probs
from . import (
    functional,  # noqa: F401  (imports JAX, as this package promises)
    log_probs,  # noqa: F401
)

__all__ = ["cross_entropy", "linear_cross_entropy", "linear_log_probs"]
