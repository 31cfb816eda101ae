"""Linear layer + cross-entropy, chunked so the N x V logits never exist.

The last layer of a language model maps N hidden states of width D to V logits (V is the
vocabulary, tens to hundreds of thousands) and the loss reduces each row of logits to one
number.  Materialising the logits costs N x V memory (4 GB for 8192 tokens and 128k classes in
float32), and an autograd framework keeps several more such buffers for the backward.
:func:`linear_cross_entropy` walks over chunks of tokens instead: for each chunk it computes the
chunk's logits, its losses and the gradient with respect to those logits (in the same buffer),
and immediately folds that gradient into the gradients of the input, the weight and the bias.
Only O(chunk x V) is ever live, and the three matrix products of the linear layer's forward
and backward are each done once.
"""

from __future__ import annotations

import math

import numpy as np

from ._backend import Array, compute_dtype, finish, lift, namespace
from ._catalog import catalogued
from ._gradients import loss_function
from ._validation import (
    check_class_indices,
    check_float_array,
    check_integer_array,
    check_nonempty,
    check_number,
    check_reduction,
)

__all__ = ["linear_cross_entropy"]

# "auto" chunks hold about this many bytes of logits (the only O(chunk x V) buffer)
_CHUNK_BYTES = 64 << 20
# ... but at least this many rows, so each matrix product stays efficient
_MIN_AUTO_CHUNK = 256
# after the first chunk the weight gradient is accumulated through a temporary of about this
# many bytes (a block of its rows): small next to the outputs, large enough for efficient BLAS
_ACCUMULATE_BYTES = 4 << 20


