r"""Per-token log-probabilities of a linear head, chunked so the N x V logits never exist.

Preference optimisation, policy-gradient RL and distillation all start from
:math:`\log p(t_i \mid x_i)`, the log-probability a language model's head gives the token
:math:`t_i` at position :math:`i`, with :math:`z_i = (x_i W^\top + b) / T` and
:math:`\log p(t_i) = z_{i t_i} - \mathrm{lse}(z_i)`.  The naive path materialises the
``(tokens x vocab)`` logits and their log-softmax; :func:`linear_log_probs` walks over chunks of
tokens instead and, for very large vocabularies, over blocks of the vocabulary with an online
log-sum-exp, so only one ``(chunk x vocab_chunk)`` block of logits is ever live.

The result is per token, so its gradient takes one upstream factor per token (the cotangent
:math:`g_i` of the log-probability and :math:`h_i` of the entropy):

.. math::

   \frac{\partial \log p(t_i)}{\partial z_{iv}} = [v = t_i] - p_{iv}, \qquad
   \frac{\partial H_i}{\partial z_{iv}} = -p_{iv}\,(z_{iv} - \bar z_i),
   \quad \bar z_i = \textstyle\sum_u p_{iu} z_{iu}

(from :math:`H = \mathrm{lse} - \sum_u p_u z_u`: :math:`\partial\,\mathrm{lse}/\partial z_v = p_v`
and :math:`\partial \sum_u p_u z_u / \partial z_v = p_v + p_v z_v - p_v \bar z`).  With
:math:`G_{iv} = (g_i([v = t_i] - p_{iv}) - h_i p_{iv}(z_{iv} - \bar z_i)) / T` the gradients are
:math:`\partial/\partial x = G W`, :math:`\partial/\partial W = G^\top x`,
:math:`\partial/\partial b = \sum_i G_i`, folded in chunk by chunk.  The forward keeps per token
only :math:`\mathrm{lse}_i` and :math:`\bar z_i`, which is all a later gradient sweep needs.

The portable chunk loop is here; faster ones are reached through :mod:`losskit.core.dispatch`:
``"linear_log_probs"`` (torch's autograd Function, JAX's ``custom_vjp``) and
``"linear_log_probs_chunks"`` (the NumPy loop with reused buffers).
"""

from __future__ import annotations

from typing import NamedTuple

from ..core.backend import Array, Namespace, cast, compute_dtype, library_name, lift, namespace
from ..core.dispatch import dispatch, run_fast_path
from ..core.gradients import LossResult, loss_function
from ..core.log_prob_specs import LinearLogProbsArrays, LinearLogProbsOptions, LinearLogProbsSpec
from ..core.validation import check_float_array, check_integer_array, check_mask

__all__ = [
    "linear_log_probs",
    "linear_log_probs_vjp",
    "sequence_log_probs",
    "LogProbSweep",
    "log_prob_sweep",
]


class LogProbSweep(NamedTuple):
    """What one chunked sweep returns (``None`` where not computed): per-token log-probs and
    entropies (``(N,)``), the statistics a later gradient sweep needs (``lse``, ``zbar``:
    the log-sum-exp and the softmax-mean of the tempered logits), and the gradients of
    ``sum(g * log_probs + h * entropy)`` with respect to the hidden states ``(N, D)``, the weight
    and the bias."""

    log_probs: Array | None
    entropy: Array | None
    lse: Array | None
    zbar: Array | None
    grad_hidden: Array | None
    grad_weight: Array | None
    grad_bias: Array | None


def _block_logits(
    xp: Namespace, xc: Array, w: Array, b: Array | None, v0: int, v1: int, inv_t: float
) -> Array:
    wb = w[v0:v1, ...]
    z = xc @ xp.matrix_transpose(wb)
    if b is not None:
        z = z + b[v0:v1]
    return z * inv_t if inv_t != 1.0 else z


