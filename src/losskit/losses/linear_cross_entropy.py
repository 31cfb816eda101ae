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

The chunk loop here is portable (any array library, any device).  Faster versions are reached
through :mod:`losskit.core.dispatch`: ``"linear_cross_entropy"`` for a framework that
differentiates the whole loss itself (torch's autograd Function, JAX's custom derivative) and
``"linear_cross_entropy_chunks"`` for a faster chunk loop (NumPy's, writing into one reused
buffer).
"""

from __future__ import annotations

from ..core import numerics
from ..core.backend import Array, Namespace, compute_dtype, finish, library_name, lift, namespace
from ..core.catalog import catalogued
from ..core.dispatch import dispatch, run_fast_path
from ..core.gradients import LossResult, loss_function
from ..core.reduction import Reduction
from ..core.specs import LinearCrossEntropyArrays, LinearCrossEntropyOptions, LinearCrossEntropySpec

__all__ = ["linear_cross_entropy"]


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
    reduction: Reduction = "mean",
    chunk_size: int | str = "auto",
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
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
    # the options' fields are this signature's options, in its order
    options = LinearCrossEntropyOptions(ignore_index, label_smoothing, z_loss, softcap, reduction, chunk_size)
    arrays = LinearCrossEntropyArrays(input, weight, target, bias)
    spec = LinearCrossEntropySpec.of(xp, options, arrays)
    return dispatch(
        "linear_cross_entropy", library_name(input), portable_linear_cross_entropy, xp, spec, arrays, wrt
    )


def portable_linear_cross_entropy(
    xp: Namespace, spec: LinearCrossEntropySpec, arrays: LinearCrossEntropyArrays, wrt: frozenset[int]
) -> LossResult:
    """:func:`linear_cross_entropy` for a validated ``spec``: ``(value, grads)`` with the
    gradients of the arguments in ``wrt`` (0 input, 1 weight, 3 bias)."""
    input, weight, target, bias = arrays
    out_dtype = xp.result_type(input.dtype, weight.dtype)
    dtype = compute_dtype(xp, out_dtype)
    n = spec.num_tokens
    # lift casts only when the dtype differs: no copies of the (possibly large) weight
    x2 = xp.reshape(lift(xp, input, dtype), (n, spec.hidden))
    w = lift(xp, weight, dtype)
    b = None if bias is None else lift(xp, bias, dtype)
    t = xp.reshape(target, (n,))
    valid = t != spec.ignore_index
    safe_t = xp.where(valid, t, xp.zeros_like(t))
    count = xp.sum(xp.astype(valid, dtype))
    if spec.reduction == "mean":  # 0, with zero gradients, when every token is ignored
        positive = count > 0
        safe = xp.where(positive, count, xp.ones_like(count))
        factor = xp.where(positive, 1.0 / safe, xp.zeros_like(count))
    else:
        factor = xp.ones_like(count)
    row_scale = xp.where(valid, xp.broadcast_to(factor, valid.shape), xp.zeros_like(factor))
    need = (0 in wrt, 1 in wrt, 3 in wrt and b is not None)
    sweep = (x2, w, b, safe_t, valid, row_scale, spec, need)
    result = run_fast_path("linear_cross_entropy_chunks", library_name(x2), *sweep)
    row_loss, gx, gw, gb = chunk_sweep(xp, *sweep) if result is None else result
    per_token = xp.where(valid, row_loss, xp.zeros_like(row_loss))
    if spec.reduction == "none":
        value = xp.reshape(per_token, spec.lead_shape)
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


def chunk_sweep(
    xp: Namespace,
    x2: Array,
    w: Array,
    b: Array | None,
    safe_t: Array,
    valid: Array,
    row_scale: Array,
    spec: LinearCrossEntropySpec,
    need: tuple[bool, bool, bool],
) -> tuple[Array, Array | None, Array | None, Array | None]:
    """The chunk loop in portable array-API operations (any library, any device).

    ``x2`` is ``(N, D)``, ``w`` ``(V, D)``, ``b`` ``(V,)`` or None, all in the compute dtype;
    ``safe_t`` the targets with ignored ones replaced by 0.  Returns ``(row_loss, grad_input,
    grad_weight, grad_bias)`` (``None`` for gradients not in ``need``: input, weight, bias);
    the gradients are those of ``sum(row_scale * row_loss)``.
    """
    eps, z, cap, chunk = spec.label_smoothing, spec.z_loss, spec.softcap, spec.chunk
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
        onehot = numerics.one_hot(xp, t_c, num_classes, logits.dtype)
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
