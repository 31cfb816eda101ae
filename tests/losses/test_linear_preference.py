"""The preference and policy-gradient losses from hidden states: value and gradients for the
hidden states, the head's weight and its bias equal the naive path (logits -> log_softmax ->
gather -> per-sequence sum or mean -> loss, differentiated by torch autograd) in float64, through
losskit.value_and_grad (NumPy), torch autograd and jax.grad under jit; float32 within 1e-5."""

from __future__ import annotations

import numpy as np
import pytest

import losskit as lk

torch = pytest.importorskip("torch")

B, L, D, V = 3, 6, 5, 13


def _batch(rng, rows=2 * B):
    hidden = rng.normal(size=(rows, L, D))
    weight = rng.normal(size=(V, D)) * 0.6
    bias = rng.normal(size=V) * 0.2
    tokens = rng.integers(0, V, size=(rows, L))
    tokens[:, :2] = -100  # the prompt
    tokens[1, 4:] = -100  # padding
    tokens[-1, 3:] = -100
    return hidden, weight, bias, tokens


def _naive_token_log_probs(hidden, weight, bias, tokens):
    logits = hidden @ weight.T + bias  # (rows, L, V): what the fused path never holds
    log_probs = torch.log_softmax(logits, dim=-1)
    valid = tokens != -100
    picked = log_probs.gather(-1, torch.where(valid, tokens, 0)[..., None])[..., 0]
    return torch.where(valid, picked, torch.zeros_like(picked)), valid


def _naive_sequences(hidden, weight, bias, tokens, average):
    lp, valid = _naive_token_log_probs(hidden, weight, bias, tokens)
    total = lp.sum(-1)
    counted = valid.sum(-1).to(lp.dtype)
    return (total / counted.clamp(min=1.0) if average else total), counted


def _cases(rng):
    """(name, fused function, extra positional args, bias argnum, options, naive loss of the
    torch head arrays)."""
    rows = 2 * B
    ref = [-rng.uniform(5, 20, size=B) for _ in range(2)]
    desirable = np.array([True, False, True, True, False, False])
    kl = [-rng.uniform(5, 20, size=4) for _ in range(2)]
    adv = rng.normal(size=rows)
    old = -rng.uniform(0.5, 3, size=(rows, L))
    ref_tok = -rng.uniform(0.5, 3, size=(rows, L))
    T = torch.from_numpy

    def pairs(fn, average, **options):
        def naive(h, w, b, t):
            seq, counted = _naive_sequences(h, w, b, t, average)
            if fn is lk.cpo:
                options["chosen_lengths"] = counted[:B]
            extra = [T(r) for r in ref] if fn is lk.dpo else []
            return fn(seq[:B], seq[B:], *extra, **options)

        return naive

    def naive_kto(h, w, b, t):
        seq, _ = _naive_sequences(h, w, b, t, False)
        return lk.kto(seq, T(ref[0][:1].repeat(rows)), T(desirable), policy_kl_logps=T(kl[0]),
                      reference_kl_logps=T(kl[1]), beta=0.2)  # fmt: skip

    def naive_grpo(h, w, b, t):
        lp, valid = _naive_token_log_probs(h, w, b, t)
        return lk.grpo(lp, T(old), T(adv), ref_log_probs=T(ref_tok), beta=0.05, epsilon_high=0.28,
                       loss_type="dapo", where=valid)  # fmt: skip

    return [
        ("dpo", lk.linear_dpo, ref, 5, {"beta": 0.3}, pairs(lk.dpo, False, beta=0.3)),
        ("dpo-ipo", lk.linear_dpo, ref, 5, {"loss_type": "ipo", "average": True},
         pairs(lk.dpo, True, loss_type="ipo")),
        ("simpo", lk.linear_simpo, [], 3, {"gamma": 0.5}, pairs(lk.simpo, True, gamma=0.5)),
        ("orpo", lk.linear_orpo, [], 3, {"beta": 0.2}, pairs(lk.orpo, True, beta=0.2)),
        ("cpo", lk.linear_cpo, [], 3, {"alpha": 0.5}, pairs(lk.cpo, False, alpha=0.5)),
        ("kto", lk.linear_kto, [ref[0][:1].repeat(rows), desirable], 5,
         {"policy_kl_logps": kl[0], "reference_kl_logps": kl[1], "beta": 0.2}, naive_kto),
        ("grpo-dapo", lk.linear_grpo, [adv, old], 5,
         {"ref_log_probs": ref_tok, "beta": 0.05, "epsilon_high": 0.28, "loss_type": "dapo"}, naive_grpo),
    ]  # fmt: skip


