"""Preference losses: against TRL's own loss code (float64), nothing counted gives 0 with a zero
gradient, bad input is refused naming the argument.  Values and gradients against the papers'
formulas, finite differences and every backend come from the case table
(tests/support/cases/preference.py)."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import pytest

import losskit as lk

torch = pytest.importorskip("torch")


# -- TRL ------------------------------------------------------------------------------------------
# TRL computes these losses inside its trainers' methods.  The methods are called unbound, with a
# stand-in for the trainer that carries exactly the attributes the loss code reads, and a stand-in
# model that returns the per-token log-probabilities the trainer would get from its fused LM head.


class _Accelerator:
    device = torch.device("cpu")
    num_processes = 1
    sync_gradients = True

    @staticmethod
    def gather(x):
        return x

    gather_for_metrics = gather

    @staticmethod
    def reduce(x, reduction="sum"):
        return x


def _trainer(**attributes):
    return SimpleNamespace(
        model=SimpleNamespace(training=True),
        accelerator=_Accelerator(),
        aux_loss_enabled=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
        **attributes,
    )


def _completions(rng, batch, length):
    """Per-token log-probabilities and masks laid out as TRL's collator does: one prompt token
    then the completion, right-padded; the model's outputs are shifted by one."""
    lengths = rng.integers(2, length + 1, size=batch)
    completion_mask = np.zeros((batch, length + 1), dtype=np.int64)
    for i, n in enumerate(lengths):
        completion_mask[i, 1 : n + 1] = 1
    per_token = -rng.uniform(0.05, 3.0, size=(batch, length)) * completion_mask[:, 1:]
    return per_token, completion_mask


def _model(per_token):
    log_probs = torch.from_numpy(per_token).requires_grad_(True)

    def model(**_kwargs):
        zeros = torch.zeros(per_token.shape, dtype=torch.float64)
        return SimpleNamespace(log_probs=log_probs, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool())

    return model, log_probs


def _trl_dpo(per_token, completion_mask, ref_chosen, ref_rejected, loss_type, beta, label_smoothing):
    from trl.trainer.dpo_trainer import DPOTrainer

    trainer = _trainer(
        ld_alpha=None,
        precompute_ref_logps=True,
        f_divergence_type="reverse_kl",
        loss_types=[loss_type],
        loss_weights=[1.0],
        beta=beta,
        label_smoothing=label_smoothing,
        use_weighting=False,
    )
    model, leaf = _model(per_token)
    inputs = {
        "input_ids": torch.zeros(completion_mask.shape, dtype=torch.int64),
        "attention_mask": torch.ones(completion_mask.shape, dtype=torch.int64),
        "completion_mask": torch.from_numpy(completion_mask),
        "ref_chosen_logps": torch.from_numpy(ref_chosen),
        "ref_rejected_logps": torch.from_numpy(ref_rejected),
    }
    loss = DPOTrainer._compute_loss(trainer, model, inputs, return_outputs=False)
    (grad,) = torch.autograd.grad(loss, leaf)
    return loss.item(), grad.numpy()


