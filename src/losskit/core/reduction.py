"""The one reduction path: ``none`` / ``sum`` / ``mean`` / ``batchmean``, the ``where=`` mask,
weights and an explicit ``normalizer``.

A loss computes its per-element value and per-element gradient, builds one :class:`Reducer`,
and passes *both* through it, so the reduced value and its gradient can never disagree about
which elements counted or what the mean divided by.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .backend import Array, Namespace
from .validation import check_mask, check_normalizer, check_reduction

#: the ``reduction`` argument of the losses: per-element values (``"none"``), their ``"sum"``,
#: or their ``"mean"`` (over the counted elements, or by the weights or the normalizer)
Reduction = Literal["mean", "sum", "none"]
#: the ``reduction`` of the losses that also divide the sum by the batch size (``kl_div``)
BatchReduction = Literal["batchmean", "mean", "sum", "none"]


@dataclass(frozen=True)
class Reducer:
    """How per-element losses become the returned loss, and how their gradients scale with it."""

    xp: Namespace
    reduction: str
    mask: Array | None  # shape of the per-element loss; False elements do not count
    factor: Array | float  # d(reduced)/d(element) for a counted element

    def value(self, per_element: Array) -> Array:
        xp = self.xp
        if self.mask is not None:
            per_element = xp.where(self.mask, per_element, xp.zeros_like(per_element))
        if self.reduction == "none":
            return per_element
        return xp.sum(per_element) * self.factor

    def grad(self, g: Array, axis: int | None = None) -> Array:
        """Apply mask and scale to a gradient; ``axis`` is an extra axis of ``g`` (the class
        axis) that the per-element mask lacks."""
        xp = self.xp
        if axis is not None:
            # one multiply by a per-sample scale is far cheaper than a where over every class
            scale = self.sample_scale(g.dtype)
            if scale is None:
                return g if self.reduction == "none" else g * self.factor
            return g * xp.expand_dims(scale, axis=axis)
        if self.mask is not None:
            g = xp.where(self.mask, g, xp.zeros_like(g))
        if self.reduction == "none":
            return g
        return g * self.factor

    def sample_scale(self, dtype: object) -> Array | None:
        """d(reduced)/d(element) per element (0 where masked), or None when it is a plain
        scalar factor with no mask."""
        if self.mask is None:
            return None
        xp = self.xp
        factor = 1.0 if self.reduction == "none" else self.factor
        one = xp.ones(self.mask.shape, dtype=dtype)
        return xp.where(self.mask, one * factor, xp.zeros_like(one))


def make_reducer(
    xp: Namespace,
    reduction: str,
    shape: tuple[int, ...],
    dtype: object,
    *,
    where: Array | None = None,
    weights: Array | None = None,
    normalizer: float | Array | None = None,
    batch_size: int | None = None,
    allowed: tuple[str, ...] = ("mean", "sum", "none"),
) -> Reducer:
    """Build the reducer for per-element losses of ``shape``.

    ``mean`` divides by the number of counted elements, or by the sum of ``weights`` over the
    counted elements when given (PyTorch's weighted mean), or by ``normalizer`` when given.
    When nothing counts, ``mean`` is 0 with a zero gradient (PyTorch returns NaN); when elements
    count, a weighted mean divides by their weights' sum whatever its sign (PyTorch's rule: a
    negative sum flips the sign, a sum of exactly 0 gives inf or NaN).
    ``batchmean`` divides by ``batch_size`` (the first dimension of the input).
    """
    check_reduction(reduction, allowed)
    mask = None
    if where is not None:
        check_mask(xp, where, shape, "the per-element loss")
        mask = xp.broadcast_to(where, shape) if tuple(where.shape) != tuple(shape) else where
    if reduction in ("none", "sum"):
        return Reducer(xp, reduction, mask, 1.0)
    if reduction == "batchmean":
        n = batch_size if batch_size is not None else (shape[0] if shape else 1)
        return Reducer(xp, reduction, mask, 1.0 / n)
    if normalizer is not None:
        check_normalizer(normalizer)
        if isinstance(normalizer, (int, float)):
            return Reducer(xp, reduction, mask, 1.0 / float(normalizer))
        return Reducer(xp, reduction, mask, 1.0 / xp.astype(normalizer, dtype))
    if weights is None and mask is None:
        n = 1
        for d in shape:
            n *= d
        return Reducer(xp, reduction, mask, 1.0 / n)
    if weights is None:
        denominator = xp.sum(xp.astype(mask, dtype))
        counted = denominator > 0
    else:
        w = weights if mask is None else xp.where(mask, weights, xp.zeros_like(weights))
        denominator = xp.sum(w)
        if mask is None:  # every element counts (a loss is never empty)
            return Reducer(xp, reduction, mask, 1.0 / denominator)
        counted = xp.any(mask)
    # Only when nothing counts is the mean 0 with a zero gradient.  Otherwise the weighted mean
    # divides by the counted weights' sum whatever its sign, as PyTorch does: negative weights
    # give a mean of the other sign, and a sum of exactly 0 gives inf or NaN, never a silent 0.
    safe = xp.where(counted, denominator, xp.ones_like(denominator))
    factor = xp.where(counted, 1.0 / safe, xp.zeros_like(denominator))
    return Reducer(xp, reduction, mask, factor)