def _reference(naive, hidden, weight, bias, tokens):
    h, w, b = (torch.tensor(a, requires_grad=True) for a in (hidden, weight, bias))
    value = naive(h, w, b, torch.from_numpy(tokens))
    grads = torch.autograd.grad(value, (h, w, b))
    return value.item(), [g.numpy() for g in grads]


NAMES = [c[0] for c in _cases(np.random.default_rng(0))]


def _case(name, rng):
    return next(c for c in _cases(rng) if c[0] == name)


@pytest.mark.parametrize("name", NAMES)
def test_fused_equals_naive_path_numpy(name, rng):
    _, fn, extra, bias_at, options, naive = _case(name, rng)
    hidden, weight, bias, tokens = _batch(rng)
    expected, (gh, gw, gb) = _reference(naive, hidden, weight, bias, tokens)
    args = [hidden, weight, tokens, *extra]
    args.insert(bias_at, bias)
    value, (h, w, b) = lk.value_and_grad(fn, argnums=(0, 1, bias_at))(*args, **options, chunk_size=4)
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    for ours, ref, what in ((h, gh, "hidden"), (w, gw, "weight"), (b, gb, "bias")):
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-14, err_msg=what)


@pytest.mark.parametrize("name", NAMES)
def test_fused_equals_naive_path_torch_autograd(name, rng):
    _, fn, extra, bias_at, options, naive = _case(name, rng)
    hidden, weight, bias, tokens = _batch(rng)
    expected, ref_grads = _reference(naive, hidden, weight, bias, tokens)
    h, w, b = (torch.tensor(a, requires_grad=True) for a in (hidden, weight, bias))
    args = [h, w, torch.from_numpy(tokens), *(torch.from_numpy(np.asarray(e)) for e in extra)]
    args.insert(bias_at, b)
    t_options = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
    value = fn(*args, **t_options)
    grads = torch.autograd.grad(value, (h, w, b))
    np.testing.assert_allclose(value.item(), expected, rtol=1e-12)
    for ours, ref in zip(grads, ref_grads):
        np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["dpo", "kto", "grpo-dapo"])
