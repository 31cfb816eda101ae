"""CTC beyond the shared table: PyTorch and Optax through a log-softmax, the true gradient,
zero_infinity, target layouts, unbatched input, dynamic lengths under jit, Dask, bad input and
extreme values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import losskit as lk
from tests.support.numerics import finite_difference

T, N, C = 6, 3, 5


def _log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _batch(rng, scale=2.0):
    logits = rng.normal(size=(T, N, C)) * scale
    targets = np.array([[1, 1, 3], [2, 4, 0], [3, 0, 0]])  # a repeat, padding with 0s
    return logits, targets, np.array([6, 5, 3]), np.array([3, 2, 1])


def _through_log_softmax(g, log_probs):
    """Chain d loss / d log_probs through log_softmax: d loss / d logits."""
    return g - np.exp(log_probs) * g.sum(-1, keepdims=True)


def _torch(*arrays):
    import torch

    return [torch.from_numpy(np.array(a)) for a in arrays]


# -- references -------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_logit_gradient_through_log_softmax_matches_pytorch(reduction, rng):
    import torch
    import torch.nn.functional as F

    logits, targets, il, tl = _batch(rng)
    lp = _log_softmax(logits)
    value, g = lk.value_and_grad(lk.ctc)(lp, targets, il, tl, reduction=reduction)
    x, t_targets, t_il, t_tl = _torch(logits, targets, il, tl)
    x.requires_grad_(True)
    ref = F.ctc_loss(F.log_softmax(x, -1), t_targets, t_il, t_tl, reduction=reduction)
    (ref_grad,) = torch.autograd.grad(ref.sum(), x)
    np.testing.assert_allclose(value, ref.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(_through_log_softmax(g, lp), ref_grad.numpy(), rtol=1e-7, atol=1e-12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    frames=st.integers(1, 7),
    batch=st.integers(1, 4),
    classes=st.integers(2, 5),
    width=st.integers(0, 4),
    blank=st.integers(0, 4),
    concatenated=st.booleans(),
)
def test_random_problems_match_pytorch_through_log_softmax(
    seed, frames, batch, classes, width, blank, concatenated
):
    """Any sizes, lengths (targets that cannot fit included, with zero_infinity), blank and
    target layout: per-sequence values and logit gradients equal PyTorch's."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(seed)
    blank = blank % classes
    logits = rng.normal(size=(frames, batch, classes)) * 2
    lp = _log_softmax(logits)
    labels = np.array([c for c in range(classes) if c != blank])
    targets = rng.choice(labels, size=(batch, width))
    il = rng.integers(0, frames + 1, size=batch)
    tl = rng.integers(0, width + 1, size=batch)
    if concatenated:
        targets = np.concatenate([targets[n, : tl[n]] for n in range(batch)]).astype(np.int64)
    per, g = lk.value_and_grad(lk.ctc)(lp, targets, il, tl, blank=blank, zero_infinity=True, reduction="none")
    x, t_targets, t_il, t_tl = _torch(logits, targets, il, tl)
    x.requires_grad_(True)
    ref = F.ctc_loss(
        F.log_softmax(x, -1), t_targets, t_il, t_tl, blank=blank, zero_infinity=True, reduction="none"
    )
    (ref_grad,) = torch.autograd.grad(ref.sum(), x)
    np.testing.assert_allclose(per, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_through_log_softmax(g, lp), ref_grad.numpy(), rtol=1e-7, atol=1e-10)


def test_gradient_differs_from_pytorchs_backward_by_the_probabilities(rng):
    """PyTorch's backward with respect to log_probs is p - posterior; the true one is
    -posterior: they differ by exp(log_probs) on each sequence's frames, 0 after them."""
    import torch
    import torch.nn.functional as F

    logits, targets, il, tl = _batch(rng)
    lp = _log_softmax(logits)
    _, ours = lk.value_and_grad(lk.ctc)(lp, targets, il, tl, reduction="sum")
    t_lp, t_targets, t_il, t_tl = _torch(lp, targets, il, tl)
    t_lp.requires_grad_(True)
    (theirs,) = torch.autograd.grad(F.ctc_loss(t_lp, t_targets, t_il, t_tl, reduction="sum"), t_lp)
    frames = (np.arange(T)[:, None] < il[None, :])[..., None]
    np.testing.assert_allclose(theirs.numpy() - ours, np.exp(lp) * frames, rtol=1e-9, atol=1e-12)


