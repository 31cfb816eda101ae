"""Output layers: the functions that turn a network's last linear layer into predictions.

Every function is numerically stable: none overflows at ``|x| = 1e4`` in float32, and a row that
mixes ``-inf`` with finite values (a masked vocabulary, say) is handled exactly.  Pair each
with the loss written for its output space: ``sigmoid`` with ``binary_cross_entropy`` (or,
better, raw logits with ``binary_cross_entropy_with_logits``), ``log_softmax`` with ``nll``
(or raw logits with ``cross_entropy``), linear outputs with ``mse``.
"""

from __future__ import annotations

from ..core import numerics
from ..core.backend import Array, cast, compute_dtype, lift, namespace
from ..core.validation import check_axis, check_float_array, check_hyperparameter

__all__ = ["sigmoid", "log_sigmoid", "softplus", "softmax", "log_softmax", "logsumexp", "tanh"]


def _prepare(x: Array, name: str = "x"):
    xp = namespace(**{name: x})
    check_float_array(xp, x, name)
    dtype = compute_dtype(xp, x.dtype)
    return xp, x.dtype, lift(xp, x, dtype)


def sigmoid(x: Array) -> Array:
    r"""Logistic sigmoid, :math:`\sigma(x) = 1 / (1 + e^{-x})`, elementwise.

    Computed from :math:`e^{-|x|}` so it never overflows. Output in (0, 1); any shape.
    Equivalent: ``torch.sigmoid``, ``jax.nn.sigmoid``.
    """
    xp, dtype, x = _prepare(x)
    return cast(xp, numerics.sigmoid(xp, x), dtype)


def softplus(x: Array) -> Array:
    r"""Softplus, :math:`\log(1 + e^{x}) = \max(x, 0) + \log(1 + e^{-|x|})`, elementwise.

    Exact for large positive ``x`` (returns ``x``) and tiny negative ``x`` (returns
    :math:`e^{x}`). Equivalent: ``torch.nn.functional.softplus`` (beta=1, no threshold),
    ``jax.nn.softplus``.
    """
    xp, dtype, x = _prepare(x)
    return cast(xp, numerics.softplus(xp, x), dtype)


def log_sigmoid(x: Array) -> Array:
    r"""Log of the sigmoid, :math:`\log \sigma(x) = -\mathrm{softplus}(-x)`, elementwise.

    Stable where ``log(sigmoid(x))`` would give ``-inf`` (``x = -1e4`` returns ``-1e4``).
    Equivalent: ``torch.nn.functional.logsigmoid``, ``jax.nn.log_sigmoid``.
    """
    xp, dtype, x = _prepare(x)
    return cast(xp, numerics.log_sigmoid(xp, x), dtype)


def tanh(x: Array) -> Array:
    r"""Hyperbolic tangent, :math:`(e^{x} - e^{-x}) / (e^{x} + e^{-x})`, output in (-1, 1)."""
    xp, dtype, x = _prepare(x)
    return cast(xp, xp.tanh(x), dtype)


def _scaled(xp, x: Array, temperature: float | Array) -> Array:
    temperature = check_hyperparameter(temperature, "temperature", like=x, low=0.0, low_inclusive=False)
    return x if isinstance(temperature, float) and temperature == 1.0 else x / temperature


def softmax(x: Array, axis: int = -1, temperature: float = 1.0) -> Array:
    r"""Softmax with temperature along ``axis``:
    :math:`\mathrm{softmax}(x, T)_i = e^{x_i/T} / \sum_j e^{x_j/T}`.

    Args:
      x: logits, any shape.
      axis: the class axis (default -1, the last; PyTorch's ``dim``).
      temperature: :math:`T > 0` (default 1). :math:`T < 1` sharpens the distribution
        (more confident), :math:`T > 1` flattens it.  A number or a 0-d array (a learnable
        temperature, a traced value under ``jax.jit``: its gradient flows).

    The row maximum is subtracted before exponentiating, so no input overflows; ``-inf``
    entries get probability 0. A row of only ``-inf`` has no distribution and gives NaN, as
    in PyTorch. Equivalent: ``torch.softmax(x / T, dim)``, ``jax.nn.softmax``.
    """
    xp, dtype, x = _prepare(x)
    axis = check_axis(axis, x.ndim)
    return cast(xp, numerics.softmax(xp, _scaled(xp, x, temperature), axis), dtype)


def log_softmax(x: Array, axis: int = -1, temperature: float = 1.0) -> Array:
    r"""Log of the softmax with temperature along ``axis``:
    :math:`z_i - \log\sum_j e^{z_j}` with :math:`z = x / T`.

    Exact where ``log(softmax(x))`` underflows to ``-inf``. Pair with :func:`losskit.nll`.
    Args as :func:`softmax`. Equivalent: ``torch.log_softmax``, ``jax.nn.log_softmax``.
    """
    xp, dtype, x = _prepare(x)
    axis = check_axis(axis, x.ndim)
    return cast(xp, numerics.log_softmax(xp, _scaled(xp, x, temperature), axis), dtype)


def logsumexp(x: Array, axis: int = -1, keepdims: bool = False) -> Array:
    r""":math:`\log \sum_j e^{x_j}` along ``axis``, computed as
    :math:`m + \log\sum_j e^{x_j - m}` with :math:`m = \max_j x_j`.

    A row of only ``-inf`` gives ``-inf``; a ``+inf`` entry gives ``+inf``. The result drops
    ``axis`` unless ``keepdims``. Equivalent: ``torch.logsumexp``, ``jax.nn.logsumexp``.
    """
    xp, dtype, x = _prepare(x)
    axis = check_axis(axis, x.ndim)
    return cast(xp, numerics.logsumexp(xp, x, axis, keepdims), dtype)
