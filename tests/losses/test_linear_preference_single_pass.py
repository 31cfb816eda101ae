"""The one-sweep path of the fused linear pair losses (linear_dpo, linear_simpo, linear_orpo,
linear_cpo with reduction "mean"/"sum"): chunks of whole pairs, each chunk's loss and gradients
from its still-present softmax.  Its value and gradients (hidden, weight, bias) equal the
composition (losskit.torch.linear_log_probs -> per-sequence sums -> the loss, differentiated by
autograd through linear_log_probs' own two-sweep Function) and the naive float64 path (logits ->
log_softmax -> gather -> loss), on NumPy (losskit.value_and_grad) and torch autograd, for one
pair per chunk and all pairs in one chunk, with prompts, ragged padding and where masks."""

from __future__ import annotations

import numpy as np
import pytest

import losskit as lk

torch = pytest.importorskip("torch")

B, L, D, V = 4, 7, 5, 17


def _batch(rng):
    hidden = rng.normal(size=(2 * B, L, D))
    weight = rng.normal(size=(V, D)) * 0.6
    bias = rng.normal(size=V) * 0.2
    tokens = rng.integers(0, V, size=(2 * B, L))
    tokens[:, :2] = -100  # the prompt
    tokens[1, 4:] = -100  # ragged padding
    tokens[B + 2, 3:] = -100
    tokens[-1, 5:] = -100
    ref = [-rng.uniform(5, 20, size=B) for _ in range(2)]
    return hidden, weight, bias, tokens, ref


# name -> (fused loss, plain loss, uses the reference, averages, bias argnum, options)
CASES = {
    "dpo": (lk.linear_dpo, lk.dpo, True, False, 5, {"beta": 0.3}),
    "dpo-smoothed": (lk.linear_dpo, lk.dpo, True, False, 5, {"label_smoothing": 0.2}),
    "dpo-robust": (lk.linear_dpo, lk.dpo, True, False, 5, {"loss_type": "robust", "label_smoothing": 0.1}),
    "dpo-ipo": (lk.linear_dpo, lk.dpo, True, True, 5, {"loss_type": "ipo", "average": True}),
    "dpo-hinge": (lk.linear_dpo, lk.dpo, True, False, 5, {"loss_type": "hinge", "beta": 0.05}),
    "simpo": (lk.linear_simpo, lk.simpo, False, True, 3, {"gamma": 0.5, "label_smoothing": 0.1}),
    "orpo": (lk.linear_orpo, lk.orpo, False, True, 3, {"beta": 0.2}),
    "cpo": (lk.linear_cpo, lk.cpo, False, False, 3, {"alpha": 0.5}),
}
WHERE = np.array([True, False, True, True])


def _plain_options(options):
    return {k: v for k, v in options.items() if k != "average"}


def _naive(name, hidden, weight, bias, tokens, ref, reduction, where, temperature=1.0):
    """float64 torch autograd through the full logits: logits -> log_softmax -> gather -> loss."""
    _, plain, uses_ref, average, _, options = CASES[name]
    h, w, b = (torch.tensor(a, requires_grad=True) for a in (hidden, weight, bias))
    t = torch.from_numpy(tokens)
    valid = t != -100
    logits = (h @ w.T + b) / temperature
    lp = torch.log_softmax(logits, -1).gather(-1, torch.where(valid, t, 0)[..., None])[..., 0]
    lp = torch.where(valid, lp, torch.zeros_like(lp))
    counted = valid.sum(-1).to(lp.dtype)
    seq = lp.sum(-1) / counted.clamp(min=1.0) if average else lp.sum(-1)
    kw = dict(_plain_options(options), reduction=reduction)
    if where is not None:
        kw["where"] = torch.from_numpy(where)
    if plain is lk.cpo:
        kw["chosen_lengths"] = counted[:B].clamp(min=1.0)
    extra = [torch.from_numpy(r) for r in ref] if uses_ref else []
    value = plain(seq[:B], seq[B:], *extra, **kw)
    grads = torch.autograd.grad(value, (h, w, b), allow_unused=True)
    return value.item(), [np.zeros_like(a) if g is None else g.numpy() for g, a in zip(grads, (h, w, b))]