def test_gradient_is_minus_the_posterior_occupation(rng):
    logits, targets, il, tl = _batch(rng)
    _, g = lk.value_and_grad(lk.ctc)(_log_softmax(logits), targets, il, tl, reduction="sum")
    assert np.all(g <= 0)
    per_frame = g.sum(-1)  # every frame of a sequence emits exactly one class
    np.testing.assert_allclose(per_frame, -(np.arange(T)[:, None] < il[None, :]).astype(float), atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_true_gradient_matches_finite_differences_on_unnormalised_log_probs(reduction, rng):
    """The value is a function of any log_probs (they are not renormalised), and the gradient
    is its derivative, with no log_softmax assumed."""
    import torch.nn.functional as F

    logits, targets, il, tl = _batch(rng)
    x = logits * 0.5 - 1.0  # not normalised
    value, g = lk.value_and_grad(lk.ctc)(x, targets, il, tl, reduction=reduction)
    np.testing.assert_allclose(value, F.ctc_loss(*_torch(x, targets, il, tl), reduction=reduction).numpy())
    fd = finite_difference(lk.ctc, (x, targets, il, tl), {"reduction": reduction}, 0, 1e-6)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


def test_matches_optax_ctc_loss(rng):
    """optax.losses.ctc_loss takes (B, T, K) logits (it applies log_softmax itself), padding
    indicators instead of lengths, and returns unreduced losses.  Mapping: logits =
    log_probs moved to batch-major (log_softmax leaves normalised log-probabilities
    unchanged), logit_paddings[b, t] = t >= input_lengths[b], label_paddings[b, s] =
    s >= target_lengths[b], reduction="none".  Its log(0) stand-in log_epsilon = -1e5 is
    exact in float64 (exp(-1e5) underflows to 0)."""
    import jax
    import jax.numpy as jnp
    import optax

    logits, targets, il, tl = _batch(rng)
    lp = _log_softmax(logits)
    ours, g = lk.value_and_grad(lk.ctc)(lp, targets, il, tl, reduction="none")
    logit_paddings = (np.arange(T)[None, :] >= il[:, None]).astype(np.float64)
    label_paddings = (np.arange(targets.shape[1])[None, :] >= tl[:, None]).astype(np.float64)

    def total(x):
        return optax.losses.ctc_loss(x, logit_paddings, jnp.asarray(targets), label_paddings).sum()

    x = jnp.asarray(np.transpose(logits, (1, 0, 2)))
    theirs = optax.losses.ctc_loss(x, logit_paddings, jnp.asarray(targets), label_paddings)
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-10)
    their_grad = np.transpose(np.asarray(jax.grad(total)(x)), (1, 0, 2))
    np.testing.assert_allclose(_through_log_softmax(g, lp), their_grad, rtol=1e-7, atol=1e-12)


def test_hand_computed_alignments():
    """T = 2, target [1]: the alignments (1, 1), (0, 1), (1, 0) with blank 0."""
    p = np.array([[0.6, 0.4], [0.3, 0.7]])
    expected = -np.log(p[0, 1] * p[1, 1] + p[0, 0] * p[1, 1] + p[0, 1] * p[1, 0])
    value = lk.ctc(np.log(p), np.array([1]), 2, 1, reduction="sum")
    np.testing.assert_allclose(value, expected, rtol=1e-14)
    # a repeated label needs a blank between its copies: [1, 1] cannot fit in 2 frames
    assert lk.ctc(np.log(p), np.array([1, 1]), 2, 2, reduction="sum") == np.inf


# -- zero_infinity and infeasible targets -----------------------------------------------------


def _infeasible(rng):
    lp = _log_softmax(rng.normal(size=(T, N, C)))
    targets = np.array([[1, 2, 3], [1, 1, 2], [1, 2, 0]])
    il = np.array([6, 3, 0])  # [1, 1, 2] needs 4 frames; the third sequence has none
    tl = np.array([3, 3, 0])  # ... and an empty target fits an empty input (loss 0)
    return lp, targets, il, tl


