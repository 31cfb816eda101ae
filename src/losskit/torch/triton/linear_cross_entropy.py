r"""Linear cross-entropy in Triton: the output layer and the loss in one kernel, the logits never
in global memory (Cut Cross-Entropy's scheme).

The logits of token :math:`i` are :math:`z_{iv} = x_i \cdot w_v + b_v`, optionally soft-capped
to :math:`\tilde z = c\tanh(z / c)`.  With :math:`\mathrm{lse}_i = \log\sum_v e^{\tilde z_{iv}}`,
:math:`V` classes, label smoothing :math:`\varepsilon` and z-loss :math:`\lambda`, the loss is
:func:`losskit.linear_cross_entropy`'s

.. math::

   \ell_i = (1-\varepsilon)(\mathrm{lse}_i - \tilde z_{it_i})
            + \tfrac{\varepsilon}{V}\Big(V\,\mathrm{lse}_i - \sum_v \tilde z_{iv}\Big)
            + \lambda\,\mathrm{lse}_i^2 .

**Forward** (one program per block of ``BLOCK_N`` tokens): for each block of ``BLOCK_V``
classes the ``BLOCK_N x BLOCK_V`` tile of logits is computed in registers by a matrix product
over the hidden size in steps of ``BLOCK_D`` (``tl.dot``, float32 accumulation), then folded
into a running maximum :math:`m` and sum :math:`d` per token -- the online log-sum-exp:
:math:`m' = \max(m, \max_v z_v)`, :math:`d' = d\,e^{m - m'} + \sum_v e^{z_v - m'}` -- together
with the target's logit and (for smoothing) the sum of the logits.  Only
:math:`\mathrm{lse}_i = m + \log d` and the loss leave the kernel: O(N) memory.

**Backward** (one program per tile of tokens x classes): the tile of logits is recomputed and
turned into :math:`G = s_i\,\partial\ell_i/\partial z` with the saved :math:`\mathrm{lse}`
(:math:`s_i` the row's scale: the reduction's factor, or the upstream gradient; 0 for an
ignored token):

.. math::

   G_{iv} = s_i\Big[(1 + 2\lambda\,\mathrm{lse}_i)\,p_{iv} - (1-\varepsilon)[v = t_i]
            - \tfrac{\varepsilon}{V}\Big]\,\big(1 - \tanh^2(z_{iv}/c)\big),\qquad
   p_{iv} = e^{\tilde z_{iv} - \mathrm{lse}_i}

(the last factor is :math:`d\tilde z/dz`, present only with a soft cap).  The tile's
contributions :math:`G W_{v\cdot}` to the input's gradient, :math:`G^\top X_{i\cdot}` to the
weight's and :math:`\sum_i G_{iv}` to the bias's are added with atomic float32 additions, so no
N x V buffer is ever written.  The backward makes three matrix products per tile (the
recomputation and the two gradients), the minimum without storing the logits.

Inputs are float32, bfloat16 or float16 (input and weight brought to their common dtype); the
products accumulate in float32 (float32 inputs in IEEE float32 unless
``torch.backends.cuda.matmul.allow_tf32`` is set), and the gradients are accumulated in float32.
``chunk_size`` does not apply: the blocks are the kernel's own.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["linear_cross_entropy_sweep", "linear_log_sum_exp", "linear_log_probs_sweep"]


@triton.jit
def _tanh(u):
    # tanh(u) = sign(u) (1 - e^{-2|u|}) / (1 + e^{-2|u|}): no overflow for any u
    e = tl.exp(-2.0 * tl.abs(u))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(u < 0, -t, t)


@triton.jit
def _logits_tile(
    X, W, B, rows, rmask, cols, cmask, stride_x, stride_w, D, softcap, inv_t,
    HAS_BIAS: tl.constexpr, SOFTCAP: tl.constexpr, TEMPERED: tl.constexpr,
    PRECISION: tl.constexpr, DOT_F32: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """The (BLOCK_N, BLOCK_V) tile of logits -- soft-capped, then divided by the temperature --
    and tanh(z / c) (1 without a cap)."""
    acc = tl.zeros((BLOCK_N, BLOCK_V), dtype=tl.float32)
    for k0 in range(0, D, BLOCK_D):
        ks = k0 + tl.arange(0, BLOCK_D)
        kmask = ks < D
        a = tl.load(X + rows[:, None] * stride_x + ks[None, :], mask=rmask[:, None] & kmask[None, :], other=0)
        b = tl.load(W + cols[:, None] * stride_w + ks[None, :], mask=cmask[:, None] & kmask[None, :], other=0)
        if DOT_F32:
            a, b = a.to(tl.float32), b.to(tl.float32)
        acc = tl.dot(a, tl.trans(b), acc, input_precision=PRECISION)
    if HAS_BIAS:
        acc += tl.load(B + cols, mask=cmask, other=0.0).to(tl.float32)[None, :]
    th = tl.full((BLOCK_N, BLOCK_V), 1.0, tl.float32)
    if SOFTCAP:
        th = _tanh(acc / softcap)
        acc = softcap * th
    if TEMPERED:
        acc = acc * inv_t
    return acc, th


@triton.jit
def _forward_kernel(
    X, W, B, T, LSE, LOSS, ZBAR, ENT, N, V, D, stride_x, stride_w, softcap, inv_t, eps, z_coef,
    HAS_BIAS: tl.constexpr, SOFTCAP: tl.constexpr, TEMPERED: tl.constexpr, SMOOTH: tl.constexpr,
    ZLOSS: tl.constexpr, ENTROPY: tl.constexpr, PRECISION: tl.constexpr, DOT_F32: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    rmask = rows < N
    t = tl.load(T + rows, mask=rmask, other=0)
    m = tl.full((BLOCK_N,), -float("inf"), tl.float32)
    d = tl.zeros((BLOCK_N,), tl.float32)  # sum_v e^(z_v - m)
    a = tl.zeros((BLOCK_N,), tl.float32)  # sum_v e^(z_v - m) (z_v - m), for the entropy
    z_t = tl.zeros((BLOCK_N,), tl.float32)
    z_sum = tl.zeros((BLOCK_N,), tl.float32)
    for v0 in range(0, V, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)
        cmask = cols < V
        z, th = _logits_tile(
            X, W, B, rows, rmask, cols, cmask, stride_x, stride_w, D, softcap, inv_t,
            HAS_BIAS, SOFTCAP, TEMPERED, PRECISION, DOT_F32, BLOCK_N, BLOCK_V, BLOCK_D,
        )
        z_in = tl.where(cmask[None, :], z, -float("inf"))
        # online log-sum-exp: a new maximum m' rescales the running sums by r = e^(m - m'):
        # d' = r d + sum e^(z - m'), and a (relative to the maximum, so nothing cancels)
        # a' = r (a + (m - m') d) + sum e^(z - m') (z - m')
        m_new = tl.maximum(m, tl.max(z_in, axis=1))
        r = tl.exp(m - m_new)
        zs = z_in - m_new[:, None]
        e = tl.exp(zs)
        if ENTROPY:
            # z (finite in the padding columns) rather than zs (-inf there): no 0 * inf
            block_a = tl.sum(tl.where(cmask[None, :], e * (z - m_new[:, None]), 0.0), axis=1)
            step = tl.where(d > 0, m - m_new, 0.0)  # m is -inf before the first block
            a = r * (a + step * d) + block_a
        d = d * r + tl.sum(e, axis=1)
        m = m_new
        z_t += tl.sum(tl.where(cols[None, :] == t[:, None], z, 0.0), axis=1)
        if SMOOTH:
            z_sum += tl.sum(tl.where(cmask[None, :], z, 0.0), axis=1)
    lse = m + tl.log(d)
    loss = (1.0 - eps) * (lse - z_t)
    if SMOOTH:
        loss += eps / V * (V * lse - z_sum)
    if ZLOSS:
        loss += z_coef * lse * lse
    tl.store(LSE + rows, lse, mask=rmask)
    tl.store(LOSS + rows, loss, mask=rmask)
    if ENTROPY:  # zbar = sum p z = m + a / d, H = lse - zbar = log d - a / d
        shift = a / d
        tl.store(ZBAR + rows, m + shift, mask=rmask)
        tl.store(ENT + rows, tl.log(d) - shift, mask=rmask)


@triton.jit
def _backward_kernel(
    X, W, B, T, LSE, S, H, ZBAR, GX, GW, GB, N, V, D, stride_x, stride_w, softcap, inv_t, eps, z_coef,
    HAS_BIAS: tl.constexpr, SOFTCAP: tl.constexpr, TEMPERED: tl.constexpr, SMOOTH: tl.constexpr,
    ZLOSS: tl.constexpr, ENTROPY: tl.constexpr,
    NEED_X: tl.constexpr, NEED_W: tl.constexpr, NEED_B: tl.constexpr,
    PRECISION: tl.constexpr, DOT_F32: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.program_id(1).to(tl.int64) * BLOCK_V + tl.arange(0, BLOCK_V)
    rmask = rows < N
    cmask = cols < V
    t = tl.load(T + rows, mask=rmask, other=0)
    lse = tl.load(LSE + rows, mask=rmask, other=0.0)
    s = tl.load(S + rows, mask=rmask, other=0.0)
    z, th = _logits_tile(
        X, W, B, rows, rmask, cols, cmask, stride_x, stride_w, D, softcap, inv_t,
        HAS_BIAS, SOFTCAP, TEMPERED, PRECISION, DOT_F32, BLOCK_N, BLOCK_V, BLOCK_D,
    )
    p = tl.exp(z - lse[:, None])
    a = s
    if ZLOSS:
        a = s * (1.0 + 2.0 * z_coef * lse)
    g = p * a[:, None] - tl.where(cols[None, :] == t[:, None], ((1.0 - eps) * s)[:, None], 0.0)
    if SMOOTH:
        g -= (eps / V * s)[:, None]
    if ENTROPY:  # an upstream factor h on the entropy: dH/dz = -p (z - zbar)
        h = tl.load(H + rows, mask=rmask, other=0.0)
        zbar = tl.load(ZBAR + rows, mask=rmask, other=0.0)
        g -= h[:, None] * p * (z - zbar[:, None])
    if TEMPERED:  # z = logits / T
        g *= inv_t
    if SOFTCAP:
        g *= 1.0 - th * th
    tile = rmask[:, None] & cmask[None, :]
    g = tl.where(tile, g, 0.0)
    if NEED_B:
        tl.atomic_add(GB + cols, tl.sum(g, axis=0), mask=cmask)
    gl = g.to(X.dtype.element_ty)  # the products run in the inputs' dtype, as the forward's
    if DOT_F32:
        gl = gl.to(tl.float32)
    for k0 in range(0, D, BLOCK_D):
        ks = k0 + tl.arange(0, BLOCK_D)
        kmask = ks < D
        if NEED_X:  # dL/dx_i += sum_v G_iv w_v
            wmask = cmask[:, None] & kmask[None, :]
            w = tl.load(W + cols[:, None] * stride_w + ks[None, :], mask=wmask, other=0.0)
            if DOT_F32:
                w = w.to(tl.float32)
            dx = tl.dot(gl, w, input_precision=PRECISION)
            tl.atomic_add(GX + rows[:, None] * D + ks[None, :], dx, mask=rmask[:, None] & kmask[None, :])
        if NEED_W:  # dL/dw_v += sum_i G_iv x_i
            xmask = rmask[:, None] & kmask[None, :]
            x = tl.load(X + rows[:, None] * stride_x + ks[None, :], mask=xmask, other=0.0)
            if DOT_F32:
                x = x.to(tl.float32)
            dw = tl.dot(tl.trans(gl), x, input_precision=PRECISION)
            tl.atomic_add(GW + cols[:, None] * D + ks[None, :], dw, mask=cmask[:, None] & kmask[None, :])


def _blocks(x: torch.Tensor) -> tuple[int, int, int, int]:
    """(BLOCK_N, BLOCK_V, BLOCK_D, num_warps): small tiles under the interpreter (CPU tensors),
    tensor-core sized ones on the GPU."""
    if x.device.type != "cuda":
        return 16, 32, 16, 4
    return 64, 128, (64 if x.element_size() == 2 else 32), 8


def _dot_f32(x: torch.Tensor) -> bool:
    """Triton's interpreter (CPU tensors) multiplies bfloat16 tiles wrongly (it has no NumPy
    bfloat16): there the tiles are widened to float32 before ``tl.dot``.  On the GPU the tensor
    cores take bfloat16 as it is."""
    return x.dtype == torch.bfloat16 and x.device.type != "cuda"


def _precision(x: torch.Tensor) -> str:
    if x.dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32:
        return "ieee"
    return "tf32"


def _prepare(x2, w, b, dtype):
    dtype = dtype if dtype in (torch.float32, torch.bfloat16, torch.float16) else torch.float32
    x2 = x2.to(dtype).contiguous()
    w = w.to(dtype).contiguous()
    b = None if b is None else b.contiguous()
    return x2, w, b


def _options(softcap, temperature, eps, z_coef):
    return {
        "scalars": (float(softcap or 1.0), 1.0 / temperature, float(eps), float(z_coef)),
        "flags": {
            "SOFTCAP": softcap is not None,
            "TEMPERED": temperature != 1.0,
            "SMOOTH": eps > 0,
            "ZLOSS": z_coef > 0,
        },
    }


def _launch_forward(x2, w, b, t, options, *, entropy=False):
    """``(lse, row_loss, zbar, entropy)`` of every token (float32; the last two None unless
    ``entropy``)."""
    n, hidden = x2.shape
    v = w.shape[0]
    bn, bv, bd, warps = _blocks(x2)
    new = lambda: torch.empty(n, device=x2.device, dtype=torch.float32)  # noqa: E731
    lse, loss = new(), new()
    zbar, ent = (new(), new()) if entropy else (lse, lse)
    _forward_kernel[(triton.cdiv(n, bn),)](
        x2, w, x2 if b is None else b, t, lse, loss, zbar, ent, n, v, hidden, x2.stride(0), w.stride(0),
        *options["scalars"], HAS_BIAS=b is not None, ENTROPY=entropy, **options["flags"],
        PRECISION=_precision(x2), DOT_F32=_dot_f32(x2), BLOCK_N=bn, BLOCK_V=bv, BLOCK_D=bd, num_warps=warps,
    )
    return lse, loss, (zbar if entropy else None), (ent if entropy else None)


def _launch_backward(x2, w, b, t, lse, scale, need, options, *, h=None, zbar=None):
    """The gradients in ``need`` (hidden states, weight, bias; float32) of
    ``sum(scale * row_loss) + sum(h * entropy)``."""
    n, hidden = x2.shape
    v = w.shape[0]
    need_x, need_w, need_b = need[0], need[1], bool(need[2]) and b is not None
    f32 = torch.float32
    gx = torch.zeros((n, hidden), device=x2.device, dtype=f32) if need_x else lse
    gw = torch.zeros((v, hidden), device=x2.device, dtype=f32) if need_w else lse
    gb = torch.zeros(v, device=x2.device, dtype=f32) if need_b else lse
    bn, bv, bd, warps = _blocks(x2)
    _backward_kernel[(triton.cdiv(n, bn), triton.cdiv(v, bv))](
        x2, w, x2 if b is None else b, t, lse, scale, lse if h is None else h, lse if zbar is None else zbar,
        gx, gw, gb, n, v, hidden, x2.stride(0), w.stride(0),
        *options["scalars"], HAS_BIAS=b is not None, ENTROPY=h is not None, **options["flags"],
        NEED_X=need_x, NEED_W=need_w, NEED_B=need_b,
        PRECISION=_precision(x2), DOT_F32=_dot_f32(x2), BLOCK_N=bn, BLOCK_V=bv, BLOCK_D=bd, num_warps=warps,
    )
    return gx if need_x else None, gw if need_w else None, gb if need_b else None


def _ce_options(spec):
    return _options(spec.softcap, 1.0, spec.label_smoothing, spec.z_loss)


def linear_log_sum_exp(x2, w, b, t, spec) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lse, row_loss)`` of every token (float32, shape ``(N,)``) for hidden states ``x2``
    ``(N, D)``, weight ``w`` ``(V, D)``, bias ``b`` and int64 targets ``t`` (ignored ones
    replaced by a valid class) under linear cross-entropy's ``spec``: the forward kernel alone."""
    x2, w, b = _prepare(x2, w, b, torch.promote_types(x2.dtype, w.dtype))
    lse, loss, _, _ = _launch_forward(x2, w, b, t.to(torch.int64).contiguous(), _ce_options(spec))
    return lse, loss