def log_prob_sweep(
    xp: Namespace,
    x2: Array,
    w: Array,
    b: Array | None,
    safe_t: Array,
    spec: LinearLogProbsSpec,
    *,
    entropy: bool = False,
    cotangents: tuple[Array, Array | None] | None = None,
    stats: tuple[Array, Array | None] | None = None,
    need: tuple[bool, bool, bool] = (False, False, False),
) -> LogProbSweep:
    """The chunk loop in portable array-API operations (any library, any device).

    ``x2`` is ``(N, D)``, ``w`` ``(V, D)``, ``b`` ``(V,)`` or None, all in the compute dtype;
    ``safe_t`` the tokens with ignored ones replaced by 0.  ``entropy`` asks for the entropies.
    ``cotangents`` ``(g, h)`` (``h`` may be None) are the per-token upstream factors, 0 at
    ignored tokens; with them the gradients in ``need`` (hidden, weight, bias) are computed.
    ``cotangents`` may instead be a function ``(lo, hi, log_probs) -> (g, None)`` called with
    each chunk's rows ``lo:hi`` and their log-probs (not zeroed at ignored tokens) once the
    chunk's statistics are known (``stats`` None, no entropy): the factors of a loss on whole
    sequences, a chunk of whole sequences at a time, folded in while the chunk's logits are
    still at hand (one vocabulary block: no recomputation).
    ``stats`` ``(lse, zbar)`` from an earlier sweep skip the statistics pass (the values are
    then not returned).
    """
    n = x2.shape[0]
    v = w.shape[0]
    chunk, vb = spec.chunk, spec.vocab_chunk
    inv_t = 1.0 / spec.temperature
    blocks = [(v0, min(v, v0 + vb)) for v0 in range(0, v, vb)]
    grads_wanted = cotangents is not None and any(need)
    deferred = callable(cotangents)
    g_all, h_all = (None, None) if cotangents is None or deferred else cotangents
    # the softmax mean zbar is needed for the entropy and for its gradient
    want_zbar = entropy or h_all is not None
    out_lp, out_ent, out_lse, out_zbar, gxs = [], [], [], [], []
    gw_blocks: list[Array | None] = [None] * len(blocks)
    gb_blocks: list[Array | None] = [None] * len(blocks)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        xc = x2[lo:hi, ...]
        tc = safe_t[lo:hi]
        kept = None  # the last block's logits, reused by the gradient when there is one block
        if stats is None:
            # online log-sum-exp over the vocabulary blocks: running max m, s = sum e^(z - m),
            # a = sum e^(z - m) (z - m) (all relative to the current max, so no cancellation);
            # a new max m' rescales them: s' = r s, a' = r (a + (m - m') s), r = e^(m - m')
            m = s = a = None
            zt = xp.zeros((hi - lo,), dtype=x2.dtype)
            for v0, v1 in blocks:
                z = _block_logits(xp, xc, w, b, v0, v1, inv_t)
                bm = xp.max(z, axis=-1)
                m_new = bm if m is None else xp.maximum(m, bm)
                zs = z - xp.expand_dims(m_new, axis=-1)
                e = xp.exp(zs)
                bs = xp.sum(e, axis=-1)
                ba = xp.sum(e * zs, axis=-1) if want_zbar else None
                if m is None:
                    s, a = bs, ba
                else:
                    d = m - m_new
                    r = xp.exp(d)
                    if want_zbar:
                        a = r * (a + d * s) + ba
                    s = r * s + bs
                m = m_new
                onehot = xp.astype(xp.expand_dims(tc, axis=-1) == xp.arange(v0, v1, dtype=tc.dtype), z.dtype)
                zt = zt + xp.sum(z * onehot, axis=-1)
                kept = (z, e, onehot) if len(blocks) == 1 else None
            log_s = xp.log(s)
            lse = m + log_s
            out_lp.append(zt - lse)
            out_lse.append(lse)
            if want_zbar:
                mean_shift = a / s  # sum p (z - m)
                zbar = m + mean_shift
                out_zbar.append(zbar)
                if entropy:  # H = lse - sum p z = log s - sum p (z - m)
                    out_ent.append(log_s - mean_shift)
            else:
                zbar = None
        else:
            lse = stats[0][lo:hi]
            zbar = None if stats[1] is None else stats[1][lo:hi]
        if not grads_wanted:
            continue
        if deferred:  # the factors of a chunk of whole sequences, from its log-probs
            gc, hc = cotangents(lo, hi, out_lp[-1])
        else:
            gc = g_all[lo:hi]
            hc = None if h_all is None else h_all[lo:hi]
        gx_c = None
        for j, (v0, v1) in enumerate(blocks):
            if kept is not None:
                z, e, onehot = kept
                p = e / xp.expand_dims(s, axis=-1)
            else:
                z = _block_logits(xp, xc, w, b, v0, v1, inv_t)
                p = xp.exp(z - xp.expand_dims(lse, axis=-1))
                onehot = xp.astype(xp.expand_dims(tc, axis=-1) == xp.arange(v0, v1, dtype=tc.dtype), z.dtype)
            # G = (g (onehot - p) - h p (z - zbar)) / T, the gradient of the chunk's logits
            coef = xp.expand_dims(gc, axis=-1)
            if hc is not None:
                coef = coef + xp.expand_dims(hc, axis=-1) * (z - xp.expand_dims(zbar, axis=-1))
            grad = (xp.expand_dims(gc, axis=-1) * onehot - p * coef) * inv_t
            if need[0]:
                part = grad @ w[v0:v1, ...]
                gx_c = part if gx_c is None else gx_c + part
            if need[1]:
                part = xp.matrix_transpose(grad) @ xc
                gw_blocks[j] = part if gw_blocks[j] is None else gw_blocks[j] + part
            if need[2]:
                part = xp.sum(grad, axis=0)
                gb_blocks[j] = part if gb_blocks[j] is None else gb_blocks[j] + part
        if need[0]:
            gxs.append(gx_c)

    def cat(parts: list[Array]) -> Array | None:
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)

    gx = cat(gxs) if grads_wanted and need[0] else None
    gw = cat(gw_blocks) if grads_wanted and need[1] else None
    gb = cat(gb_blocks) if grads_wanted and need[2] and b is not None else None
    return LogProbSweep(cat(out_lp), cat(out_ent), cat(out_lse), cat(out_zbar), gx, gw, gb)