@pytest.mark.parametrize("zero_infinity", [False, True])
def test_target_that_cannot_fit_is_infinite_or_zeroed_as_pytorch(zero_infinity, rng):
    import torch.nn.functional as F

    lp, targets, il, tl = _infeasible(rng)
    per = lk.ctc(lp, targets, il, tl, zero_infinity=zero_infinity, reduction="none")
    ref = F.ctc_loss(*_torch(lp, targets, il, tl), zero_infinity=zero_infinity, reduction="none")
    np.testing.assert_allclose(per, ref.numpy(), rtol=1e-12)
    assert per[1] == (0.0 if zero_infinity else np.inf) and per[2] == 0.0
    _, g = lk.value_and_grad(lk.ctc)(lp, targets, il, tl, zero_infinity=zero_infinity, reduction="mean")
    _, g_alone = lk.value_and_grad(lk.ctc)(lp, targets, il, tl, where=np.array([True, False, True]))
    np.testing.assert_array_equal(g[:, 2], 0.0)
    if zero_infinity:
        np.testing.assert_array_equal(g[:, 1], 0.0)
        np.testing.assert_allclose(g[:, 0], g_alone[:, 0] * 2 / 3, rtol=1e-12)  # mean over 3, not 2
    else:
        # the loss is infinite around this point: its gradient is undefined (NaN, as PyTorch)
        assert np.all(np.isnan(g[:3, 1])) and np.all(g[3:, 1] == 0)
        np.testing.assert_allclose(g[:, 0], g_alone[:, 0] * 2 / 3, rtol=1e-12)


def test_masked_out_infinite_sequence_has_zero_gradient(rng):
    lp, targets, il, tl = _infeasible(rng)
    value, g = lk.value_and_grad(lk.ctc)(lp, targets, il, tl, where=np.array([True, False, True]))
    assert np.isfinite(value) and np.all(np.isfinite(g)) and np.all(g[:, 1] == 0)


def test_zero_input_length(rng):
    lp = _log_softmax(rng.normal(size=(3, 2, 4)))
    per = lk.ctc(lp, np.array([[1], [0]]), np.array([0, 0]), np.array([1, 0]), reduction="none")
    np.testing.assert_array_equal(per, [np.inf, 0.0])


# -- layouts ----------------------------------------------------------------------------------


def test_concatenated_targets_equal_padded(rng):
    logits, targets, il, tl = _batch(rng)
    lp = _log_softmax(logits)
    flat = np.concatenate([targets[n, : tl[n]] for n in range(N)])
    for reduction in ("mean", "sum", "none"):
        a, ga = lk.value_and_grad(lk.ctc)(lp, targets, il, tl, reduction=reduction)
        b, gb = lk.value_and_grad(lk.ctc)(lp, flat, il, tl, reduction=reduction)
        np.testing.assert_allclose(a, b, rtol=1e-14)
        np.testing.assert_allclose(ga, gb, rtol=1e-14)


def test_lengths_as_python_sequences_and_unbatched_input(rng):
    logits, targets, il, tl = _batch(rng)
    lp = _log_softmax(logits)
    per = lk.ctc(lp, targets, il, tl, reduction="none")
    np.testing.assert_allclose(
        lk.ctc(lp, targets, tuple(il.tolist()), list(tl.tolist()), reduction="none"), per
    )
    for n in range(N):
        for lengths in [(int(il[n]), int(tl[n])), ((int(il[n]),), (int(tl[n]),)), (il[n : n + 1], tl[n])]:
            one = lk.ctc(lp[:, n], targets[n], *lengths, reduction="none")
            assert np.shape(one) == ()
            np.testing.assert_allclose(one, per[n], rtol=1e-14)
        _, g = lk.value_and_grad(lk.ctc)(lp[:, n], targets[n], int(il[n]), int(tl[n]), reduction="sum")
        _, g_all = lk.value_and_grad(lk.ctc)(lp, targets, il, tl, reduction="sum")
        assert g.shape == (T, C)
        np.testing.assert_allclose(g, g_all[:, n], rtol=1e-14)