@pytest.mark.parametrize(
    "loss_type,beta,label_smoothing",
    [
        ("sigmoid", 0.1, 0.0),
        ("sigmoid", 0.5, 0.0),
        ("robust", 0.1, 0.2),
        ("ipo", 0.3, 0.0),
        ("hinge", 0.05, 0.0),
    ],
)
def test_dpo_matches_trl(rng, loss_type, beta, label_smoothing):
    pytest.importorskip("trl")
    batch = 5
    per_token, completion_mask = _completions(rng, 2 * batch, 7)
    ref = -rng.uniform(2.0, 15.0, size=(2, batch))
    trl_value, trl_grad = _trl_dpo(per_token, completion_mask, *ref, loss_type, beta, label_smoothing)
    sums = per_token.sum(axis=1)
    args = [sums[:batch], sums[batch:], ref[0], ref[1]]
    lengths = completion_mask.sum(axis=1).astype(np.float64)
    if loss_type == "ipo":  # TRL (and the IPO authors) average the log-ratios over the completion
        args = [
            args[0] / lengths[:batch],
            args[1] / lengths[batch:],
            ref[0] / lengths[:batch],
            ref[1] / lengths[batch:],
        ]
    options = dict(beta=beta, loss_type=loss_type, label_smoothing=label_smoothing)
    value, (g_chosen, g_rejected) = lk.value_and_grad(lk.dpo, argnums=(0, 1))(*args, **options)
    np.testing.assert_allclose(value, trl_value, rtol=1e-12)
    # d loss / d token log-prob = d loss / d sequence value (x 1 / length for IPO) on counted tokens
    # (TRL sums every position; the fused head gives 0 log-probs, not 0 gradients, at padding)
    per_sequence = np.concatenate([g_chosen, g_rejected])
    if loss_type == "ipo":
        per_sequence = per_sequence / lengths
    counted = completion_mask[:, 1:] == 1
    expected = np.broadcast_to(per_sequence[:, None], counted.shape)
    np.testing.assert_allclose(trl_grad[counted], expected[counted], rtol=1e-10, atol=1e-15)


def _cpo_trainer(loss_type, beta, label_smoothing, gamma=0.5):
    return SimpleNamespace(
        alpha=0.0,
        accelerator=_Accelerator(),
        loss_type=loss_type,
        beta=beta,
        label_smoothing=label_smoothing,
        simpo_gamma=gamma,
    )


@pytest.mark.parametrize("label_smoothing", [0.0, 0.15])
def test_cpo_and_simpo_match_trl(rng, label_smoothing):
    pytest.importorskip("trl")
    from trl.experimental.cpo.cpo_trainer import CPOTrainer

    chosen, rejected = -rng.uniform(5, 40, size=6), -rng.uniform(5, 40, size=6)
    tc, tr = torch.from_numpy(chosen), torch.from_numpy(rejected)
    losses = CPOTrainer.cpo_loss(_cpo_trainer("sigmoid", 0.1, label_smoothing), tc, tr)[0]
    ours = lk.cpo(chosen, rejected, beta=0.1, alpha=0.0, label_smoothing=label_smoothing, reduction="none")
    np.testing.assert_allclose(ours, losses.numpy(), rtol=1e-12)
    # SimPO is CPOTrainer's loss_type="simpo" on mean log-probabilities (cpo_alpha=0)
    chosen, rejected = -rng.uniform(0.2, 3, size=6), -rng.uniform(0.2, 3, size=6)
    trainer = _cpo_trainer("simpo", 2.0, label_smoothing, gamma=1.2)
    losses = CPOTrainer.cpo_loss(trainer, torch.from_numpy(chosen), torch.from_numpy(rejected))[0]
    ours = lk.simpo(chosen, rejected, beta=2.0, gamma=1.2, label_smoothing=label_smoothing, reduction="none")
    np.testing.assert_allclose(ours, losses.numpy(), rtol=1e-12)


def test_cpo_nll_term_is_the_token_mean_of_equal_length_completions(rng):
    # TRL adds cpo_alpha times the cross-entropy averaged over every chosen token of the batch
    length = 9
    per_token = -rng.uniform(0.05, 3.0, size=(6, length))
    chosen, rejected = per_token.sum(axis=1), -rng.uniform(5, 40, size=6)
    lengths = np.full(6, length)
    with_nll = lk.cpo(chosen, rejected, alpha=0.7, chosen_lengths=lengths)
    without = lk.cpo(chosen, rejected, alpha=0.0)
    np.testing.assert_allclose(with_nll - without, 0.7 * -per_token.mean(), rtol=1e-12)