def test_fused_equals_naive_path_jax_jit_grad(name, rng):
    import jax
    import jax.numpy as jnp

    _, fn, extra, bias_at, options, naive = _case(name, rng)
    hidden, weight, bias, tokens = _batch(rng)
    expected, ref_grads = _reference(naive, hidden, weight, bias, tokens)
    j_options = {k: jnp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
    rest = [jnp.asarray(tokens), *(jnp.asarray(e) for e in extra)]

    def loss(h, w, b):
        args = [h, w, *rest]
        args.insert(bias_at, b)
        return fn(*args, **j_options)

    value, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(
        jnp.asarray(hidden), jnp.asarray(weight), jnp.asarray(bias)
    )
    np.testing.assert_allclose(float(value), expected, rtol=1e-12)
    for ours, ref in zip(grads, ref_grads):
        np.testing.assert_allclose(np.asarray(ours), ref, rtol=1e-10, atol=1e-14)


def test_float32_within_1e_5_of_float64(rng):
    _, fn, extra, bias_at, options, naive = _case("dpo", rng)
    hidden, weight, bias, tokens = _batch(rng)
    expected, ref_grads = _reference(naive, hidden, weight, bias, tokens)
    f32 = [a.astype(np.float32) for a in (hidden, weight, bias)]
    args = [f32[0], f32[1], tokens, *(e.astype(np.float32) for e in extra)]
    args.insert(bias_at, f32[2])
    value, grads = lk.value_and_grad(fn, argnums=(0, 1, bias_at))(*args, **options)
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    for ours, ref in zip(grads, ref_grads):
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_nothing_counted_gives_zero_with_zero_gradient(rng):
    hidden, weight, bias, tokens = _batch(rng)
    ref = [-rng.uniform(5, 20, size=B) for _ in range(2)]
    value, grads = lk.value_and_grad(lk.linear_dpo, argnums=(0, 1, 5))(
        hidden, weight, tokens, *ref, bias, where=np.zeros(B, dtype=bool)
    )
    assert value == 0.0 and all(np.all(g == 0) for g in grads)
    ignored = np.full_like(tokens, -100)
    value, grads = lk.value_and_grad(lk.linear_grpo, argnums=(0, 1))(hidden, weight, ignored, np.ones(2 * B))
    assert value == 0.0 and all(np.all(g == 0) for g in grads)


def test_bad_input_is_refused_naming_the_argument(rng):
    hidden, weight, bias, tokens = _batch(rng)
    ref = [-rng.uniform(5, 20, size=B) for _ in range(2)]
    with pytest.raises(ValueError, match="tokens must hold 2B rows"):
        lk.linear_simpo(hidden[:5], weight, tokens[:5])
    with pytest.raises(ValueError, match=r"tokens must have shape \(sequences, positions\)"):
        lk.linear_simpo(hidden[0], weight, tokens[0])
    with pytest.raises(ValueError, match="reference_rejected_logps must have the same shape"):
        lk.linear_dpo(hidden, weight, tokens, ref[0], ref[1][:2])
    with pytest.raises((ValueError, TypeError), match="weight"):
        lk.linear_orpo(hidden, weight[:, :3], tokens)


# -- Liger-Kernel's chunked loss classes, where installed ----------------------------------------


def _liger_batch(rng, padded=True):
    hidden, weight, bias, tokens = _batch(rng)
    if not padded:  # every row counts the same tokens: ORPO's NLL is then the same in both
        tokens = rng.integers(0, V, size=tokens.shape)
        tokens[:, :2] = -100
    return hidden, weight, bias, tokens


@pytest.mark.parametrize("name", ["dpo", "simpo", "orpo", "grpo"])
def test_fused_equals_liger_kernel(name, rng):
    chunked = pytest.importorskip("liger_kernel.chunked_loss")
    hidden, weight, bias, tokens = _liger_batch(rng, padded=name != "orpo")
    h, w, b = (torch.tensor(a, requires_grad=True) for a in (hidden, weight, bias))
    h2, w2, b2 = (torch.tensor(a, requires_grad=True) for a in (hidden, weight, bias))
    t = torch.from_numpy(tokens)
    if name == "dpo":
        ref_h, ref_w = (
            torch.from_numpy(rng.normal(size=hidden.shape)),
            torch.from_numpy(rng.normal(size=weight.shape)),
        )
        liger = chunked.LigerFusedLinearDPOLoss(beta=0.2, compiled=False, use_ref_model=True)(
            w, h, t, b, ref_h, ref_w
        )
        with torch.no_grad():
            ref = lk.linear_log_probs(ref_h, ref_w, t).sum(-1)
        ours = lk.linear_dpo(h2, w2, t, ref[:B], ref[B:], b2, beta=0.2)
    elif name == "simpo":
        loss = chunked.LigerFusedLinearSimPOLoss(beta=2.0, gamma=0.5, compute_nll_loss=False, compiled=False)
        liger = loss(w, h, t, b)
        ours = lk.linear_simpo(h2, w2, t, b2, beta=2.0, gamma=0.5)
    elif name == "orpo":
        liger = chunked.LigerFusedLinearORPOLoss(beta=0.2, compiled=False)(w, h, t, b)
        ours = lk.linear_orpo(h2, w2, t, b2, beta=0.2)
    else:
        mask = tokens != -100
        adv = torch.from_numpy(rng.normal(size=2 * B))
        old = torch.from_numpy(-rng.uniform(0.5, 3, size=tokens.shape))
        options = dict(beta=0.0, use_ref_model=False, epsilon_high=0.28, loss_type="bnpo")
        loss = chunked.LigerFusedLinearGRPOLoss(compiled=False, **options)
        liger = loss(
            h, w, torch.where(t < 0, 0, t), torch.from_numpy(mask).long(), adv, b, old_per_token_logps=old
        )
        ours = lk.linear_grpo(h2, w2, t, adv, old, b2, epsilon_high=0.28, loss_type="dapo")
    liger = liger[0] if isinstance(liger, tuple) else liger
    # Liger returns the loss in float32 (its accumulators), so agreement is to float32's precision
    torch.testing.assert_close(ours.float(), liger.float(), rtol=1e-6, atol=1e-7)
    for mine, theirs in zip(torch.autograd.grad(ours, (h2, w2, b2)), torch.autograd.grad(liger, (h, w, b))):
        torch.testing.assert_close(mine, theirs.to(mine.dtype), rtol=1e-5, atol=1e-7)