def _composition(name, hidden, weight, bias, tokens, ref, reduction, where, chunk_size):
    """losskit.torch.linear_log_probs (its two-sweep autograd Function) -> sums -> the loss."""
    import losskit.torch as lkt

    _, plain, uses_ref, average, _, options = CASES[name]
    h, w, b = (torch.tensor(a, requires_grad=True) for a in (hidden, weight, bias))
    t = torch.from_numpy(tokens)
    lp = lkt.linear_log_probs(h, w, t, b, chunk_size=chunk_size)
    valid = t != -100
    counted = valid.sum(-1).to(lp.dtype)
    seq = lp.sum(-1) / counted.clamp(min=1.0) if average else lp.sum(-1)
    kw = dict(_plain_options(options), reduction=reduction)
    if where is not None:
        kw["where"] = torch.from_numpy(where)
    if plain is lk.cpo:
        kw["chosen_lengths"] = counted[:B].clamp(min=1.0)
    extra = [torch.from_numpy(r) for r in ref] if uses_ref else []
    value = plain(seq[:B], seq[B:], *extra, **kw)
    grads = torch.autograd.grad(value, (h, w, b), allow_unused=True)
    return value.item(), [np.zeros_like(a) if g is None else g.numpy() for g, a in zip(grads, (h, w, b))]


def _args(name, hidden, weight, bias, tokens, ref):
    fused, _, uses_ref, _, bias_at, _ = CASES[name]
    args = [hidden, weight, tokens, *(ref if uses_ref else [])]
    args.insert(bias_at, bias)
    return fused, bias_at, args


def _close(value, grads, expected, expected_grads):
    np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-15)
    for ours, ref, what in zip(grads, expected_grads, ("hidden", "weight", "bias")):
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-13, err_msg=what)


PARAMS = [
    (name, reduction, where, chunk)
    for name in CASES
    for reduction, where in (("mean", None), ("sum", WHERE), ("mean", WHERE))
    for chunk in (1, "auto")  # one pair per chunk (the rows regrouped), or all pairs in one
]


@pytest.mark.parametrize(("name", "reduction", "where", "chunk"), PARAMS)
def test_numpy_value_and_grad_equals_composition_and_naive(name, reduction, where, chunk, rng):
    hidden, weight, bias, tokens, ref = _batch(rng)
    fused, bias_at, args = _args(name, hidden, weight, bias, tokens, ref)
    options = dict(CASES[name][5], reduction=reduction, where=where, chunk_size=chunk)
    value, grads = lk.value_and_grad(fused, argnums=(0, 1, bias_at))(*args, **options)
    _close(value, grads, *_naive(name, hidden, weight, bias, tokens, ref, reduction, where))
    _close(value, grads, *_composition(name, hidden, weight, bias, tokens, ref, reduction, where, chunk))


@pytest.mark.parametrize(("name", "reduction", "where", "chunk"), PARAMS)
def test_torch_autograd_takes_one_sweep_and_equals_naive(name, reduction, where, chunk, rng):
    hidden, weight, bias, tokens, ref = _batch(rng)
    h, w, b = (torch.tensor(a, requires_grad=True) for a in (hidden, weight, bias))
    ref_t = [torch.from_numpy(r) for r in ref]
    fused, _, args = _args(name, h, w, b, torch.from_numpy(tokens), ref_t)
    options = dict(CASES[name][5], reduction=reduction, chunk_size=chunk)
    if where is not None:
        options["where"] = torch.from_numpy(where)
    value = fused(*args, **options)
    assert type(value.grad_fn).__name__ == "SinglePassFunctionBackward"
    grads = [g.numpy() for g in torch.autograd.grad(value, (h, w, b))]
    _close(value.item(), grads, *_naive(name, hidden, weight, bias, tokens, ref, reduction, where))
    composed = _composition(name, hidden, weight, bias, tokens, ref, reduction, where, chunk)
    _close(value.item(), grads, *composed)