def linear_cross_entropy_sweep(x2, w, b, safe_t, valid, row_scale, spec, need, dtype):
    """``(row_loss, grad_input, grad_weight, grad_bias)`` as the chunk sweeps of
    :mod:`losskit.torch.functional` return them: the losses of every token (float32, ``(N,)``)
    and the gradients of ``sum(row_scale * row_loss)`` asked for in ``need`` (input, weight,
    bias; float32, ``None`` where not asked)."""
    x2, w, b = _prepare(x2, w, b, dtype)
    t = safe_t.to(torch.int64).contiguous()
    options = _ce_options(spec)
    lse, loss, _, _ = _launch_forward(x2, w, b, t, options)
    if not any(need):
        return loss, None, None, None
    f32 = torch.float32
    scale = torch.where(valid, row_scale.to(f32), torch.zeros((), device=x2.device, dtype=f32)).contiguous()
    return (loss, *_launch_backward(x2, w, b, t, lse, scale, need, options))


def linear_log_probs_sweep(x2, w, b, safe_t, spec, *, entropy=False, cotangents=None, stats=None,
                           need=(False, False, False)):
    r"""One sweep of :func:`losskit.linear_log_probs` (the contract of
    :func:`losskit.losses.log_probs.log_prob_sweep`) on the linear cross-entropy kernels.

    :math:`\log p(t_i) = z_{it_i} - \mathrm{lse}_i` is minus the unsmoothed cross-entropy of
    the tempered logits, so the forward kernel gives it (with the entropy
    :math:`H_i = \mathrm{lse}_i - \bar z_i` from one more online sum); the gradient of
    :math:`\sum_i g_i \log p(t_i) + h_i H_i` is the backward kernel's with the row scale
    :math:`s_i = -g_i` and the entropy term :math:`-h_i\,p_{iv}(z_{iv} - \bar z_i)`, divided by
    :math:`T`.  Returns a :class:`~losskit.losses.log_probs.LogProbSweep`."""
    from ...losses.log_probs import LogProbSweep

    x2, w, b = _prepare(x2, w, b, torch.promote_types(x2.dtype, w.dtype))
    t = safe_t.to(torch.int64).contiguous()
    options = _options(None, spec.temperature, 0.0, 0.0)
    g, h = cotangents if cotangents is not None else (None, None)
    log_probs = ent = None
    if stats is None:
        lse, loss, zbar, ent = _launch_forward(x2, w, b, t, options, entropy=entropy or h is not None)
        log_probs = -loss
        if not entropy:
            ent = None
    else:
        lse, zbar = stats
    grads = (None, None, None)
    if g is not None and any(need):
        f32 = torch.float32
        scale = (-g.to(f32)).contiguous()
        h32 = None if h is None else h.to(f32).contiguous()
        zb = None if h is None else zbar.to(f32).contiguous()
        grads = _launch_backward(x2, w, b, t, lse.to(f32).contiguous(), scale, need, options, h=h32, zbar=zb)
    return LogProbSweep(log_probs, ent, lse, zbar, *grads)
