"""losskit.linear_log_probs (per-token log-probs and entropies of a linear head, chunked over
tokens and the vocabulary), linear_log_probs_vjp and sequence_log_probs: values and gradients
against the naive float64 path (logits -> log_softmax -> gather) in PyTorch, on NumPy (kernel
and portable loop), array-api-strict, torch (autograd Function, gradcheck) and JAX (jit, grad)."""

from __future__ import annotations

import array_api_strict as xps
import numpy as np
import pytest
import torch

import losskit as lk
from losskit.core.log_prob_specs import auto_vocab_chunk_size

T = 1.7
CHUNKS = [("auto", "auto"), (4, 3), (5, 11), (1, 1), (13, 4), (1000, 1000)]


def _data(rng, n=13, d=5, v=11, lead=None, ignored=(3, 7)):
    x = rng.standard_normal((n, d) if lead is None else (*lead, d))
    w = rng.standard_normal((v, d)) * 0.8
    b = rng.standard_normal(v)
    t = rng.integers(0, v, x.shape[:-1])
    for i in ignored:
        t.reshape(-1)[i] = -100
    return x, w, b, t


def _reference(x, w, t, b=None, *, temperature=1.0, g=None, h=None):
    """The naive float64 path: full logits, log_softmax, gather; entropy from the softmax;
    gradients of sum(g * log_probs + h * entropy) by torch autograd."""
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    tt = torch.tensor(t)
    valid = tt != -100
    z = torch.nn.functional.linear(xt, wt, bt) / temperature
    logp = torch.log_softmax(z, -1)
    lp = logp.gather(-1, torch.where(valid, tt, 0)[..., None])[..., 0] * valid
    ent = -(logp.exp() * logp).sum(-1) * valid
    g = torch.ones_like(lp) if g is None else torch.tensor(g)
    total = (lp * g).sum() + (0.0 if h is None else (ent * torch.tensor(h)).sum())
    total.backward()
    grads = [xt.grad.numpy(), wt.grad.numpy()] + ([] if bt is None else [bt.grad.numpy()])
    return lp.detach().numpy(), ent.detach().numpy(), grads


@pytest.mark.parametrize("chunk_size, vocab_chunk_size", CHUNKS)
@pytest.mark.parametrize("temperature", [1.0, T])
@pytest.mark.parametrize("entropy", [False, True])
def test_value_and_grad_match_the_naive_path(rng, chunk_size, vocab_chunk_size, temperature, entropy):
    x, w, b, t = _data(rng)
    ones = np.ones(t.shape)
    ref_lp, ref_ent, ref_g = _reference(x, w, t, b, temperature=temperature, h=ones if entropy else None)
    kw = dict(
        temperature=temperature,
        chunk_size=chunk_size,
        vocab_chunk_size=vocab_chunk_size,
        return_entropy=entropy,
    )
    value, grads = lk.value_and_grad(lk.linear_log_probs, argnums=(0, 1, 3))(x, w, t, b, **kw)
    lp, ent = value if entropy else (value, None)
    np.testing.assert_allclose(lp, ref_lp, rtol=1e-12, atol=1e-13)
    if entropy:
        np.testing.assert_allclose(ent, ref_ent, rtol=1e-12, atol=1e-13)
    for g, r in zip(grads, ref_g):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12)
    # the plain call gives the same values
    plain = lk.linear_log_probs(x, w, t, b, **kw)
    np.testing.assert_allclose(plain[0] if entropy else plain, lp, rtol=0, atol=0)