def test_orpo_matches_trl(rng):
    pytest.importorskip("trl")
    from trl.experimental.orpo.orpo_trainer import ORPOTrainer

    chosen, rejected = -rng.uniform(0.05, 3.0, size=8), -rng.uniform(0.05, 3.0, size=8)
    trainer = SimpleNamespace(beta=0.25, accelerator=_Accelerator())
    # TRL's loss is nll - mean(beta * log sigmoid(log odds)); its odds_ratio_loss returns the
    # second term per pair, computed in float32
    ratio_term = ORPOTrainer.odds_ratio_loss(trainer, torch.from_numpy(chosen), torch.from_numpy(rejected))[0]
    ours = lk.orpo(chosen, rejected, beta=0.25, reduction="none")
    np.testing.assert_allclose(ours - (-chosen), -ratio_term.double().numpy(), rtol=2e-6)


def test_kto_matches_trl(rng):
    pytest.importorskip("trl")
    from trl.trainer.kto_trainer import KTOTrainer

    batch, length = 8, 6
    per_token, completion_mask = _completions(rng, batch, length)
    labels = np.array([True, False, True, True, False, False, True, False])
    ref = -rng.uniform(2.0, 15.0, size=batch)
    kl_policy, kl_ref = -rng.uniform(2.0, 15.0, size=batch), -rng.uniform(2.0, 15.0, size=batch)
    kl_policy = kl_ref + rng.normal(0.8, 1.0, size=batch)  # a positive KL estimate, not floored
    trainer = _trainer(
        precompute_ref_logps=True,
        calculate_KL=True,
        loss_type="kto",
        beta=0.3,
        desirable_weight=1.4,
        undesirable_weight=0.6,
        _compute_kl_logps=lambda model, batch: torch.from_numpy(kl_policy),
    )
    model, leaf = _model(per_token)
    inputs = {
        "input_ids": torch.zeros(completion_mask.shape, dtype=torch.int64),
        "attention_mask": torch.ones(completion_mask.shape, dtype=torch.int64),
        "completion_mask": torch.from_numpy(completion_mask),
        "label": torch.from_numpy(labels),
        "ref_logps": torch.from_numpy(ref),
        "ref_KL_logps": torch.from_numpy(kl_ref),
    }
    loss = KTOTrainer._compute_loss(trainer, model, inputs, return_outputs=False)
    (trl_grad,) = torch.autograd.grad(loss, leaf)
    value, grad = lk.value_and_grad(lk.kto)(
        per_token.sum(axis=1),
        ref,
        labels,
        policy_kl_logps=kl_policy,
        reference_kl_logps=kl_ref,
        beta=0.3,
        desirable_weight=1.4,
        undesirable_weight=0.6,
    )
    np.testing.assert_allclose(value, loss.item(), rtol=1e-12)
    counted = completion_mask[:, 1:] == 1
    expected = np.broadcast_to(grad[:, None], counted.shape)
    np.testing.assert_allclose(trl_grad.numpy()[counted], expected[counted], rtol=1e-10, atol=1e-15)


# -- nothing counted, bad input -------------------------------------------------------------------


def _calls(rng):
    pairs = [-rng.uniform(1, 20, size=4) for _ in range(4)]
    return [
        (lk.dpo, pairs, {}),
        (lk.dpo, pairs, {"loss_type": "ipo"}),
        (lk.simpo, pairs[:2], {}),
        (lk.orpo, [-rng.uniform(0.1, 2, size=4) for _ in range(2)], {}),
        (lk.cpo, pairs[:2], {}),
        (lk.kto, pairs[:2] + [np.array([True, False, True, False])], {}),
    ]


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_nothing_counted_gives_zero_with_zero_gradient(rng, backend):
    from tests.support.backends import BY_NAME

    convert = BY_NAME[backend]
    for fn, args, kwargs in _calls(rng):
        where = np.zeros(4, dtype=bool)
        b_args, b_kwargs = convert.args(tuple(args), dict(kwargs, where=where))
        value, grad = lk.value_and_grad(fn, argnums=(0, 1))(*b_args, **b_kwargs)
        assert float(convert.back(value)) == 0.0, fn.__name__
        for g in grad:
            assert np.all(convert.back(g) == 0.0), fn.__name__
        if backend == "torch":  # and autograd through the portable code agrees
            leaf = b_args[0].clone().requires_grad_(True)
            (g,) = torch.autograd.grad(fn(leaf, *b_args[1:], **b_kwargs), leaf)
            assert torch.all(g == 0)