def run_sweep(xp: Namespace, x2, w, b, safe_t, spec, **kwargs) -> LogProbSweep:
    """The NumPy kernel for NumPy arrays (through the fast-path seam), else :func:`log_prob_sweep`."""
    result = run_fast_path("linear_log_probs_chunks", library_name(x2), x2, w, b, safe_t, spec, **kwargs)
    return log_prob_sweep(xp, x2, w, b, safe_t, spec, **kwargs) if result is None else LogProbSweep(*result)


def _prepare(xp: Namespace, spec: LinearLogProbsSpec, arrays: LinearLogProbsArrays):
    hidden, weight, tokens, bias = arrays
    out_dtype = xp.result_type(hidden.dtype, weight.dtype)
    dtype = compute_dtype(xp, out_dtype)
    n = spec.num_tokens
    x2 = xp.reshape(lift(xp, hidden, dtype), (n, spec.hidden_size))
    w = lift(xp, weight, dtype)
    b = None if bias is None else lift(xp, bias, dtype)
    t = xp.reshape(tokens, (n,))
    valid = t != spec.ignore_index
    safe_t = xp.where(valid, t, xp.zeros_like(t))
    return out_dtype, dtype, x2, w, b, safe_t, valid


def _options(
    temperature, ignore_index, return_entropy, chunk_size, vocab_chunk_size
) -> LinearLogProbsOptions:
    return LinearLogProbsOptions(temperature, ignore_index, return_entropy, chunk_size, vocab_chunk_size)