@pytest.mark.parametrize("chunk_size, vocab_chunk_size", CHUNKS)
@pytest.mark.parametrize("with_entropy", [False, True])
def test_vjp_with_per_token_upstream_factors(rng, chunk_size, vocab_chunk_size, with_entropy):
    x, w, b, t = _data(rng, lead=(3, 5), ignored=(2, 9))
    g = rng.standard_normal(t.shape)
    h = rng.standard_normal(t.shape) if with_entropy else None
    _, _, ref = _reference(x, w, t, b, temperature=T, g=g, h=h)
    grads = lk.linear_log_probs_vjp(
        x,
        w,
        t,
        b,
        grad_log_probs=g,
        grad_entropy=h,
        temperature=T,
        chunk_size=chunk_size,
        vocab_chunk_size=vocab_chunk_size,
    )
    for a, r in zip(grads, ref):
        np.testing.assert_allclose(a, r, rtol=1e-10, atol=1e-12)
    # without a bias the third gradient is None
    gx, gw, gb = lk.linear_log_probs_vjp(x, w, t, grad_log_probs=g)
    assert gb is None and gx.shape == x.shape and gw.shape == w.shape


def test_without_bias_and_with_lead_axes(rng):
    x, w, _, t = _data(rng, lead=(2, 3, 4), ignored=(0,))
    ref_lp, _, (rx, rw) = _reference(x, w, t)
    lp, (gx, gw) = lk.value_and_grad(lk.linear_log_probs, argnums=(0, 1))(x, w, t, chunk_size=5)
    assert lp.shape == t.shape and gx.shape == x.shape
    np.testing.assert_allclose(lp, ref_lp, rtol=1e-12)
    np.testing.assert_allclose(gx, rx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gw, rw, rtol=1e-10, atol=1e-12)


def test_log_probs_are_minus_per_token_cross_entropy(rng):
    x, w, b, t = _data(rng)
    ce = lk.linear_cross_entropy(x, w, t, b, reduction="none")
    np.testing.assert_allclose(lk.linear_log_probs(x, w, t, b), -np.asarray(ce), rtol=1e-12, atol=1e-14)


def test_finite_differences(rng):
    x, w, b, t = _data(rng, n=6, d=3, v=7, ignored=(1,))
    g = rng.standard_normal(t.shape)
    h = rng.standard_normal(t.shape)

    def f(x, w, b):
        lp, ent = lk.linear_log_probs(
            x, w, t, b, temperature=T, return_entropy=True, chunk_size=4, vocab_chunk_size=3
        )
        return float(np.sum(g * lp + h * ent))

    grads = lk.linear_log_probs_vjp(
        x, w, t, b, grad_log_probs=g, grad_entropy=h, temperature=T, chunk_size=4, vocab_chunk_size=3
    )
    args = [x, w, b]
    for k, analytic in enumerate(grads):
        numeric = np.zeros_like(args[k])
        for idx in np.ndindex(args[k].shape):
            up = [a.copy() for a in args]
            dn = [a.copy() for a in args]
            up[k][idx] += 1e-6
            dn[k][idx] -= 1e-6
            numeric[idx] = (f(*up) - f(*dn)) / 2e-6
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("entropy", [False, True])
def test_every_token_ignored_gives_zeros_and_zero_gradients(rng, entropy):
    x, w, b, _ = _data(rng)
    t = np.full(x.shape[0], -100)
    value, grads = lk.value_and_grad(lk.linear_log_probs, argnums=(0, 1, 3))(
        x, w, t, b, return_entropy=entropy, vocab_chunk_size=4
    )
    for out in value if entropy else (value,):
        assert np.all(np.asarray(out) == 0)
    assert all(np.all(g == 0) for g in grads)