def test_empty_targets_and_labels_next_to_the_blank(rng):
    """A target of length 0 is all-blank alignments; blank may be any class."""
    lp = _log_softmax(rng.normal(size=(4, 2, 3)))
    per = lk.ctc(lp, np.zeros((2, 0), dtype=np.int64), np.array([4, 2]), np.array([0, 0]), reduction="none")
    np.testing.assert_allclose(per, [-lp[:4, 0, 0].sum(), -lp[:2, 1, 0].sum()], rtol=1e-14)
    import torch.nn.functional as F

    targets, il, tl = np.array([[0, 1], [1, 1]]), np.array([4, 4]), np.array([2, 2])
    ours = lk.ctc(lp, targets, il, tl, blank=2, reduction="none")
    np.testing.assert_allclose(ours, F.ctc_loss(*_torch(lp, targets, il, tl), blank=2, reduction="none"))


# -- backends ---------------------------------------------------------------------------------


@pytest.mark.parametrize("concatenated", [False, True])
def test_jit_with_traced_lengths_and_targets(concatenated, rng):
    """Lengths and targets are jit arguments (traced): the checks skip them, the static width
    of concatenated targets is their total length, and the numbers do not change."""
    import jax
    import jax.numpy as jnp

    logits, targets, il, tl = _batch(rng)
    lp = _log_softmax(logits)
    if concatenated:
        targets = np.concatenate([targets[n, : tl[n]] for n in range(N)])
    expected, g_expected = lk.value_and_grad(lk.ctc)(lp, targets, il, tl)
    vg = jax.jit(lambda *a: lk.value_and_grad(lk.ctc)(*a))
    value, g = vg(*(jnp.asarray(a) for a in (lp, targets, il, tl)))
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    np.testing.assert_allclose(g, g_expected, rtol=1e-10, atol=1e-14)
    autodiff = jax.jit(jax.grad(lambda x, *a: lk.ctc(x, *a)))(
        *(jnp.asarray(a) for a in (lp, targets, il, tl))
    )
    np.testing.assert_allclose(autodiff, g_expected, rtol=1e-9, atol=1e-13)


def test_torch_autograd_through_losskit_gives_the_true_gradient(rng):
    import torch

    logits, targets, il, tl = _batch(rng)
    x = logits * 0.3  # unnormalised on purpose
    t_x, t_targets, t_il, t_tl = _torch(x, targets, il, tl)
    t_x.requires_grad_(True)
    (autograd,) = torch.autograd.grad(lk.ctc(t_x, t_targets, t_il, t_tl), t_x)
    _, analytic = lk.value_and_grad(lk.ctc)(x, targets, il, tl)
    np.testing.assert_allclose(autograd.numpy(), analytic, rtol=1e-9, atol=1e-13)


def test_dask_stays_lazy_with_python_lengths_and_concatenated_targets(rng):
    import dask
    import dask.array as da

    logits, targets, il, tl = _batch(rng)
    lp = _log_softmax(logits)
    flat = np.concatenate([targets[n, : tl[n]] for n in range(N)])
    computed = []
    with dask.config.set(scheduler=lambda dsk, keys, **kw: computed.append(1) or dask.get(dsk, keys)):
        value, g = lk.value_and_grad(lk.ctc)(
            da.from_array(lp, chunks=(3, 2, 5)), da.from_array(flat), il.tolist(), da.from_array(tl)
        )
    assert computed == [] and isinstance(value, da.Array) and isinstance(g, da.Array)
    expected, g_expected = lk.value_and_grad(lk.ctc)(lp, flat, il, tl)
    np.testing.assert_allclose(value.compute(), expected, rtol=1e-12)
    np.testing.assert_allclose(g.compute(), g_expected, rtol=1e-12)


# -- extreme values and dtypes ----------------------------------------------------------------


