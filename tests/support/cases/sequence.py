"""Cases for the sequence losses: CTC.

The reference is PyTorch's ``F.ctc_loss`` in float64.  Its value is the loss of the given
``log_probs``, but its backward returns the gradient with respect to logits (it assumes a
``log_softmax`` before it).  So that torch autograd of the reference gives the true gradient
with respect to ``log_probs``, the reference feeds PyTorch ``log_softmax(log_probs)`` and
subtracts the normaliser that removes: every alignment takes one class per frame, so

    ctc(z) = ctc(log_softmax(z)) - sum_{t < T_n} logsumexp_c z[t, n, c]

exactly, for any z; PyTorch's backward is right through a ``log_softmax``, and the
subtracted term is plain autograd.  For normalised ``log_probs`` (all the cases here) the
normaliser is 0 and the value is PyTorch's own.
"""

from __future__ import annotations

import numpy as np

import losskit as lk

from . import Case

T, N, C = 5, 2, 4


def _log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _labels(rng, size, blank):
    """Labels in [0, C) other than the blank, with repeats likely (the case that needs a blank
    between them)."""
    choices = np.array([c for c in range(C) if c != blank][:2])
    return rng.choice(choices, size=size)


def _ctc_args(concatenated=False, unbatched=False, blank=0, zero_infinity=None, where=False):
    def make(rng):
        lp = _log_softmax(rng.normal(size=(T, C) if unbatched else (T, N, C)) * 1.5)
        kwargs = {}
        if blank:
            kwargs["blank"] = blank
        if zero_infinity is not None:
            kwargs["zero_infinity"] = zero_infinity
        if unbatched:
            tl = np.array(2)
            return (lp, _labels(rng, 3, blank), np.array(T), tl), kwargs
        # targets of 1 or 2 labels always fit 4 or 5 frames (a repeat needs a blank between)
        tl = np.array([2, int(rng.integers(1, 3))])
        il = np.array([T, T - 1])
        if zero_infinity:
            tl = np.array([2, 3])
            il = np.array([T, 2])  # the second target cannot fit in 2 frames: infinite loss
        if concatenated:
            targets = _labels(rng, int(tl.sum()), blank)
        else:
            targets = _labels(rng, (N, 3), blank)
            targets[0, 2] = -7  # padding past the target length is never read
        if where:
            kwargs["where"] = np.array([False, True])
        return (lp, targets, il, tl), kwargs

    return make


def _ctc_perfect(rng):
    """One alignment carries all the probability (log-probabilities 0 on it, -inf elsewhere)."""
    lp = np.full((T, N, C), -np.inf)
    targets = _labels(rng, (N, 2), 0)
    for n in range(N):
        alignment = [targets[n, 0], 0, targets[n, 1], 0, 0]  # collapses to the target
        lp[np.arange(T), n, alignment] = 0.0
    return (lp, targets, np.array([T, T]), np.array([2, 2])), {}


def _torch_ctc(a, k, r):
    import torch
    import torch.nn.functional as F

    lp, targets, il, tl = a
    k = dict(k)
    where = k.pop("where", None)
    zero_infinity = k.pop("zero_infinity", False)
    unbatched = lp.ndim == 2
    if unbatched:  # PyTorch reads a 1-d target as exactly target_lengths labels
        targets = targets[: int(tl)]
    per = F.ctc_loss(
        F.log_softmax(lp, -1), targets, il, tl, reduction="none", zero_infinity=zero_infinity, **k
    )
    frames = torch.arange(lp.shape[0])
    if unbatched:
        counted = frames < il
    else:
        counted = frames[:, None] < il[None, :]
    norm = (torch.logsumexp(lp, -1) * counted).sum(0)
    if zero_infinity:
        with torch.no_grad():
            infinite = torch.isinf(F.ctc_loss(lp, targets, il, tl, reduction="none", **k))
        norm = torch.where(infinite, torch.zeros_like(norm), norm)
    per = per - norm
    if r == "none":
        return per if where is None else torch.where(where, per, torch.zeros_like(per))
    if r == "sum":
        return per.sum() if where is None else per[where].sum()
    per = per / tl.clamp(min=1)
    return per.mean() if where is None else per[where].mean()


def _case(id, **options):
    return Case(
        id=id,
        fn=lk.ctc,
        make_args=_ctc_args(**options),
        reference=_torch_ctc,
        zero_grad_at_perfect=False,
    )


CASES = [
    Case(
        id="ctc",
        fn=lk.ctc,
        make_args=_ctc_args(),
        reference=_torch_ctc,
        perfect=_ctc_perfect,
        zero_grad_at_perfect=False,  # the gradient on the one alignment is -1, not 0
    ),
    _case("ctc-concatenated", concatenated=True),
    _case("ctc-unbatched", unbatched=True),
    _case("ctc-blank", blank=2),
    _case("ctc-zero_infinity", zero_infinity=True),
    _case("ctc-where", where=True),
]