def test_float32_within_1e5_of_float64(rng):
    x, w, b, t = _data(rng, n=200, d=32, v=500)
    kw = dict(chunk_size=64, vocab_chunk_size=128, return_entropy=True, temperature=0.7)
    vg = lk.value_and_grad(lk.linear_log_probs, argnums=(0, 1, 3))
    (lp64, e64), g64 = vg(x, w, t, b, **kw)
    (lp32, e32), g32 = vg(x.astype(np.float32), w.astype(np.float32), t, b.astype(np.float32), **kw)
    assert lp32.dtype == np.float32 and e32.dtype == np.float32
    np.testing.assert_allclose(lp32, lp64, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(e32, e64, rtol=1e-5, atol=1e-5)
    for a, r in zip(g32, g64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5 * np.abs(r).max())


def test_float16_is_computed_in_float32(rng):
    x, w, b, t = _data(rng)
    lp16 = lk.linear_log_probs(x.astype(np.float16), w.astype(np.float16), t, b.astype(np.float16))
    ref, _, _ = _reference(
        x.astype(np.float16).astype(np.float64),
        w.astype(np.float16).astype(np.float64),
        t,
        b.astype(np.float16).astype(np.float64),
    )
    assert lp16.dtype == np.float16
    np.testing.assert_allclose(lp16.astype(np.float64), ref, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("entropy", [False, True])
def test_portable_loop_matches_numpy_kernel(rng, entropy):
    x, w, b, t = _data(rng)
    kw = dict(chunk_size=4, vocab_chunk_size=3, temperature=T, return_entropy=entropy)
    vg = lk.value_and_grad(lk.linear_log_probs, argnums=(0, 1, 3))
    value, grads = vg(x, w, t, b, **kw)
    value2, grads2 = vg(xps.asarray(x), xps.asarray(w), xps.asarray(t), xps.asarray(b), **kw)
    for a, r in zip(value if entropy else (value,), value2 if entropy else (value2,)):
        np.testing.assert_allclose(np.asarray(r), a, rtol=1e-12, atol=1e-14)
    for a, r in zip(grads, grads2):
        np.testing.assert_allclose(np.asarray(r), a, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda x, w, t, b: (x, w, np.where(t == 2, 11, t), b), "tokens holds class index 11"),
        (lambda x, w, t, b: (x, w, np.where(t == 2, -5, t), b), "tokens holds class index -5"),
        (lambda x, w, t, b: (x, w, t[:-1], b), "tokens must have hidden's shape"),
        (lambda x, w, t, b: (x, w[:, :-1], t, b), "weight must have shape"),
        (lambda x, w, t, b: (x, w[0], t, b), "weight must be 2-d"),
        (lambda x, w, t, b: (x, w, t, b[:-1]), "bias must have shape"),
        (lambda x, w, t, b: (x, w, t.astype(float), b), "tokens"),
        (lambda x, w, t, b: (x.astype(int), w, t, b), "hidden"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(rng, change, message):
    x, w, b, t = _data(rng)
    t = np.where(t == -100, 0, t)
    t[0] = 2
    with pytest.raises((ValueError, TypeError), match=message):
        lk.linear_log_probs(*change(x, w, t, b))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"vocab_chunk_size": "big"}, "vocab_chunk_size"),
        ({"return_entropy": 1}, "return_entropy"),
        ({"ignore_index": 1.5}, "ignore_index"),
    ],
)
def test_bad_options_are_refused(rng, options, message):
    x, w, b, t = _data(rng)
    with pytest.raises((ValueError, TypeError), match=message):
        lk.linear_log_probs(x, w, t, b, **options)


def test_vjp_checks_the_upstream_shapes(rng):
    x, w, b, t = _data(rng)
    with pytest.raises(ValueError, match="grad_log_probs must have tokens' shape"):
        lk.linear_log_probs_vjp(x, w, t, b, grad_log_probs=np.ones(3))
    with pytest.raises(ValueError, match="grad_entropy must have tokens' shape"):
        lk.linear_log_probs_vjp(x, w, t, b, grad_log_probs=np.ones(t.shape), grad_entropy=np.ones(3))


def test_auto_vocab_chunk_size():
    assert auto_vocab_chunk_size(128256) == 128256
    assert auto_vocab_chunk_size(1 << 18) == 1 << 18
    assert auto_vocab_chunk_size(256000 * 2) == 1 << 16


# -- sequence_log_probs --------------------------------------------------------------------------