@loss_function
def linear_log_probs(
    hidden: Array,
    weight: Array,
    tokens: Array,
    bias: Array | None = None,
    *,
    temperature: float = 1.0,
    ignore_index: int = -100,
    return_entropy: bool = False,
    chunk_size: int | str = "auto",
    vocab_chunk_size: int | str = "auto",
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Log-probability of each token under a linear head, without materialising the logits.

    With tempered logits :math:`z_i = (x_i W^\top + b) / T`, returns
    :math:`\log p(t_i) = z_{i t_i} - \log\sum_v e^{z_{iv}}` for every position, exactly
    ``log_softmax((hidden @ weight.T + bias) / T, -1)`` gathered at ``tokens``; with
    ``return_entropy=True`` also the entropy :math:`H_i = -\sum_v p_{iv}\log p_{iv}` of each
    position's tempered softmax.  Ignored tokens give 0 (log-prob and entropy) and no gradient.

    Tokens are processed ``chunk_size`` at a time and the vocabulary ``vocab_chunk_size``
    entries at a time (an online log-sum-exp joins the blocks), so live memory beyond the
    inputs and gradients is one ``(chunk, vocab_chunk)`` block of logits.

    Gradients: ``losskit.value_and_grad(linear_log_probs, argnums=(0, 1, 3))(h, W, t, b)`` gives
    the gradients of the sum of the outputs (log-probs, plus entropies when
    ``return_entropy=True``) with respect to ``hidden``, ``weight`` and ``bias``;
    :func:`linear_log_probs_vjp` takes any per-token upstream factors.  torch tensors that
    autograd differentiates and JAX arrays under ``jax.grad`` use a custom derivative with the
    same analytic gradient (the forward keeps only two numbers per token; the backward
    recomputes the logits chunk by chunk).

    Args:
      hidden: hidden states, shape ``(..., D)``.
      weight: the head's weight, shape ``(V, D)`` (``nn.Linear`` layout).
      tokens: integer token indices, shape ``hidden.shape[:-1]``.
      bias: optional head bias, shape ``(V,)``.
      temperature: :math:`T > 0` dividing the logits (default 1).
      ignore_index: token value that is skipped (default -100).
      return_entropy: also return the per-token entropies (default False).
      chunk_size: tokens per chunk, or ``"auto"`` (about 64 MiB of logits per chunk, at least
        256 tokens).
      vocab_chunk_size: vocabulary entries per block, or ``"auto"`` (the whole vocabulary up to
        2**18 entries, else 2**16).

    Returns:
      The log-probs, shape ``tokens.shape``; or ``(log_probs, entropy)`` with
      ``return_entropy=True``.

    Equivalent: ``torch.log_softmax(F.linear(hidden, weight, bias) / T, -1).gather(-1,
    tokens[..., None])[..., 0]``, i.e. ``-F.linear_cross_entropy(..., reduction="none")`` at
    ``T = 1``; TRL's chunked ``selective_log_softmax``.
    """
    xp = namespace(hidden=hidden, weight=weight, tokens=tokens, bias=bias)
    options = _options(temperature, ignore_index, return_entropy, chunk_size, vocab_chunk_size)
    arrays = LinearLogProbsArrays(hidden, weight, tokens, bias)
    spec = LinearLogProbsSpec.of(xp, options, arrays)
    return dispatch(
        "linear_log_probs", library_name(hidden), portable_linear_log_probs, xp, spec, arrays, wrt
    )


def portable_linear_log_probs(
    xp: Namespace, spec: LinearLogProbsSpec, arrays: LinearLogProbsArrays, wrt: frozenset[int]
) -> LossResult:
    """:func:`linear_log_probs` for a validated ``spec``: ``(value, grads)`` with the gradients
    (of the sum of every output) of the arguments in ``wrt`` (0 hidden, 1 weight, 3 bias)."""
    out_dtype, dtype, x2, w, b, safe_t, valid = _prepare(xp, spec, arrays)
    need = (0 in wrt, 1 in wrt, 3 in wrt and b is not None)
    cot = None
    if any(need):
        ones = xp.astype(valid, dtype)
        cot = (ones, ones if spec.return_entropy else None)
    res = run_sweep(xp, x2, w, b, safe_t, spec, entropy=spec.return_entropy, cotangents=cot, need=need)
    zero = xp.zeros((), dtype=dtype)
    log_probs = xp.reshape(xp.where(valid, res.log_probs, zero), spec.lead_shape)
    value = cast(xp, log_probs, out_dtype)
    if spec.return_entropy:
        ent = xp.reshape(xp.where(valid, res.entropy, zero), spec.lead_shape)
        value = (value, cast(xp, ent, out_dtype))
    grads = {}
    hidden, weight, _, bias = arrays
    if need[0]:
        grads[0] = cast(xp, xp.reshape(res.grad_hidden, tuple(hidden.shape)), hidden.dtype)
    if need[1]:
        grads[1] = cast(xp, res.grad_weight, weight.dtype)
    if need[2]:
        grads[3] = cast(xp, res.grad_bias, bias.dtype)
    return value, grads


def linear_log_probs_vjp(
    hidden: Array,
    weight: Array,
    tokens: Array,
    bias: Array | None = None,
    *,
    grad_log_probs: Array,
    grad_entropy: Array | None = None,
    temperature: float = 1.0,
    ignore_index: int = -100,
    chunk_size: int | str = "auto",
    vocab_chunk_size: int | str = "auto",
) -> tuple[Array, Array, Array | None]:
    r"""The gradients of :math:`\sum_i g_i \log p(t_i) + h_i H_i` (see :func:`linear_log_probs`)
    with respect to ``hidden``, ``weight`` and ``bias`` (None without a bias), for per-token
    upstream factors ``grad_log_probs`` (:math:`g`) and ``grad_entropy`` (:math:`h`, optional),
    each of ``tokens``' shape: one chunked sweep that recomputes the logits block by block.

    This is how a loss built on per-token log-probs (a preference or policy loss) gets its
    gradient back to the hidden states and the head without the logits: compute the log-probs,
    the loss and its derivative with respect to each log-prob, then call this.
    """
    xp = namespace(
        hidden=hidden,
        weight=weight,
        tokens=tokens,
        bias=bias,
        grad_log_probs=grad_log_probs,
        grad_entropy=grad_entropy,
    )
    options = _options(temperature, ignore_index, False, chunk_size, vocab_chunk_size)
    arrays = LinearLogProbsArrays(hidden, weight, tokens, bias)
    spec = LinearLogProbsSpec.of(xp, options, arrays)
    for name, g in (("grad_log_probs", grad_log_probs), ("grad_entropy", grad_entropy)):
        if g is None:
            continue
        check_float_array(xp, g, name)
        if tuple(g.shape) != spec.lead_shape:
            raise ValueError(f"{name} must have tokens' shape {spec.lead_shape}; got {tuple(g.shape)}")
    out_dtype, dtype, x2, w, b, safe_t, valid = _prepare(xp, spec, arrays)
    zero = xp.zeros((), dtype=dtype)

    def masked(g: Array) -> Array:
        return xp.where(valid, xp.reshape(lift(xp, g, dtype), (spec.num_tokens,)), zero)

    cot = (masked(grad_log_probs), None if grad_entropy is None else masked(grad_entropy))
    need = (True, True, b is not None)
    res = run_sweep(xp, x2, w, b, safe_t, spec, cotangents=cot, need=need)
    gx = cast(xp, xp.reshape(res.grad_hidden, tuple(hidden.shape)), hidden.dtype)
    gw = cast(xp, res.grad_weight, weight.dtype)
    gb = None if bias is None else cast(xp, res.grad_bias, bias.dtype)
    return gx, gw, gb


def _sequence_mask(
    xp: Namespace, log_probs: Array, mask: Array | None, lengths: Array | None
) -> Array | None:
    if mask is not None and lengths is not None:
        raise ValueError("pass mask or lengths, not both")
    if mask is not None:
        check_mask(xp, mask, tuple(log_probs.shape), "token_log_probs")
        return mask
    if lengths is None:
        return None
    check_integer_array(xp, lengths, "lengths")
    if tuple(lengths.shape) != tuple(log_probs.shape[:-1]):
        raise ValueError(
            f"lengths must have token_log_probs' shape without the last (position) axis: expected "
            f"{tuple(log_probs.shape[:-1])}, got {tuple(lengths.shape)}"
        )
    positions = xp.arange(log_probs.shape[-1], dtype=lengths.dtype)
    return positions < xp.expand_dims(lengths, axis=-1)


@loss_function
def sequence_log_probs(
    token_log_probs: Array,
    *,
    mask: Array | None = None,
    lengths: Array | None = None,
    average: bool = False,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Per-sequence sum (or mean) of token log-probs over the last (position) axis.

    :math:`\log p(y) = \sum_{j} m_j \log p(y_j)` with the mask :math:`m` given as ``mask``
    (boolean, ``token_log_probs``' shape) or as ``lengths`` (the first ``lengths[i]`` positions
    of sequence ``i`` count); ``average=True`` divides by the number of counted positions (a
    sequence with none gives 0, with zero gradient) -- SimPO's and IPO's length-normalised
    log-likelihood.

    Args:
      token_log_probs: shape ``(..., L)``, e.g. from :func:`linear_log_probs`.
      mask: optional boolean mask of the same shape.
      lengths: optional integer lengths, shape ``(...)``.
      average: mean instead of sum (default False).

    Returns:
      Shape ``token_log_probs.shape[:-1]``.  ``value_and_grad`` gives the gradient of the sum
      of the sequence values: the mask (divided by the count when averaging).
    """
    xp = namespace(token_log_probs=token_log_probs, mask=mask, lengths=lengths)
    check_float_array(xp, token_log_probs, "token_log_probs")
    if token_log_probs.ndim < 1:
        raise ValueError("token_log_probs must have a position axis (last); got a 0-d array")
    if not isinstance(average, bool):
        raise TypeError(f"average must be a bool; got {type(average).__name__}")
    m = _sequence_mask(xp, token_log_probs, mask, lengths)
    lp = token_log_probs
    weights = xp.ones_like(lp) if m is None else xp.astype(m, lp.dtype)
    if average:
        count = xp.sum(weights, axis=-1, keepdims=True)
        positive = count > 0
        weights = xp.where(
            positive, weights / xp.where(positive, count, xp.ones_like(count)), xp.zeros_like(weights)
        )
    masked = lp if m is None else xp.where(m, lp, xp.zeros_like(lp))
    value = xp.sum(masked * weights, axis=-1)
    grads = {0: weights} if 0 in wrt else {}
    return value, grads