def test_long_sequence_in_float32_stays_finite_in_log_space(rng):
    """400 frames: the probability of the target is far below float32's range, its log is not."""
    lp = _log_softmax(rng.normal(size=(400, 2, 6)) * 3)
    targets = rng.integers(1, 6, size=(2, 50))
    il, tl = np.array([400, 300]), np.array([50, 40])
    v64, g64 = lk.value_and_grad(lk.ctc)(lp, targets, il, tl, reduction="sum")
    v32, g32 = lk.value_and_grad(lk.ctc)(lp.astype(np.float32), targets, il, tl, reduction="sum")
    assert v32.dtype == np.float32 and g32.dtype == np.float32
    assert v64 > 200 and np.all(np.isfinite(g32))
    np.testing.assert_allclose(v32, v64, rtol=1e-5)
    np.testing.assert_allclose(g32, g64, atol=5e-5)  # PyTorch float32: 5e-4


def test_peaked_logits_and_zero_probabilities(rng):
    """Logits of size 1e4 in float32 (log-probabilities ~ -1e4 and -inf) keep finite values
    and gradients wherever some alignment has non-zero probability."""
    logits = (rng.normal(size=(T, N, C)) * 1e4).astype(np.float32)
    lp = _log_softmax(logits)
    targets, il, tl = np.array([[1, 2], [3, 3], [4, 0]]), np.array([6, 6, 6]), np.array([2, 2, 1])
    value, g = lk.value_and_grad(lk.ctc)(lp, targets, il, tl, reduction="none")
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(g))
    ref, g_ref = lk.value_and_grad(lk.ctc)(lp.astype(np.float64), targets, il, tl, reduction="none")
    np.testing.assert_allclose(value, ref, rtol=1e-6)
    np.testing.assert_allclose(g, g_ref, atol=1e-6)
    lp0 = np.log(np.full((3, 1, 3), 0.5))
    lp0[:, :, 2] = -np.inf  # class 2 impossible: targets that avoid it are fine
    value, g = lk.value_and_grad(lk.ctc)(lp0, np.array([[1]]), np.array([3]), np.array([1]))
    np.testing.assert_allclose(value, -np.log(6 * 0.5**3), rtol=1e-14)  # 6 alignments of "1"
    assert np.all(np.isfinite(g)) and np.all(g[..., 2] == 0)


def test_float16_is_computed_in_float32_and_returned_as_float16(rng):
    logits, targets, il, tl = _batch(rng)
    lp = _log_softmax(logits)
    value, g = lk.value_and_grad(lk.ctc)(lp.astype(np.float16), targets, il, tl)
    assert value.dtype == np.float16 and g.dtype == np.float16
    expected = lk.ctc(lp.astype(np.float16).astype(np.float32), targets, il, tl)
    np.testing.assert_allclose(np.float32(value), expected, rtol=1e-3)


# -- bad input --------------------------------------------------------------------------------


def _good(rng):
    logits, targets, il, tl = _batch(rng)
    return [_log_softmax(logits), targets, il, tl], {}