def test_sequence_sums_and_means_with_mask_or_lengths(rng):
    lp = -rng.random((3, 6))
    lengths = np.array([6, 2, 0])
    mask = np.arange(6)[None, :] < lengths[:, None]
    want_sum = np.array([lp[0].sum(), lp[1, :2].sum(), 0.0])
    want_mean = np.array([lp[0].mean(), lp[1, :2].mean(), 0.0])
    np.testing.assert_allclose(lk.sequence_log_probs(lp, mask=mask), want_sum, rtol=1e-14)
    np.testing.assert_allclose(lk.sequence_log_probs(lp, lengths=lengths), want_sum, rtol=1e-14)
    np.testing.assert_allclose(
        lk.sequence_log_probs(lp, lengths=lengths, average=True), want_mean, rtol=1e-14
    )
    np.testing.assert_allclose(lk.sequence_log_probs(lp), lp.sum(-1), rtol=1e-14)
    _, g = lk.value_and_grad(lk.sequence_log_probs)(lp, lengths=lengths, average=True)
    np.testing.assert_allclose(g, mask / np.maximum(mask.sum(-1, keepdims=True), 1), rtol=1e-14)
    # torch autograd agrees with the analytic gradient
    lt = torch.tensor(lp, requires_grad=True)
    lk.sequence_log_probs(lt, lengths=torch.tensor(lengths), average=True).sum().backward()
    np.testing.assert_allclose(lt.grad.numpy(), g, rtol=1e-14)


def test_sequence_log_probs_refuses_bad_input(rng):
    lp = -rng.random((3, 6))
    with pytest.raises(ValueError, match="mask or lengths"):
        lk.sequence_log_probs(lp, mask=np.ones((3, 6), bool), lengths=np.ones(3, int))
    with pytest.raises(ValueError, match="lengths must have"):
        lk.sequence_log_probs(lp, lengths=np.ones(4, int))
    with pytest.raises((ValueError, TypeError), match="lengths"):
        lk.sequence_log_probs(lp, lengths=np.ones(3))
    with pytest.raises((ValueError, TypeError), match="average"):
        lk.sequence_log_probs(lp, average=1)


# -- torch -----------------------------------------------------------------------------------------


def _tensors(*arrays, grad=True):
    return [
        None if a is None else torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays
    ]


@pytest.mark.parametrize("chunk_size, vocab_chunk_size", [("auto", "auto"), (4, 3)])
@pytest.mark.parametrize("entropy", [False, True])
def test_torch_gradcheck_float64(rng, chunk_size, vocab_chunk_size, entropy):
    import losskit.torch.log_probs as ltl

    x, w, b, t = _data(rng, n=7, d=3, v=6, lead=None, ignored=(2,))
    xt, wt, bt = _tensors(x, w, b)
    tt = torch.tensor(t)
    kw = dict(temperature=T, return_entropy=entropy, chunk_size=chunk_size, vocab_chunk_size=vocab_chunk_size)
    assert torch.autograd.gradcheck(lambda *a: ltl.linear_log_probs(a[0], a[1], tt, a[2], **kw), (xt, wt, bt))
    # and through the public function (the fast-path seam picks the autograd Function)
    assert torch.autograd.gradcheck(lambda *a: lk.linear_log_probs(a[0], a[1], tt, a[2], **kw), (xt, wt, bt))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_torch_autograd_matches_naive_with_upstream_factors(rng, dtype):
    x, w, b, t = _data(rng, lead=(3, 5), ignored=(2, 9))
    g = rng.standard_normal(t.shape)
    h = rng.standard_normal(t.shape)
    ref_lp, ref_ent, ref_g = _reference(x, w, t, b, temperature=T, g=g, h=h)
    xt, wt, bt = (torch.tensor(a, dtype=dtype, requires_grad=True) for a in (x, w, b))
    lp, ent = lk.linear_log_probs(
        xt, wt, torch.tensor(t), bt, temperature=T, return_entropy=True, chunk_size=4, vocab_chunk_size=5
    )
    assert lp.dtype == dtype and lp.requires_grad and ent.requires_grad
    (lp * torch.tensor(g, dtype=dtype) + ent * torch.tensor(h, dtype=dtype)).sum().backward()
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lp.detach().numpy(), ref_lp, **tol)
    np.testing.assert_allclose(ent.detach().numpy(), ref_ent, **tol)
    for tensor, r in zip((xt, wt, bt), ref_g):
        np.testing.assert_allclose(tensor.grad.numpy(), r, **tol)


