r"""Fused cross-entropy in Triton: the loss and its gradient in one kernel, one program per row.

The math is the NumPy row kernel's (:mod:`losskit.kernels.cross_entropy`), written for the GPU.
For one row of logits :math:`x \in \mathbb{R}^C` with temperature :math:`T`, let
:math:`y = x / T`, :math:`\mathrm{lse} = \log\sum_c e^{y_c}` and :math:`p = \mathrm{softmax}(y)`.

Integer target :math:`t` with class weights :math:`w` (all 1 without weights) and label
smoothing :math:`\varepsilon`:

.. math::

   \ell = (1-\varepsilon)\,w_t(\mathrm{lse} - y_t)
          + \tfrac{\varepsilon}{C}\,\Big(W\,\mathrm{lse} - \sum_c w_c y_c\Big)
          + \lambda\,\mathrm{lse}^2,\qquad W = \sum_c w_c .

Soft targets :math:`q` (smoothed to :math:`q' = (1-\varepsilon) q + \varepsilon/C`, weighted
:math:`u_c = w_c q'_c`): :math:`\ell = \mathrm{lse}\sum_c u_c - \sum_c u_c y_c + \lambda\,
\mathrm{lse}^2`.

Since :math:`\partial\,\mathrm{lse}/\partial y_c = p_c`, the gradient of :math:`s\,\ell` (with
:math:`s` the reduction's factor for the row, 0 for a row that does not count) with respect to
the logits is

.. math::

   \frac{\partial (s\ell)}{\partial x_c} = \frac{s}{T}\big(A\,p_c - b_c\big),\qquad
   A = (1-\varepsilon) w_t + \tfrac{\varepsilon}{C} W + 2\lambda\,\mathrm{lse},\quad
   b_c = (1-\varepsilon) w_t [c = t] + \tfrac{\varepsilon}{C} w_c

(soft targets: :math:`A = \sum_c u_c + 2\lambda\,\mathrm{lse}`, :math:`b_c = u_c`).  So the
kernel makes two sweeps over the row's blocks of classes: the first finds :math:`\mathrm{lse}`
with an online maximum and sum (a block's exponentials rescaled by :math:`e^{m_{old} - m_{new}}`
when the maximum grows) together with the sums the loss needs; the second writes the gradient,
block by block, where it read the logits -- into the logits' own buffer when the caller allows
it (Liger-Kernel's in-place scheme: no extra N x C memory), else into one fresh buffer.  The
arithmetic is float32 whatever the input's dtype (float32, bfloat16, float16); the gradient is
stored in the input's dtype.

The reduction (``where``, ``normalizer``, weighted means, ``ignore_index``) is the one of every
other implementation (:func:`losskit.core.reduction.make_reducer`), computed on the device
before the kernel as the per-row factor :math:`s / T`, so no value is read back to the host.

Infinite logits: the kernel computes in IEEE arithmetic, so a row holding ``+inf`` (or only
``-inf``) gives NaN, where the CPU kernels return softmax's limit.
"""

from __future__ import annotations

import array_api_compat
import torch
import triton
import triton.language as tl

from ...core.reduction import make_reducer
from ...core.specs import CrossEntropyArrays, CrossEntropySpec

__all__ = ["cross_entropy_rows"]

_XP = array_api_compat.array_namespace(torch.empty(0))