def auto_chunk_size(n_rows: int, num_classes: int, itemsize: int = 4) -> int:
    """The chunk of tokens ``chunk_size="auto"`` picks: a power of two with about 64 MiB of
    logits, at least 256 rows, at most ``n_rows``."""
    rows = max(1, _CHUNK_BYTES // max(1, num_classes * itemsize))
    rows = max(_MIN_AUTO_CHUNK, 1 << (rows.bit_length() - 1))
    return max(1, min(n_rows, rows))


def check_linear_ce_args(
    xp, input, weight, target, bias, ignore_index, label_smoothing, z_loss, softcap, reduction, chunk_size
):
    """Validate :func:`linear_cross_entropy`'s arguments; return the normalised options."""
    check_float_array(xp, input, "input")
    check_float_array(xp, weight, "weight")
    if input.ndim < 1:
        raise ValueError("input must have a feature axis (last); got a 0-d array")
    check_nonempty(input, "input")
    if weight.ndim != 2:
        raise ValueError(f"weight must be 2-d (num_classes, in_features); got shape {tuple(weight.shape)}")
    d = input.shape[-1]
    if weight.shape[1] != d:
        raise ValueError(
            f"weight must have shape (num_classes, {d}) to match input's last axis of size {d}; "
            f"got {tuple(weight.shape)}"
        )
    num_classes = weight.shape[0]
    if num_classes < 1:
        raise ValueError("weight must have at least one row (class)")
    check_integer_array(xp, target, "target")
    if tuple(target.shape) != tuple(input.shape[:-1]):
        raise ValueError(
            f"target must have input's shape without the last (feature) axis: expected "
            f"{tuple(input.shape[:-1])}, got {tuple(target.shape)}"
        )
    if bias is not None:
        check_float_array(xp, bias, "bias")
        if tuple(bias.shape) != (num_classes,):
            raise ValueError(f"bias must have shape ({num_classes},); got {tuple(bias.shape)}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"ignore_index must be an int; got {type(ignore_index).__name__}")
    check_class_indices(xp, target, num_classes, ignore_index, "target")
    eps = check_number(label_smoothing, "label_smoothing", low=0.0, high=1.0)
    z = check_number(z_loss, "z_loss", low=0.0)
    cap = None if softcap is None else check_number(softcap, "softcap", low=0.0, low_inclusive=False)
    check_reduction(reduction)
    if chunk_size != "auto" and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be 'auto' or a positive int; got {chunk_size!r}")
    return num_classes, eps, z, cap


@catalogued(
    family="classification",
    input_space="embeddings",
    formula="cross_entropy(x W^T + b, t), chunked",
    torch="F.linear_cross_entropy",
    optax=None,
    keras=None,
)
@loss_function
def linear_cross_entropy(
    input: Array,
    weight: Array,
    target: Array,
    bias: Array | None = None,
    *,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: str = "mean",
    chunk_size: int | str = "auto",
    wrt: frozenset[int] = frozenset(),
) -> Array:
    r"""Cross-entropy of a linear layer's output, without materialising the logits.

    Computes :math:`\ell_i = \mathrm{CE}(z_i, t_i)` with logits :math:`z = x W^\top + b`
    (optionally soft-capped, :math:`z \to c \tanh(z / c)`), i.e. with
    :math:`\mathrm{lse}_i = \log\sum_v e^{z_{iv}}` and :math:`C` classes:
    :math:`\ell_i = (1-\varepsilon)(\mathrm{lse}_i - z_{it_i})
    + \tfrac{\varepsilon}{C}\sum_v(\mathrm{lse}_i - z_{iv}) + \lambda\,\mathrm{lse}_i^2`,
    exactly ``cross_entropy(input @ weight.T + bias, target, ...)``.

    The tokens are processed ``chunk_size`` rows at a time: each chunk's logits are computed,
    turned into the gradient :math:`G = \partial\ell/\partial z` in the same buffer, and folded
    into :math:`\partial/\partial x = G W`, :math:`\partial/\partial W \mathrel{+}= G^\top x`
    and :math:`\partial/\partial b \mathrel{+}= \sum_i G_i`.  Live memory beyond the inputs and
    gradients is O(chunk x V); no value is read back to the host inside the loop.

    Gradients: ``losskit.value_and_grad(linear_cross_entropy, argnums=(0, 1))(x, W, t)``
    returns ``(loss, (grad_input, grad_weight))``; argnum 3 is ``bias`` (pass it positionally,
    or by keyword as usual: ``value_and_grad(linear_cross_entropy, argnums=(0, 1, 3))(x, W, t,
    b)`` adds ``grad_bias``).  For ``reduction="none"`` the gradients are those of the sum of
    the per-token losses.

    Args:
      input: hidden states, shape ``(..., D)``.
      weight: the output layer's weight, shape ``(V, D)`` (PyTorch's ``nn.Linear`` layout).
      target: integer class indices, shape ``input.shape[:-1]``.
      bias: optional output-layer bias, shape ``(V,)`` (default None).
      ignore_index: target value that does not count (default -100).
      label_smoothing: :math:`\varepsilon` in [0, 1] (default 0).
      z_loss: :math:`\lambda \ge 0` (default 0), penalising :math:`\mathrm{lse}^2`.
      softcap: :math:`c > 0` caps the logits to :math:`(-c, c)` with
        :math:`c\tanh(z/c)` before the softmax (Gemma-style; default None, no cap).
      reduction: ``"mean"`` (default; over the counted tokens, 0 with zero gradients when
        every token is ignored), ``"sum"`` or ``"none"`` (per-token losses, 0 where ignored).
      chunk_size: tokens per chunk, or ``"auto"`` (default: about 64 MiB of logits per chunk,
        at least 256 tokens).

    Equivalent: ``torch.nn.functional.linear_cross_entropy(input, weight, target,
    linear_bias=bias, ...)`` and ``F.cross_entropy(F.linear(input, weight, bias), target)``;
    the chunked kernels of Liger and Apple's cut-cross-entropy.
    """
    xp = namespace(input=input, weight=weight, target=target, bias=bias)
    num_classes, eps, z, cap = check_linear_ce_args(
        xp,
        input,
        weight,
        target,
        bias,
        ignore_index,
        label_smoothing,
        z_loss,
        softcap,
        reduction,
        chunk_size,
    )
    out_dtype = xp.result_type(input.dtype, weight.dtype)
    dtype = compute_dtype(xp, out_dtype)
    d = input.shape[-1]
    lead = tuple(input.shape[:-1])
    n = math.prod(lead)
    # lift casts only when the dtype differs: no copies of the (possibly large) weight
    x2 = xp.reshape(lift(xp, input, dtype), (n, d))
    w = lift(xp, weight, dtype)
    b = None if bias is None else lift(xp, bias, dtype)
    t = xp.reshape(target, (n,))
    valid = t != ignore_index
    safe_t = xp.where(valid, t, xp.zeros_like(t))
    count = xp.sum(xp.astype(valid, dtype))
    if reduction == "mean":  # 0, with zero gradients, when every token is ignored
        positive = count > 0
        safe = xp.where(positive, count, xp.ones_like(count))
        factor = xp.where(positive, 1.0 / safe, xp.zeros_like(count))
    else:
        factor = xp.ones_like(count)
    row_scale = xp.where(valid, xp.broadcast_to(factor, valid.shape), xp.zeros_like(factor))
    need = (0 in wrt, 1 in wrt, 3 in wrt and b is not None)
    chunk = auto_chunk_size(n, num_classes, 4) if chunk_size == "auto" else min(chunk_size, n)
    if type(x2) is np.ndarray:
        row_loss, gx, gw, gb = numpy_core(
            x2, w, b, np.asarray(safe_t), np.asarray(valid), np.asarray(row_scale), eps, z, cap, chunk, need
        )
    else:
        row_loss, gx, gw, gb = xp_core(xp, x2, w, b, safe_t, valid, row_scale, eps, z, cap, chunk, need)
    per_token = xp.where(valid, row_loss, xp.zeros_like(row_loss))
    if reduction == "none":
        value = xp.reshape(per_token, lead)
    else:
        value = xp.sum(per_token) * factor
    grads = {}
    if need[0]:
        grads[0] = xp.reshape(gx, tuple(input.shape))
    if need[1]:
        grads[1] = gw
    if need[2]:
        grads[3] = gb
    return finish(xp, out_dtype, value, grads)


def _one_hot(xp, index, num_classes, dtype):
    return xp.astype(xp.expand_dims(index, axis=-1) == xp.arange(num_classes, dtype=index.dtype), dtype)


def xp_core(xp, x2, w, b, safe_t, valid, row_scale, eps, z, cap, chunk, need):
    """The chunk loop in portable array-API operations (any library, any device).

    Returns ``(row_loss, grad_input, grad_weight, grad_bias)`` (``None`` for gradients not in
    ``need``); the gradients are those of ``sum(row_scale * row_loss)``.
    """
    n = x2.shape[0]
    num_classes = w.shape[0]
    need_any = any(need)
    losses, gxs = [], []
    gw = xp.zeros(w.shape, dtype=w.dtype) if need[1] else None
    gb = xp.zeros(b.shape, dtype=w.dtype) if need[2] else None
    wt = xp.matrix_transpose(w)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        xc = x2[lo:hi, ...]
        logits = xc @ wt
        if b is not None:
            logits = logits + b
        if cap is not None:
            capped = xp.tanh(logits / cap)
            logits = cap * capped
        m = xp.max(logits, axis=-1, keepdims=True)
        m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
        e = xp.exp(logits - m)
        total = xp.sum(e, axis=-1, keepdims=True)
        lse = xp.squeeze(m + xp.log(total), axis=-1)
        t_c = safe_t[lo:hi]
        onehot = _one_hot(xp, t_c, num_classes, logits.dtype)
        z_t = xp.sum(logits * onehot, axis=-1)
        loss = (1.0 - eps) * (lse - z_t)
        if eps > 0:
            loss = loss + (eps / num_classes) * (num_classes * lse - xp.sum(logits, axis=-1))
        if z > 0:
            loss = loss + z * lse * lse
        losses.append(loss)
        if not need_any:
            continue
        a = xp.ones_like(lse) if z == 0 else 1.0 + (2.0 * z) * lse
        s = row_scale[lo:hi]
        g = (e / total) * xp.expand_dims(s * a, axis=-1) - (1.0 - eps) * onehot * xp.expand_dims(s, axis=-1)
        if eps > 0:
            g = g - (eps / num_classes) * xp.expand_dims(s, axis=-1)
        if cap is not None:
            g = g * (1.0 - capped * capped)
        if need[0]:
            gxs.append(g @ w)
        if need[1]:
            gw = gw + xp.matrix_transpose(g) @ xc
        if need[2]:
            gb = gb + xp.sum(g, axis=0)
    row_loss = xp.concat(losses, axis=0)
    gx = (xp.concat(gxs, axis=0) if len(gxs) > 1 else gxs[0]) if need[0] else None
    return row_loss, gx, gw, gb


def numpy_core(x2, w, b, safe_t, valid, row_scale, eps, z, cap, chunk, need, out=None):
    """The chunk loop for NumPy (and, through shared memory, CPU PyTorch tensors).

    One (chunk, V) buffer is reused for every chunk: the logits are written into it by one
    matrix product, the fused row kernel of :mod:`losskit.fused` turns them into the
    gradient in place, and two more matrix products fold it into the input's and the
    weight's gradients.  ``out`` optionally supplies preallocated ``(grad_input,
    grad_weight, grad_bias)`` arrays (any may be None).
    """
    from .fused import _numpy_ce_rows, _Spec

    n, d = x2.shape
    v = w.shape[0]
    dtype = x2.dtype
    need_any = any(need)
    out = out or (None, None, None)
    buf = np.empty((min(chunk, n), v), dtype=dtype)
    deriv = np.empty_like(buf) if cap is not None and need_any else None
    gx = (out[0] if out[0] is not None else np.empty((n, d), dtype=dtype)) if need[0] else None
    gw = (out[1] if out[1] is not None else np.empty((v, d), dtype=dtype)) if need[1] else None
    gb = (out[2] if out[2] is not None else np.empty(v, dtype=dtype)) if need[2] else None
    vocab_block = max(1, min(v, _ACCUMULATE_BYTES // (d * dtype.itemsize)))
    tmp = np.empty((vocab_block, d), dtype=dtype) if need[1] and n > chunk else None
    row_loss = np.empty(n, dtype=dtype)
    wt = w.T
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        xc = x2[lo:hi]
        lb = buf[: hi - lo]
        np.matmul(xc, wt, out=lb)
        if b is not None:
            np.add(lb, b, out=lb)
        if cap is not None:
            np.multiply(lb, dtype.type(1.0 / cap), out=lb)
            np.tanh(lb, out=lb)
            if deriv is not None:  # d(c tanh(z/c))/dz = 1 - tanh^2, kept for after the softmax
                db = deriv[: hi - lo]
                np.multiply(lb, lb, out=db)
                np.subtract(dtype.type(1.0), db, out=db)
            np.multiply(lb, dtype.type(cap), out=lb)
        spec = _Spec(
            num_classes=v,
            inv_t=1.0,
            eps=eps,
            z=z,
            w=None,
            w_total=float(v),
            safe_t=safe_t[lo:hi],
            w_t=None,
            q=None,
            row_scale=row_scale[lo:hi],
            skip=~valid[lo:hi],
        )
        _numpy_ce_rows(lb, lb if need_any else None, row_loss[lo:hi], spec)
        if not need_any:
            continue
        if deriv is not None:
            np.multiply(lb, deriv[: hi - lo], out=lb)
        if need[0]:
            np.matmul(lb, w, out=gx[lo:hi])
        if need[1]:
            if lo == 0:
                np.matmul(lb.T, xc, out=gw)
            else:  # accumulate block by block so the temporary stays small
                for v0 in range(0, v, vocab_block):
                    v1 = min(v, v0 + vocab_block)
                    tb = tmp[: v1 - v0]
                    np.matmul(lb[:, v0:v1].T, xc, out=tb)
                    np.add(gw[v0:v1], tb, out=gw[v0:v1])
        if need[2]:
            if lo == 0:
                np.sum(lb, axis=0, out=gb)
            else:
                gb += lb.sum(axis=0)
    return row_loss, gx, gw, gb