def test_torch_only_log_probs_used_and_all_ignored(rng):
    x, w, b, t = _data(rng)
    xt, wt, bt = _tensors(x, w, b)
    lp, ent = lk.linear_log_probs(xt, wt, torch.tensor(t), bt, return_entropy=True)
    lp.sum().backward()  # the entropy gets no upstream gradient
    _, _, ref = _reference(x, w, t, b)
    np.testing.assert_allclose(xt.grad.numpy(), ref[0], rtol=1e-10, atol=1e-12)
    xt, wt, bt = _tensors(x, w, b)
    lp = lk.linear_log_probs(xt, wt, torch.full(t.shape, -100), bt)
    lp.sum().backward()
    assert torch.all(lp == 0) and all(torch.all(a.grad == 0) for a in (xt, wt, bt))


def test_torch_without_autograd_and_value_and_grad(rng):
    x, w, b, t = _data(rng)
    xt, wt, bt = _tensors(x, w, b, grad=False)
    ref_lp, _, ref_g = _reference(x, w, t, b)
    np.testing.assert_allclose(lk.linear_log_probs(xt, wt, torch.tensor(t), bt).numpy(), ref_lp, rtol=1e-12)
    _, grads = lk.value_and_grad(lk.linear_log_probs, argnums=(0, 1, 3))(xt, wt, torch.tensor(t), bt)
    for a, r in zip(grads, ref_g):
        assert isinstance(a, torch.Tensor)
        np.testing.assert_allclose(a.numpy(), r, rtol=1e-10, atol=1e-12)


def test_torch_entry_point_refuses_non_tensors_and_unknown_options(rng):
    import losskit.torch.log_probs as ltl

    x, w, b, t = _data(rng)
    with pytest.raises(TypeError, match="hidden must be a torch tensor"):
        ltl.linear_log_probs(x, torch.tensor(w), torch.tensor(t))
    with pytest.raises(TypeError, match="unknown option"):
        ltl.linear_log_probs(torch.tensor(x), torch.tensor(w), torch.tensor(t), reduction="mean")


# -- JAX -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size, vocab_chunk_size", [("auto", "auto"), (4, 3), (5, 11)])
@pytest.mark.parametrize("entropy", [False, True])
def test_jax_jit_and_grad_match_naive(rng, chunk_size, vocab_chunk_size, entropy):
    import jax
    import jax.numpy as jnp

    x, w, b, t = _data(rng, lead=(3, 5), ignored=(2, 9))
    g = rng.standard_normal(t.shape)
    h = rng.standard_normal(t.shape) if entropy else None
    ref_lp, ref_ent, ref_g = _reference(x, w, t, b, temperature=T, g=g, h=h)
    kw = dict(temperature=T, return_entropy=entropy, chunk_size=chunk_size, vocab_chunk_size=vocab_chunk_size)

    def objective(x, w, b):
        out = lk.linear_log_probs(x, w, jnp.asarray(t), b, **kw)
        lp, ent = out if entropy else (out, None)
        total = jnp.sum(lp * g) + (0.0 if ent is None else jnp.sum(ent * h))
        return total, out

    step = jax.jit(jax.value_and_grad(objective, argnums=(0, 1, 2), has_aux=True))
    (_, out), grads = step(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b))
    lp, ent = out if entropy else (out, None)
    np.testing.assert_allclose(np.asarray(lp), ref_lp, rtol=1e-12, atol=1e-13)
    if entropy:
        np.testing.assert_allclose(np.asarray(ent), ref_ent, rtol=1e-12, atol=1e-13)
    for a, r in zip(grads, ref_g):
        np.testing.assert_allclose(np.asarray(a), r, rtol=1e-10, atol=1e-12)