@triton.jit
def _cross_entropy_kernel(
    X,  # (n_rows, C) logits, row stride stride_x, classes contiguous
    G,  # (n_rows, C) gradient out (may be X itself), row stride stride_g
    T,  # (n_rows,) int64 targets with ignored ones replaced by 0 (hard targets)
    WT,  # (n_rows,) float32 weight of each row's target (hard targets with class weights)
    Q,  # (n_rows, C) target probabilities (soft targets), row stride stride_q
    W,  # (C,) float32 class weights
    WTOT,  # (1,) float32 sum of the class weights
    S,  # (n_rows,) float32 row scale: the reduction's factor / T, 0 where the row does not count
    LOSS,  # (n_rows,) float32 row losses out
    stride_x,
    stride_g,
    stride_q,
    C,
    inv_t,
    eps,
    z_coef,
    SOFT: tl.constexpr,
    WEIGHTED: tl.constexpr,
    SMOOTH: tl.constexpr,
    ZLOSS: tl.constexpr,
    GRAD: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    x_row = X + row * stride_x
    cols = tl.arange(0, BLOCK)
    eps_c = eps / C
    w_total = C * 1.0
    if WEIGHTED:
        w_total = tl.load(WTOT)

    # -- sweep 1: online log-sum-exp of y = x / T, and the sums the loss needs --------------
    m = -float("inf")
    d = 0.0
    wy = 0.0  # sum_c w_c y_c (smoothing, hard targets) or sum_c u_c y_c (soft targets)
    wsum = 0.0  # sum_c u_c (soft targets)
    for start in range(0, C, BLOCK):
        c = start + cols
        inside = c < C
        y = tl.load(x_row + c, mask=inside, other=-float("inf")).to(tl.float32) * inv_t
        m_new = tl.maximum(m, tl.max(y, axis=0))
        # rescale the running sum to the new maximum, add this block's exponentials
        d = d * tl.exp(m - m_new) + tl.sum(tl.where(inside, tl.exp(y - m_new), 0.0), axis=0)
        m = m_new
        y0 = tl.where(inside, y, 0.0)
        if SOFT:
            q = tl.load(Q + row * stride_q + c, mask=inside, other=0.0).to(tl.float32)
            if SMOOTH:
                q = q * (1.0 - eps) + eps_c
            if WEIGHTED:
                q = q * tl.load(W + c, mask=inside, other=0.0)
            q = tl.where(inside, q, 0.0)
            wsum += tl.sum(q, axis=0)
            wy += tl.sum(q * y0, axis=0)
        elif SMOOTH:
            if WEIGHTED:
                wy += tl.sum(tl.load(W + c, mask=inside, other=0.0) * y0, axis=0)
            else:
                wy += tl.sum(y0, axis=0)
    lse = m + tl.log(d)

    # -- the row's loss ------------------------------------------------------------------------
    if SOFT:
        loss = lse * wsum - wy
        a = wsum
    else:
        t = tl.load(T + row)
        y_t = tl.load(x_row + t).to(tl.float32) * inv_t
        w_t = 1.0
        if WEIGHTED:
            w_t = tl.load(WT + row)
        loss = w_t * (lse - y_t)
        a = w_t * (1.0 - eps)
        if SMOOTH:
            loss = (1.0 - eps) * loss + eps_c * (w_total * lse - wy)
            a += eps_c * w_total
    if ZLOSS:
        loss += z_coef * lse * lse
        a += 2.0 * z_coef * lse
    tl.store(LOSS + row, loss)

    # -- sweep 2: the gradient (s / T) (A p - b), written where the logits were read -----------
    if GRAD:
        s = tl.load(S + row)
        g_row = G + row * stride_g
        for start in range(0, C, BLOCK):
            c = start + cols
            inside = c < C
            y = tl.load(x_row + c, mask=inside, other=0.0).to(tl.float32) * inv_t
            g = a * tl.exp(y - lse)  # A p
            if SOFT:
                q = tl.load(Q + row * stride_q + c, mask=inside, other=0.0).to(tl.float32)
                if SMOOTH:
                    q = q * (1.0 - eps) + eps_c
                if WEIGHTED:
                    q = q * tl.load(W + c, mask=inside, other=0.0)
                g -= q
            else:
                g -= tl.where(c == t, (1.0 - eps) * w_t, 0.0)
                if SMOOTH:
                    if WEIGHTED:
                        g -= eps_c * tl.load(W + c, mask=inside, other=0.0)
                    else:
                        g -= eps_c
            # a row that does not count gets exactly 0, even where its softmax is not finite
            g = tl.where(s != 0.0, g * s, 0.0)
            tl.store(g_row + c, g.to(G.dtype.element_ty), mask=inside)


def _block(num_classes: int) -> int:
    return max(16, min(triton.next_power_of_2(num_classes), 4096))


def cross_entropy_rows(
    spec: CrossEntropySpec, arrays: CrossEntropyArrays, *, grad: bool = True, inplace: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(value, grad_input)`` of :func:`losskit.cross_entropy` for a validated ``spec`` on
    tensors of one device: the value in ``input``'s dtype, the gradient of the value with
    respect to ``input`` (of the sum of the per-sample losses for ``reduction="none"``) in
    ``input``'s dtype and shape, or ``None`` when ``grad`` is False.

    ``inplace=True`` writes the gradient into ``input``'s buffer and returns ``input``; it needs
    a contiguous input with the classes along the last axis."""
    input, target, weight, where, normalizer = arrays
    axis, C, sample_shape = spec.axis, spec.num_classes, spec.sample_shape
    last = axis == input.ndim - 1
    if inplace:
        if not grad:
            raise ValueError("inplace=True writes the gradient into input; it needs grad=True")
        if not last or not input.is_contiguous():
            raise ValueError(
                "inplace=True needs a contiguous input with the classes along the last axis; got "
                f"axis={axis}, contiguous={input.is_contiguous()}"
            )
    device = input.device
    f32 = torch.float32
    x = input if last else torch.movedim(input, axis, -1)
    x2 = x.reshape(-1, C)
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    n_rows = x2.shape[0]

    w = None if weight is None else weight.to(device=device, dtype=f32).contiguous()
    dummy = torch.empty(1, device=device, dtype=f32)
    if spec.class_indices:
        t_flat = target.reshape(-1)
        valid = t_flat != spec.ignore_index
        safe_t = torch.where(valid, t_flat, torch.zeros_like(t_flat)).to(torch.int64).contiguous()
        w_t = None if w is None else torch.where(valid, w[safe_t], torch.zeros((), device=device, dtype=f32))
        mean_weights = None if w_t is None else w_t.reshape(sample_shape)
        mask = valid.reshape(sample_shape)
        if where is not None:
            mask = mask & where
        q2 = None
    else:
        safe_t = w_t = mean_weights = None
        mask = where
        q = target if last else torch.movedim(target, axis, -1)
        q2 = q.reshape(-1, C)
        if q2.stride(-1) != 1:
            q2 = q2.contiguous()
    reducer = make_reducer(
        _XP, spec.reduction, sample_shape, f32, where=mask, weights=mean_weights, normalizer=normalizer
    )
    # d(reduced)/d(row loss) / T per row, 0 where the row does not count
    factor = torch.as_tensor(reducer.factor, dtype=f32, device=device) / spec.temperature
    if reducer.mask is None:
        row_scale = factor.expand(n_rows).contiguous()
    else:
        counted = torch.broadcast_to(reducer.mask, sample_shape).reshape(-1)
        row_scale = torch.where(counted, factor, torch.zeros((), device=device, dtype=f32)).contiguous()

    if grad:
        g2 = x2 if inplace else torch.empty_like(x2, memory_format=torch.contiguous_format)
    else:
        g2 = dummy
    row_loss = torch.empty(n_rows, device=device, dtype=f32)
    block = _block(C)
    _cross_entropy_kernel[(n_rows,)](
        x2,
        g2,
        dummy if safe_t is None else safe_t,
        dummy if w_t is None else w_t.contiguous(),
        dummy if q2 is None else q2,
        dummy if w is None else w,
        dummy if w is None else w.sum().reshape(1),
        row_scale,
        row_loss,
        x2.stride(0),
        g2.stride(0) if grad else 0,
        0 if q2 is None else q2.stride(0),
        C,
        1.0 / spec.temperature,
        spec.label_smoothing,
        spec.z_loss,
        SOFT=not spec.class_indices,
        WEIGHTED=w is not None,
        SMOOTH=spec.label_smoothing > 0,
        ZLOSS=spec.z_loss > 0,
        GRAD=grad,
        BLOCK=block,
        num_warps=16 if block >= 4096 else 8 if block >= 1024 else 4,
    )
    value = reducer.value(row_loss.reshape(sample_shape)).to(input.dtype)
    if not grad:
        return value, None
    if inplace:
        return value, input
    g = g2.reshape(x.shape)
    if not last:
        g = torch.movedim(g, -1, axis)
    return value, g