def test_torch_upstream_gradient_scales_and_no_bias(rng):
    hidden, weight, _, tokens, ref = _batch(rng)
    h, w = (torch.tensor(a, requires_grad=True) for a in (hidden, weight))
    t, rc, rr = torch.from_numpy(tokens), *(torch.from_numpy(r) for r in ref)
    (3.0 * lk.linear_dpo(h, w, t, rc, rr, temperature=0.7, chunk_size=1)).backward()
    h2, w2 = (torch.tensor(a, requires_grad=True) for a in (hidden, weight))
    valid = t != -100
    lp = torch.log_softmax(h2 @ w2.T / 0.7, -1).gather(-1, torch.where(valid, t, 0)[..., None])[..., 0]
    seq = torch.where(valid, lp, torch.zeros_like(lp)).sum(-1)
    (3.0 * lk.dpo(seq[:B], seq[B:], rc, rr)).backward()
    np.testing.assert_allclose(h.grad.numpy(), h2.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(w.grad.numpy(), w2.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_numpy_temperature_and_weight_only(rng):
    hidden, weight, bias, tokens, ref = _batch(rng)
    value, gw = lk.value_and_grad(lk.linear_dpo, argnums=1)(
        hidden, weight, tokens, *ref, bias, temperature=1.7, label_smoothing=0.2, chunk_size=1
    )
    expected, (_, expected_w, _) = _naive(
        "dpo-smoothed", hidden, weight, bias, tokens, ref, "mean", None, temperature=1.7
    )
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    np.testing.assert_allclose(gw, expected_w, rtol=1e-10, atol=1e-13)


def test_nothing_counted_gives_zero_with_zero_gradient(rng):
    hidden, weight, bias, tokens, ref = _batch(rng)
    none = np.zeros(B, dtype=bool)
    value, grads = lk.value_and_grad(lk.linear_dpo, argnums=(0, 1, 5))(
        hidden, weight, tokens, *ref, bias, where=none, chunk_size=1
    )
    assert value == 0.0 and all(np.all(g == 0) for g in grads)
    h, w, b = (torch.tensor(a, requires_grad=True) for a in (hidden, weight, bias))
    value = lk.linear_simpo(h, w, torch.from_numpy(tokens), b, where=torch.from_numpy(none))
    value.backward()
    assert value.item() == 0.0 and all(torch.all(a.grad == 0) for a in (h, w, b))
    ignored = np.full_like(tokens, -100)  # no counted token at all: SimPO's means are 0
    value, grads = lk.value_and_grad(lk.linear_simpo, argnums=(0, 1, 3))(
        hidden, weight, ignored, bias, **CASES["simpo"][5]
    )
    expected, expected_grads = _naive("simpo", hidden, weight, bias, ignored, ref, "mean", None)
    _close(value, grads, expected, expected_grads)
    assert np.all(grads[0] == 0)


def test_torch_declines_where_the_composition_is_needed(rng):
    """A reference that requires a gradient, torch.func transforms and reduction='none' take
    the composition, differentiated by autograd; the values agree."""
    hidden, weight, bias, tokens, ref = _batch(rng)
    t = torch.from_numpy(tokens)
    h, w = (torch.tensor(a, requires_grad=True) for a in (hidden, weight))
    rc, rr = (torch.tensor(r, requires_grad=True) for r in ref)
    value = lk.linear_dpo(h, w, t, rc, rr)
    assert type(value.grad_fn).__name__ != "SinglePassFunctionBackward"
    g_rc, g_h = torch.autograd.grad(value, (rc, h))
    hh, ww = (torch.tensor(a, requires_grad=True) for a in (hidden, weight))
    rc2, rr2 = (torch.tensor(r, requires_grad=True) for r in ref)
    valid = t != -100
    lp = torch.log_softmax(hh @ ww.T, -1).gather(-1, torch.where(valid, t, 0)[..., None])[..., 0]
    seq = torch.where(valid, lp, torch.zeros_like(lp)).sum(-1)
    expected = lk.dpo(seq[:B], seq[B:], rc2, rr2)
    e_rc, e_h = torch.autograd.grad(expected, (rc2, hh))
    np.testing.assert_allclose(value.item(), expected.item(), rtol=1e-12)
    np.testing.assert_allclose(g_rc.numpy(), e_rc.numpy(), rtol=1e-10)
    np.testing.assert_allclose(g_h.numpy(), e_h.numpy(), rtol=1e-10, atol=1e-14)

    rc_c, rr_c = (torch.from_numpy(r) for r in ref)
    grad_h = torch.func.grad(lambda x: lk.linear_dpo(x, torch.from_numpy(weight), t, rc_c, rr_c))(
        torch.from_numpy(hidden)
    )
    np.testing.assert_allclose(grad_h.numpy(), e_h.numpy(), rtol=1e-10, atol=1e-14)

    per_pair = lk.linear_dpo(torch.tensor(hidden, requires_grad=True), w, t, rc_c, rr_c, reduction="none")
    assert per_pair.shape == (B,)
    assert type(per_pair.grad_fn).__name__ != "SinglePassFunctionBackward"


def test_float32_within_1e_5_of_float64(rng):
    hidden, weight, bias, tokens, ref = _batch(rng)
    expected, expected_grads = _naive("dpo", hidden, weight, bias, tokens, ref, "mean", None)
    f32 = [torch.tensor(a.astype(np.float32), requires_grad=True) for a in (hidden, weight, bias)]
    ref32 = [torch.from_numpy(r.astype(np.float32)) for r in ref]
    value = lk.linear_dpo(f32[0], f32[1], torch.from_numpy(tokens), *ref32, f32[2], beta=0.3)
    assert value.dtype == torch.float32
    grads = torch.autograd.grad(value, f32)
    np.testing.assert_allclose(value.item(), expected, rtol=1e-5)
    for ours, e in zip(grads, expected_grads):
        np.testing.assert_allclose(ours.numpy(), e, rtol=1e-5, atol=1e-5 * np.abs(e).max())


# -- GRPO: chunks of whole sequences, the batch's normaliser known before the sweep ---------------

GRPO_CASES = {
    "grpo": {"loss_type": "grpo", "beta": 0.04},
    "dapo": {"loss_type": "dapo", "epsilon_high": 0.28},
    "dapo-normalizer": {"loss_type": "dapo", "normalizer": 7.0},
    "dr_grpo": {"loss_type": "dr_grpo", "beta": 0.1},
    "sum": {"loss_type": "grpo", "reduction": "sum"},
    "no-old": {"loss_type": "grpo", "old": False},
    "token-advantages": {"loss_type": "dapo", "token_advantages": True},
}


def _grpo_inputs(rng, tokens, case):
    rows = tokens.shape[0]
    options = dict(GRPO_CASES[case])
    old = None if options.pop("old", True) is False else -rng.uniform(0.5, 3, size=(rows, L))
    adv = rng.normal(size=(rows, L) if options.pop("token_advantages", False) else rows)
    options["ref_log_probs"] = -rng.uniform(0.5, 3, size=(rows, L))
    return adv, old, options


def _grpo_naive(hidden, weight, bias, tokens, adv, old, options):
    h, w, b = (torch.tensor(a, requires_grad=True) for a in (hidden, weight, bias))
    t = torch.from_numpy(tokens)
    valid = t != -100
    lp = torch.log_softmax(h @ w.T + b, -1).gather(-1, torch.where(valid, t, 0)[..., None])[..., 0]
    lp = torch.where(valid, lp, torch.zeros_like(lp))
    kw = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
    old_t = lp.detach() if old is None else torch.from_numpy(old)
    value = lk.grpo(lp, old_t, torch.from_numpy(adv), where=valid, **kw)
    grads = torch.autograd.grad(value, (h, w, b))
    return value.item(), [g.numpy() for g in grads]


@pytest.mark.parametrize("chunk", [1, "auto"])
@pytest.mark.parametrize("case", list(GRPO_CASES))
def test_grpo_numpy_and_torch_one_sweep_equal_naive(case, chunk, rng):
    hidden, weight, bias, tokens, _ = _batch(rng)
    adv, old, options = _grpo_inputs(rng, tokens, case)
    expected = _grpo_naive(hidden, weight, bias, tokens, adv, old, options)
    value, grads = lk.value_and_grad(lk.linear_grpo, argnums=(0, 1, 5))(
        hidden, weight, tokens, adv, old, bias, chunk_size=chunk, **options
    )
    _close(value, grads, *expected)

    h, w, b = (torch.tensor(a, requires_grad=True) for a in (hidden, weight, bias))
    kw = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
    old_t = None if old is None else torch.from_numpy(old)
    t, adv_t = torch.from_numpy(tokens), torch.from_numpy(adv)
    value = lk.linear_grpo(h, w, t, adv_t, old_t, b, chunk_size=chunk, **kw)
    assert type(value.grad_fn).__name__ == "SinglePassFunctionBackward"
    grads = [g.numpy() for g in torch.autograd.grad(value, (h, w, b))]
    _close(value.item(), grads, *expected)


def test_grpo_nothing_counted_gives_zero_with_zero_gradient(rng):
    hidden, weight, bias, tokens, _ = _batch(rng)
    ignored = np.full_like(tokens, -100)
    for loss_type in ("grpo", "dapo", "dr_grpo"):
        value, grads = lk.value_and_grad(lk.linear_grpo, argnums=(0, 1, 5))(
            hidden, weight, ignored, np.ones(2 * B), None, bias, loss_type=loss_type, chunk_size=1
        )
        assert value == 0.0 and all(np.all(g == 0) for g in grads)


def test_torch_learnable_beta_keeps_its_gradient(rng):
    """A beta that requires a gradient is left to autograd through the composition."""
    hidden, weight, bias, tokens, ref = _batch(rng)
    h = torch.tensor(hidden, requires_grad=True)
    beta = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    w, t = torch.from_numpy(weight), torch.from_numpy(tokens)
    value = lk.linear_dpo(h, w, t, *map(torch.from_numpy, ref), beta=beta)
    assert type(value.grad_fn).__name__ != "SinglePassFunctionBackward"
    g_beta, g_h = torch.autograd.grad(value, (beta, h))
    expected, (e_h, _, _) = _naive("dpo", hidden, weight, np.zeros(V), tokens, ref, "mean", None)
    np.testing.assert_allclose(value.item(), expected, rtol=1e-12)
    np.testing.assert_allclose(g_h.numpy(), e_h, rtol=1e-10, atol=1e-14)
    assert g_beta.item() != 0.0


def test_float64_reference_promotes_the_value_as_the_composition_does(rng):
    hidden, weight, bias, tokens, ref = _batch(rng)
    x32, w32 = hidden.astype(np.float32), weight.astype(np.float32)
    value, _ = lk.value_and_grad(lk.linear_dpo, argnums=0)(x32, w32, tokens, *ref)
    forward_only = lk.linear_dpo(x32, w32, tokens, *ref)  # the composition (no gradient asked)
    assert value.dtype == forward_only.dtype == np.float64
    np.testing.assert_allclose(value, forward_only, rtol=1e-6)
    h = torch.tensor(x32, requires_grad=True)
    value = lk.linear_dpo(h, torch.from_numpy(w32), torch.from_numpy(tokens), *map(torch.from_numpy, ref))
    assert type(value.grad_fn).__name__ == "SinglePassFunctionBackward" and value.dtype == torch.float64