def test_jax_all_ignored_without_bias_and_value_and_grad(rng):
    import jax
    import jax.numpy as jnp

    x, w, _, t = _data(rng)
    none = jnp.full(t.shape, -100)
    lp, grads = jax.value_and_grad(lambda x, w: jnp.sum(lk.linear_log_probs(x, w, none)), argnums=(0, 1))(
        jnp.asarray(x), jnp.asarray(w)
    )
    assert float(lp) == 0 and all(np.all(np.asarray(a) == 0) for a in grads)
    # losskit's own value_and_grad on JAX arrays (the portable loop) agrees with NumPy's
    _, ref = lk.value_and_grad(lk.linear_log_probs, argnums=(0, 1))(x, w, t, chunk_size=4)
    _, ours = lk.value_and_grad(lk.linear_log_probs, argnums=(0, 1))(
        jnp.asarray(x), jnp.asarray(w), jnp.asarray(t), chunk_size=4
    )
    for a, r in zip(ours, ref):
        np.testing.assert_allclose(np.asarray(a), r, rtol=1e-12, atol=1e-14)
    # tokens out of range are refused on concrete arrays, and skipped (not read) under jit
    with pytest.raises(ValueError, match="tokens holds class index"):
        lk.linear_log_probs(jnp.asarray(x), jnp.asarray(w), jnp.asarray(np.where(t == -100, 99, t)))
    jitted = jax.jit(lambda x, w, t: lk.linear_log_probs(x, w, t))
    assert jitted(jnp.asarray(x), jnp.asarray(w), jnp.asarray(t)).shape == t.shape


@pytest.mark.parametrize("chunk_size, vocab_chunk_size", CHUNKS)
@pytest.mark.parametrize("entropy", [False, True])
def test_torch_in_place_loop_matches_the_numpy_kernel(rng, chunk_size, vocab_chunk_size, entropy):
    # losskit's value_and_grad on tensors runs the in-place torch loop (one sweep when the
    # vocabulary is one block), the vjp its gradient sweep from saved statistics
    x, w, b, t = _data(rng, lead=(3, 5), ignored=(2, 9))
    kw = dict(temperature=T, return_entropy=entropy, chunk_size=chunk_size, vocab_chunk_size=vocab_chunk_size)
    vg = lk.value_and_grad(lk.linear_log_probs, argnums=(0, 1, 3))
    value, grads = vg(x, w, t, b, **kw)
    tv, tgrads = vg(*(torch.tensor(a) for a in (x, w, t, b)), **kw)
    for a, r in zip(tv if entropy else (tv,), value if entropy else (value,)):
        np.testing.assert_allclose(a.numpy(), r, rtol=1e-12, atol=1e-13)
    for a, r in zip(tgrads, grads):
        np.testing.assert_allclose(a.numpy(), r, rtol=1e-10, atol=1e-12)
    g, h = rng.standard_normal(t.shape), rng.standard_normal(t.shape)
    ref = lk.linear_log_probs_vjp(
        x,
        w,
        t,
        b,
        grad_log_probs=g,
        grad_entropy=h,
        temperature=T,
        chunk_size=chunk_size,
        vocab_chunk_size=vocab_chunk_size,
    )
    ours = lk.linear_log_probs_vjp(
        *(torch.tensor(a) for a in (x, w, t, b)),
        grad_log_probs=torch.tensor(g),
        grad_entropy=torch.tensor(h),
        temperature=T,
        chunk_size=chunk_size,
        vocab_chunk_size=vocab_chunk_size,
    )
    for a, r in zip(ours, ref):
        np.testing.assert_allclose(a.numpy(), r, rtol=1e-10, atol=1e-12)