def test_torch_autograd_reaches_a_learnable_beta(rng):
    pairs = [torch.from_numpy(-rng.uniform(1, 20, size=4)) for _ in range(4)]
    beta = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(lk.dpo(*pairs, beta=beta), beta)
    h = (pairs[0] - pairs[1]) - (pairs[2] - pairs[3])
    expected = (-torch.sigmoid(-0.2 * h) * h).mean()
    torch.testing.assert_close(g, expected)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda a: lk.dpo(a, a, a, a[:2]), "reference_rejected_logps must have the same shape"),
        (lambda a: lk.dpo(a, a, a, a.astype(np.int64)), "reference_rejected_logps must be a real floating"),
        (lambda a: lk.dpo(a, a, a, a, beta=0.0), r"beta must be in \(0"),
        (lambda a: lk.dpo(a, a, a, a, loss_type="kto"), "loss_type must be one of"),
        (lambda a: lk.dpo(a, a, a, a, loss_type="robust", label_smoothing=0.5), "label_smoothing must be in"),
        (lambda a: lk.dpo(a, a, a, a, loss_type="ipo", label_smoothing=0.1), "label_smoothing applies"),
        (lambda a: lk.dpo(a, a, a, a, where=np.ones(3, dtype=bool)), "where"),
        (lambda a: lk.simpo(a, a, chosen_lengths=np.zeros(4)), "chosen_lengths must hold lengths > 0"),
        (lambda a: lk.simpo(a, a, rejected_lengths=np.ones(3)), "rejected_lengths must have the same shape"),
        (lambda a: lk.orpo(a, -a), r"policy_rejected_logps must hold log-probabilities <= 0"),
        (lambda a: lk.cpo(a, a, alpha=-1.0), "alpha must be in"),
        (lambda a: lk.kto(a, a, a), "desirable must be a boolean array"),
        (lambda a: lk.kto(a, a, a > -3, policy_kl_logps=a), "must be given together"),
        (lambda a: lk.kto(a, a, a > -3, undesirable_weight=-1.0), "undesirable_weight must be in"),
        (lambda a: lk.kto(a, a[:3], a > -3), "reference_logps must have the same shape"),
        (lambda a: lk.dpo(a, a, a, a, reduction="batchmean"), "reduction must be one of"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(call, match):
    a = -np.linspace(1.0, 4.0, 4)
    with pytest.raises((ValueError, TypeError), match=match):
        call(a)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_orpo_at_probability_one_is_finite():
    # log p = 0: infinite odds for the chosen completion, the odds-ratio term is 0
    chosen, rejected = np.array([0.0, -1e-12, -1e-6]), np.array([-1.0, -1.0, -1.0])
    value, grad = lk.value_and_grad(lk.orpo)(chosen, rejected, beta=0.5, reduction="none")
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(value[0], 0.0, atol=1e-12)
    # the slope's limit at log p = 0: -1 - lambda odds_r (p_r = e^-1)
    odds_r = np.exp(-1.0) / (1 - np.exp(-1.0))
    np.testing.assert_allclose(grad, -1 - 0.5 * odds_r, rtol=2e-6)


def test_jax_jit_and_grad(rng):
    import jax
    import jax.numpy as jnp

    pairs = [jnp.asarray(-rng.uniform(1, 20, size=4)) for _ in range(4)]
    desirable = jnp.asarray([True, False, True, False])
    for fn, args in [(lk.dpo, pairs), (lk.kto, pairs[:2] + [desirable]), (lk.simpo, pairs[:2])]:
        value, grad = jax.jit(jax.value_and_grad(lambda x, *rest, f=fn: f(x, *rest, beta=0.3)))(*args)
        expected, analytic = lk.value_and_grad(fn)(*[np.asarray(a) for a in args], beta=0.3)
        np.testing.assert_allclose(value, expected, rtol=1e-12)
        np.testing.assert_allclose(grad, analytic, rtol=1e-10, atol=1e-15)
