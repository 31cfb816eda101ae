"""Sequence losses: connectionist temporal classification (CTC).

CTC scores an unsegmented label sequence against per-frame class log-probabilities by summing
over every alignment (Graves et al., 2006).  The sum is computed in log space with the
forward-backward recursion over the label sequence extended with blanks; the time recursion
runs over the (static) number of frames, each step one vectorised update over the batch and
the extended label positions written with array-API calls (masks for the variable lengths), so
it runs on every array library: a Python loop (lazy on Dask, autograd on PyTorch), one
``lax.scan`` on JAX (under ``jax.jit`` too).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..core.backend import (
    Array,
    compute_dtype,
    finish,
    index_dtype,
    is_array,
    is_concrete,
    is_integer,
    lift,
    namespace,
    scan,
)
from ..core.catalog import catalogued
from ..core.gradients import LossResult, loss_function
from ..core.reduction import Reduction, make_reducer
from ..core.validation import check_float_array, check_nonempty

__all__ = ["ctc"]


def _logaddexp(xp, a: Array, b: Array) -> Array:
    """log(exp(a) + exp(b)) without overflow, exact when either or both are -inf (no NaN, no
    warning: the difference is taken against a finite stand-in when the maximum is -inf)."""
    m = xp.maximum(a, b)
    lo = xp.minimum(a, b)
    m_safe = xp.where(m == -math.inf, xp.zeros_like(m), m)
    return m + xp.log1p(xp.exp(lo - m_safe))


def _normalise(xp, x: Array, log_sum: bool = False) -> tuple[Array, Array]:
    """Shift each row of ``x`` (N, L) by its maximum, or by its logsumexp when ``log_sum``;
    return the shifted rows and the (N,) shifts.  Rows of -inf stay -inf with shift 0."""
    m = xp.max(x, axis=1)
    empty = m == -math.inf
    m = xp.where(empty, xp.zeros_like(m), m)
    if log_sum:
        total = xp.sum(xp.exp(x - xp.expand_dims(m, 1)), axis=1)  # >= 1 unless the row is empty
        m = m + xp.log(xp.where(empty, xp.ones_like(total), total))
    return x - xp.expand_dims(m, 1), m


def _shift_right(xp, a: Array, k: int, fill) -> Array:
    """a[:, s - k] at position s (``fill`` for s < k), along the last axis."""
    pad = xp.full((a.shape[0], k), fill, dtype=a.dtype)
    return xp.concat([pad, a[:, : a.shape[1] - k]], axis=1)


def _shift_left(xp, a: Array, k: int, fill) -> Array:
    """a[:, s + k] at position s (``fill`` past the end), along the last axis."""
    pad = xp.full((a.shape[0], k), fill, dtype=a.dtype)
    return xp.concat([a[:, k:], pad], axis=1)


def _as_lengths(xp, lengths: object, name: str, batch: int | None) -> Array:
    """Lengths as an integer array of shape (N,) (``batch`` = N) or (1,) for unbatched input."""
    if not is_array(lengths):
        ok_int = isinstance(lengths, int) and not isinstance(lengths, bool)
        ok_seq = isinstance(lengths, Sequence) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in lengths
        )
        if not (ok_int or ok_seq):
            raise TypeError(
                f"{name} must be an integer array, a Python int or a sequence of ints; "
                f"got {type(lengths).__name__}"
            )
        lengths = xp.asarray(lengths, dtype=index_dtype(xp))
    elif not is_integer(xp, lengths):
        raise TypeError(f"{name} must hold integer lengths; got dtype {lengths.dtype}")
    expected = [(batch,)] if batch is not None else [(), (1,)]
    if tuple(lengths.shape) not in expected:
        want = " or ".join(str(s) for s in expected)
        layout = (
            f"one length per sequence of the batch of {batch}" if batch is not None else "unbatched input"
        )
        raise ValueError(f"{name} must have shape {want} ({layout}); got {tuple(lengths.shape)}")
    return xp.reshape(lengths, (-1,))


def _read(x: Array) -> int | None:
    """A 0-d integer result as a Python int, or None when it cannot be read now (inside
    ``jax.jit`` even operations on concrete arrays are traced; Dask is never read)."""
    return int(x) if is_concrete(x) else None


def _check_range(xp, x: Array, given: object, name: str, low: int, high: int | None, what: str) -> None:
    """Every value in [low, high]: checked on Python values as given, else on concrete arrays."""
    if not is_array(given):
        values = [given] if isinstance(given, int) else list(given)
        if not values:
            return
        lo, hi = min(values), max(values)
    else:
        if not is_concrete(x) or x.shape[0] == 0:
            return
        lo, hi = _read(xp.min(x)), _read(xp.max(x))
        if lo is None or hi is None:
            return
    if lo < low:
        raise ValueError(f"{name} must be >= {low}; got {lo}")
    if high is not None and hi > high:
        raise ValueError(f"{name} must be at most {high} ({what}); got {hi}")


def _padded_targets(xp, targets, target_lengths, batch, blank, concatenated):
    """Targets as an (N, W) integer array with blank past each target length (W >= 1)."""
    tl = target_lengths
    if concatenated:
        total = targets.shape[0]
        s = _read(xp.sum(tl)) if is_concrete(tl) else None
        if s is not None and s != total:
            raise ValueError(f"concatenated targets must hold sum(target_lengths) = {s} labels; got {total}")
        longest = _read(xp.max(tl)) if s is not None and tl.shape[0] > 0 else None
        # lengths unknown at trace time: the widest a target can be
        width = max(1, total if longest is None else longest)
        n = xp.arange(batch, dtype=tl.dtype)
        # offset of sample n in the concatenation: sum of the lengths before it
        offsets = xp.sum(
            xp.where(xp.expand_dims(n, 0) < xp.expand_dims(n, 1), xp.expand_dims(tl, 0), xp.zeros_like(tl)),
            axis=1,
        )
        pos = xp.arange(width, dtype=tl.dtype)
        valid = xp.expand_dims(pos, 0) < xp.expand_dims(tl, 1)
        if total == 0:
            return xp.full((batch, width), blank, dtype=targets.dtype), valid
        index = xp.where(valid, xp.expand_dims(offsets, 1) + pos, xp.zeros_like(valid, dtype=tl.dtype))
        gathered = xp.reshape(xp.take(targets, xp.reshape(index, (-1,)), axis=0), (batch, width))
    else:
        width = targets.shape[1]
        if width == 0:
            targets = xp.zeros((batch, 1), dtype=targets.dtype)
            width = 1
        pos = xp.arange(width, dtype=tl.dtype)
        valid = xp.expand_dims(pos, 0) < xp.expand_dims(tl, 1)
        gathered = targets
    labels = xp.where(valid, gathered, xp.full_like(gathered, blank))
    return labels, valid


@catalogued(
    family="sequence",
    input_space="log-probabilities",
    formula="-log sum_{alignments a -> y} prod_t p_t(a_t)",
    torch="F.ctc_loss",
    optax="optax.losses.ctc_loss",
    keras="CTC",
)
@loss_function
def ctc(
    log_probs: Array,
    targets: Array,
    input_lengths: Array | int | Sequence[int],
    target_lengths: Array | int | Sequence[int],
    blank: int = 0,
    zero_infinity: bool = False,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Connectionist temporal classification loss (Graves et al., 2006).

    For one sequence with frame log-probabilities :math:`\log p_t(c)`, :math:`t < T_n`, and a
    target :math:`y` of length :math:`S_n` (no blanks), the loss is

    .. math::
        \ell_n = -\log \sum_{a \in \mathcal{B}^{-1}(y)} \prod_{t < T_n} p_t(a_t),

    the sum running over every alignment :math:`a` of length :math:`T_n` that collapses to
    :math:`y` once repeats are merged and blanks removed.  It is computed in log space by the
    forward-backward recursion over the extended label :math:`y'` (``y`` with a blank before,
    between and after its labels, length :math:`2S_n + 1`): the forward variables
    :math:`\alpha_t(s)` (paths up to and including frame :math:`t` ending in :math:`y'_s`) and
    the backward variables :math:`\beta_t(s)` (frames after :math:`t` from :math:`y'_s` to the
    end) give :math:`\log p(y|x) = \log\sum_s \alpha_t(s)\,\beta_t(s)` for every :math:`t`.

    Gradient: losskit returns the **true** gradient with respect to ``log_probs``,

    .. math::
        \frac{\partial \ell_n}{\partial \log p_t(c)}
        = -\frac{1}{p(y|x)} \sum_{s:\,y'_s = c} \alpha_t(s)\,\beta_t(s),

    minus the posterior probability that frame :math:`t` emits :math:`c` (0 for
    :math:`t \ge T_n`).  PyTorch's ``ctc_loss`` backward instead returns
    :math:`p_t(c)` minus that posterior — the gradient with respect to the *logits*, on the
    assumption that ``log_probs`` came from a ``log_softmax`` — which differs from the
    derivative of its own value by :math:`\exp(\log p_t(c))`.  Chaining losskit's gradient
    through a log-softmax gives exactly PyTorch's logit gradient.

    Precision: each frame's forward and backward variables are shifted by their maximum (the
    shifts summed separately), and the posterior is normalised within each frame, so float32
    keeps its accuracy over hundreds of frames and with log-probabilities near -1e4.
    float16/bfloat16 inputs are computed in float32 and returned in their dtype.

    Args:
      log_probs: ``(T, N, C)`` frame log-probabilities (time, batch, classes; typically a
        ``log_softmax`` output), or ``(T, C)`` for one unbatched sequence.  Not renormalised.
      targets: integer labels, either padded ``(N, S)`` (entries past a target's length are
        ignored), or the ``N`` targets concatenated into one 1-d array of length
        ``sum(target_lengths)``; for unbatched input, ``(S,)`` with ``S >= target_lengths``
        (PyTorch wants exactly ``target_lengths`` labels there).  Labels lie in ``[0, C)`` and
        are never ``blank``.
      input_lengths: ``(N,)`` integers in ``[0, T]``, the frames of each sequence (an integer
        array, a Python int or a sequence of ints; a 0-d array or an int when unbatched).
      target_lengths: ``(N,)`` integers >= 0 (at most ``S`` for padded targets), as
        ``input_lengths``.
      blank: the blank class index, in ``[0, C)`` (default 0).
      zero_infinity: if True, an infinite loss — no alignment of the target fits the input,
        e.g. a target longer than its input — is replaced by 0, with a zero gradient (default
        False).  Otherwise that loss is ``inf`` and its gradient NaN (as PyTorch), since the
        loss is infinite in a whole neighbourhood.  A target that does not fit its input is
        not an error.
      reduction: ``"mean"`` (default): each loss divided by its target length (clamped to at
        least 1), then averaged over the counted sequences — PyTorch's ``mean``; ``"sum"``;
        ``"none"``: the ``(N,)`` per-sequence losses (a 0-d array when unbatched).
      where: optional boolean mask over sequences, broadcastable to ``(N,)``; False sequences
        count neither in the value, the mean's divisor, nor the gradient.  When nothing
        counts, ``mean`` is 0 with a zero gradient.

    Equivalents: ``torch.nn.functional.ctc_loss`` (same arguments and values; gradients agree
    through a ``log_softmax``); ``optax.losses.ctc_loss(logits, logit_paddings, labels,
    label_paddings)`` with ``logits`` the ``(N, T, C)`` transpose, ``logit_paddings = t >=
    input_lengths``, ``label_paddings = s >= target_lengths`` (it returns the unreduced
    losses); Keras ``CTC``.
    """
    xp = namespace(
        log_probs=log_probs,
        targets=targets,
        input_lengths=input_lengths if is_array(input_lengths) else None,
        target_lengths=target_lengths if is_array(target_lengths) else None,
        where=where,
    )
    check_float_array(xp, log_probs, "log_probs")
    if log_probs.ndim not in (2, 3):
        raise ValueError(
            f"log_probs must have shape (T, N, C) or (T, C) for one unbatched sequence; "
            f"got {log_probs.ndim} dimensions {tuple(log_probs.shape)}"
        )
    check_nonempty(log_probs, "log_probs")
    batched = log_probs.ndim == 3
    num_frames, num_classes = log_probs.shape[0], log_probs.shape[-1]
    batch = log_probs.shape[1] if batched else 1
    if isinstance(blank, bool) or not isinstance(blank, int):
        raise TypeError(f"blank must be an int; got {type(blank).__name__}")
    if not 0 <= blank < num_classes:
        raise ValueError(f"blank must be a class index in [0, {num_classes - 1}]; got {blank}")
    if not isinstance(zero_infinity, bool):
        raise TypeError(f"zero_infinity must be a bool; got {type(zero_infinity).__name__}")
    if not is_integer(xp, targets):
        raise TypeError(f"targets must hold integer labels; got dtype {targets.dtype}")
    if batched:
        if targets.ndim == 2:
            if targets.shape[0] != batch:
                raise ValueError(
                    f"padded targets must have shape (N, S) with N = {batch} (log_probs' batch); "
                    f"got {tuple(targets.shape)}"
                )
        elif targets.ndim != 1:
            raise ValueError(
                f"targets must be padded (N, S) or concatenated (sum(target_lengths),); "
                f"got shape {tuple(targets.shape)}"
            )
        concatenated = targets.ndim == 1
    else:
        if targets.ndim != 1:
            raise ValueError(
                f"targets of an unbatched (T, C) input must be 1-d (S,); got shape {tuple(targets.shape)}"
            )
        targets = xp.reshape(targets, (1, -1))
        concatenated = False
    il = _as_lengths(xp, input_lengths, "input_lengths", batch if batched else None)
    tl = _as_lengths(xp, target_lengths, "target_lengths", batch if batched else None)
    _check_range(xp, il, input_lengths, "input_lengths", 0, num_frames, "the number of frames T of log_probs")
    max_target = None if concatenated else targets.shape[1]
    _check_range(xp, tl, target_lengths, "target_lengths", 0, max_target, "the width S of the padded targets")

    out_dtype = log_probs.dtype
    dtype = compute_dtype(xp, out_dtype)
    reducer = make_reducer(xp, reduction, (batch,), dtype, where=where)
    lp = lift(xp, log_probs, dtype)
    if not batched:
        lp = xp.expand_dims(lp, axis=1)
    labels, label_valid = _padded_targets(xp, targets, tl, batch, blank, concatenated)
    if is_concrete(labels) and is_concrete(label_valid):
        # only the labels inside each target length are read (PyTorch ignores the padding)
        inside = xp.where(label_valid, labels, xp.full_like(labels, num_classes + 1))
        if _read(xp.any(inside == blank)):
            raise ValueError(f"targets must not contain the blank label {blank} (within target_lengths)")
        counted = xp.where(label_valid, labels, xp.full_like(labels, blank))
        lo, hi = _read(xp.min(counted)), _read(xp.max(counted))
        if lo is not None and hi is not None and (lo < 0 or hi >= num_classes):
            raise ValueError(
                f"targets hold label {lo if lo < 0 else hi}, outside [0, {num_classes - 1}] "
                f"for {num_classes} classes"
            )

    # the extended label y': blank, y_1, blank, y_2, ..., y_S, blank
    width = labels.shape[1]
    ext_len = 2 * width + 1
    s = xp.arange(ext_len, dtype=tl.dtype)
    odd = (s % 2) == 1
    label_of = xp.where(odd, (s - 1) // 2, xp.zeros_like(s))
    ext = xp.where(
        odd, xp.take(labels, label_of, axis=1), xp.full((batch, ext_len), blank, dtype=labels.dtype)
    )
    # a skip s-2 -> s is allowed onto a label that differs from the label before the blank
    skip = odd & (s >= 2) & (ext != _shift_right(xp, ext, 2, -1))
    skip_from = _shift_left(xp, skip, 2, False)  # the skip s -> s+2 is allowed

    # emissions E[t, n, s] = log_probs[t, n, y'_s], one gather on the flattened (n, c) axis
    flat_index = xp.reshape(xp.expand_dims(xp.arange(batch, dtype=ext.dtype), 1) * num_classes + ext, (-1,))
    emit = xp.reshape(
        xp.take(xp.reshape(lp, (num_frames, -1)), flat_index, axis=1), (num_frames, batch, ext_len)
    )

    neg_inf = xp.full((batch, ext_len), -math.inf, dtype=dtype)
    zero = xp.zeros((batch, ext_len), dtype=dtype)
    s_row = xp.expand_dims(s, 0)
    il_col, tl_col = xp.expand_dims(il, 1), xp.expand_dims(tl, 1)

    # forward: alpha starts "before frame 0" in the leading blank with log-probability 0.
    # Each step is shifted by its maximum (kept in log_scale) so alpha stays near 0: float32
    # keeps its precision over long sequences and large log-probabilities.
    frames = xp.arange(num_frames, dtype=il.dtype)

    def forward(carry, step_inputs):
        alpha, log_scale = carry
        t, emit_t = step_inputs
        prev = _logaddexp(xp, alpha, _shift_right(xp, alpha, 1, -math.inf))
        prev = _logaddexp(xp, prev, xp.where(skip, _shift_right(xp, alpha, 2, -math.inf), neg_inf))
        new, shift = _normalise(xp, emit_t + prev)
        active = il > t  # frozen after each sequence's last frame
        alpha = xp.where(xp.expand_dims(active, 1), new, alpha)
        log_scale = log_scale + xp.where(active, shift, xp.zeros_like(shift))
        return (alpha, log_scale), (new,)

    start = (xp.where(s_row == 0, zero, neg_inf), xp.zeros((batch,), dtype=dtype))
    (alpha, log_scale), (alphas,) = scan(forward, start, (frames, emit))
    # the path ends in the last label or the trailing blank of y'
    end_blank = xp.sum(xp.where(s_row == 2 * tl_col, alpha, zero), axis=1)
    end_label = xp.sum(xp.where(s_row == 2 * tl_col - 1, alpha, zero), axis=1)
    end_label = xp.where(tl > 0, end_label, xp.full_like(end_label, -math.inf))
    log_likelihood = log_scale + _logaddexp(xp, end_blank, end_label)
    feasible = log_likelihood != -math.inf  # a NaN likelihood is not zeroed by zero_infinity
    loss = -log_likelihood
    if zero_infinity:
        loss = xp.where(feasible, loss, xp.zeros_like(loss))

    if reduction == "mean":
        # PyTorch's mean: each loss over its target length (at least 1), then the batch mean
        per_sample_scale = 1.0 / xp.astype(xp.where(tl > 0, tl, xp.ones_like(tl)), dtype)
        per_sample = loss * per_sample_scale
    else:
        per_sample_scale = None
        per_sample = loss
    value = reducer.value(per_sample)
    if reduction == "none" and not batched:
        value = xp.reshape(value, ())

    grads = {}
    if 0 in wrt:
        # backward: beta_t(s) = log-probability of frames t+1 .. T_n-1 given y'_s at frame t
        end = (s_row == 2 * tl_col) | (s_row == 2 * tl_col - 1)
        end = xp.where(end, zero, neg_inf)

        def backward(beta, step_inputs):
            t, emit_next, alpha_t = step_inputs
            x = emit_next + beta
            step = _logaddexp(xp, x, _shift_left(xp, x, 1, -math.inf))
            step = _logaddexp(xp, step, xp.where(skip_from, _shift_left(xp, x, 2, -math.inf), neg_inf))
            beta = xp.where(il_col - 1 == t, end, xp.where(il_col - 1 > t, step, neg_inf))
            beta, _ = _normalise(xp, beta)  # only ratios within a frame matter below
            # occupation probability of y'_s at frame t: every complete alignment occupies one
            # s per frame, so alpha_t beta_t normalised over s is the posterior, whatever the
            # scales (0 past T_n and for infeasible sequences, where all of it is -inf)
            joint, _ = _normalise(xp, alpha_t + beta, log_sum=True)
            return beta, (xp.exp(joint),)

        # frame t's step reads the emissions of frame t + 1 (none after the last frame)
        emit_next = xp.concat([emit[1:, ...], xp.full((1, batch, ext_len), -math.inf, dtype=dtype)], axis=0)
        _, (gamma,) = scan(backward, neg_inf, (frames, emit_next, alphas), reverse=True)
        # sum the posteriors of the positions s that carry each class c: (T, N, 1, L') @ (N, L', C)
        one_hot = xp.astype(xp.expand_dims(ext, 2) == xp.arange(num_classes, dtype=ext.dtype), dtype)
        occupation = xp.matmul(xp.expand_dims(gamma, 2), xp.expand_dims(one_hot, 0))
        occupation = xp.reshape(occupation, (num_frames, batch, num_classes))
        d_sample = xp.ones((batch,), dtype=dtype) if per_sample_scale is None else per_sample_scale
        d_sample = reducer.grad(d_sample)  # d(reduced) / d(loss_n), 0 where masked out
        g = -occupation * xp.expand_dims(xp.expand_dims(d_sample, 0), 2)
        if not zero_infinity:
            # an infinite loss has no gradient: NaN on the frames of counted infeasible sequences
            undefined = xp.expand_dims((~feasible) & (d_sample != 0), 0) & (
                xp.expand_dims(xp.arange(num_frames, dtype=il.dtype), 1) < xp.expand_dims(il, 0)
            )
            g = xp.where(xp.expand_dims(undefined, 2), xp.full_like(g, math.nan), g)
        if not batched:
            g = g[:, 0, :]
        grads[0] = g
    return finish(xp, out_dtype, value, grads)