BAD = [
    (
        "integer log_probs",
        lambda a, k: a.__setitem__(0, np.zeros((T, N, C), dtype=np.int64)),
        TypeError,
        "log_probs must be a real floating-point",
    ),
    (
        "4-d log_probs",
        lambda a, k: a.__setitem__(0, np.zeros((T, N, C, 1))),
        ValueError,
        r"log_probs must have shape \(T, N, C\) or \(T, C\)",
    ),
    ("empty batch", lambda a, k: a.__setitem__(0, np.zeros((T, 0, C))), ValueError, "log_probs is empty"),
    (
        "float targets",
        lambda a, k: a.__setitem__(1, a[1].astype(np.float64)),
        TypeError,
        "targets must hold integer labels",
    ),
    (
        "targets of another batch",
        lambda a, k: a.__setitem__(1, a[1][:2]),
        ValueError,
        r"padded targets must have shape \(N, S\) with N = 3",
    ),
    ("3-d targets", lambda a, k: a.__setitem__(1, a[1][None]), ValueError, "targets must be padded"),
    (
        "float lengths",
        lambda a, k: a.__setitem__(2, a[2].astype(np.float64)),
        TypeError,
        "input_lengths must hold integer lengths",
    ),
    (
        "lengths of another batch",
        lambda a, k: a.__setitem__(3, a[3][:2]),
        ValueError,
        r"target_lengths must have shape \(3,\)",
    ),
    (
        "string lengths",
        lambda a, k: a.__setitem__(2, "6"),
        TypeError,
        "input_lengths must be an integer array",
    ),
    (
        "input length past T",
        lambda a, k: a.__setitem__(2, np.array([7, 5, 3])),
        ValueError,
        r"input_lengths must be at most 6 \(the number of frames T",
    ),
    (
        "negative input length",
        lambda a, k: a.__setitem__(2, [6, -1, 3]),
        ValueError,
        "input_lengths must be >= 0; got -1",
    ),
    (
        "negative target length",
        lambda a, k: a.__setitem__(3, np.array([3, -2, 1])),
        ValueError,
        "target_lengths must be >= 0; got -2",
    ),
    (
        "target length past S",
        lambda a, k: a.__setitem__(3, np.array([4, 2, 1])),
        ValueError,
        r"target_lengths must be at most 3 \(the width S",
    ),
    (
        "concatenation of the wrong length",
        lambda a, k: a.__setitem__(1, np.array([1, 1, 3, 2, 4])),
        ValueError,
        r"concatenated targets must hold sum\(target_lengths\) = 6 labels; got 5",
    ),
    (
        "blank in a target",
        lambda a, k: a.__setitem__(1, np.array([[1, 0, 3], [2, 4, 0], [3, 0, 0]])),
        ValueError,
        "targets must not contain the blank label 0",
    ),
    (
        "label out of range",
        lambda a, k: a.__setitem__(1, np.array([[1, 5, 3], [2, 4, 0], [3, 0, 0]])),
        ValueError,
        r"targets hold label 5, outside \[0, 4\] for 5 classes",
    ),
    (
        "negative label",
        lambda a, k: a.__setitem__(1, np.array([[1, 2, 3], [-3, 4, 0], [3, 0, 0]])),
        ValueError,
        r"targets hold label -3",
    ),
    (
        "blank out of range",
        lambda a, k: k.update(blank=5),
        ValueError,
        r"blank must be a class index in \[0, 4\]",
    ),
    ("float blank", lambda a, k: k.update(blank=0.0), TypeError, "blank must be an int"),
    (
        "zero_infinity not a bool",
        lambda a, k: k.update(zero_infinity=1),
        TypeError,
        "zero_infinity must be a bool",
    ),
    (
        "unknown reduction",
        lambda a, k: k.update(reduction="batchmean"),
        ValueError,
        "reduction must be one of",
    ),
    (
        "where of the wrong shape",
        lambda a, k: k.update(where=np.ones(2, dtype=bool)),
        ValueError,
        "where of shape",
    ),
]


@pytest.mark.parametrize("name,mutate,error,message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_named(name, mutate, error, message, rng):
    args, kwargs = _good(rng)
    mutate(args, kwargs)
    with pytest.raises(error, match=message):
        lk.ctc(*args, **kwargs)


def test_bad_unbatched_input_and_mixed_libraries(rng):
    import torch

    lp = _log_softmax(rng.normal(size=(T, C)))
    with pytest.raises(ValueError, match=r"targets of an unbatched \(T, C\) input must be 1-d"):
        lk.ctc(lp, np.array([[1, 2]]), 6, 2)
    with pytest.raises(ValueError, match=r"input_lengths must have shape \(\) or \(1,\)"):
        lk.ctc(lp, np.array([1, 2]), np.array([6, 6]), 2)
    with pytest.raises(TypeError, match="all arrays in one call must come from the same library"):
        lk.ctc(torch.from_numpy(lp), np.array([1, 2]), 6, 2)


def test_padding_past_target_lengths_is_not_checked(rng):
    """Like PyTorch, entries past a target's length are never read (any value is fine)."""
    args, _ = _good(rng)
    padded = args[1].copy()
    padded[2, 1:] = [-1, 99]
    np.testing.assert_allclose(lk.ctc(args[0], padded, *args[2:]), lk.ctc(*args), rtol=1e-14)
