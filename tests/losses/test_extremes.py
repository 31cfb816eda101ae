"""Every catalogued loss at the edges of its input.

- A NaN in the prediction gives NaN in every result that depends on it -- and only there --
  or a clear refusal; never a finite number.
- ``+inf``, ``-inf`` and huge finite values (1e30 in float64, float32's largest) in a logit-like
  prediction give the mathematical limit: the value the reference implementation (PyTorch,
  Optax or the paper's formula, from the case table) approaches as that entry grows without
  bound, found by evaluating the reference at 1e4, 1e6 and 1e8.  At ``+-inf`` the result must
  be that limit; at a huge finite value it must be that limit when the limit is finite, and
  else a number of the right sign at least as large as the reference at 1e8 (``inf`` where it
  overflows), never NaN.
- Probabilities outside [0, 1] (``inf``, ``1e30``) are refused.

Embeddings are left out of the infinite and huge checks (an infinite embedding has no
direction), and log-probabilities get only the negative ones (log p <= 0).  One NaN and up to
two extreme positions are tried per case: positions whose loss counts (not ignored, not masked
out), found by perturbing them.
"""

from __future__ import annotations

import functools
import re
import warnings

import numpy as np
import pytest

import losskit as lk
from losskit.losses.linear_cross_entropy import linear_cross_entropy
from tests.support.backends import BY_NAME
from tests.support.cases import ALL_CASES, Case
from tests.support.reference import reference_value


def _linear_cross_entropy_args(rng):
    return (rng.normal(size=(6, 4)), rng.normal(size=(5, 4)), rng.integers(0, 5, size=6)), {}


# linear_cross_entropy has no row in the case table (its reference is cross_entropy of the
# product); its prediction is an embedding, so only the NaN check applies
CASES = list(ALL_CASES) + [
    Case(id="linear_cross_entropy", fn=linear_cross_entropy, make_args=_linear_cross_entropy_args)
]
BY_ID = {c.id: c for c in CASES}
SPACE = {info.name: info.input_space for info in lk.catalog()}

# where an infinite or huge prediction has a limit to check: sign -> allowed
LIMIT_SPACES = {
    "logits": (1, -1),
    "scores": (1, -1),
    "values": (1, -1),
    "parameters": (1, -1),
    "log-probabilities": (-1,),
}
# losses whose limit the probes cannot show: MS-SSIM tends to 1 as a small power of 1/x (its
# scales' weights), still 0.96 at 1e8; tests/losses/test_images.py checks its limits
SLOW_LIMITS = {"ms_ssim_loss"}
F32_MAX = float(np.finfo(np.float32).max)
EXTREMES = [("inf", np.inf), ("1e30", 1e30), ("f32max", F32_MAX)]
PROBES = (1e4, 1e6, 1e8)


def _name(case):
    return case.fn.__name__


def _space(case):
    """The space of the case's prediction: the catalog's, or logits when an ``activation``
    option (Dice, Tversky) turns logits into probabilities inside the loss."""
    _, kwargs = case.make_args(np.random.default_rng(0))
    if kwargs.get("activation") is not None:
        return "logits"
    return SPACE[_name(case)]


def _reduction(case):
    for r in ("none", "sum", "mean"):
        if r in case.reductions:
            return r
    return case.reductions[0]


def _first(args):
    a0 = args[0]
    return a0[0] if isinstance(a0, (list, tuple)) else a0


def _with(args, pos, value):
    """``args`` with entry ``pos`` (flat) of the prediction (the first array) set to ``value``."""
    a0 = args[0]
    if isinstance(a0, (list, tuple)):
        first = np.array(a0[0], copy=True)
        first.reshape(-1)[pos] = value
        return (type(a0)([first, *a0[1:]]),) + tuple(args[1:])
    b = np.array(a0, copy=True)
    b.reshape(-1)[pos] = value
    return (b,) + tuple(args[1:])


def _as_float32(value):
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        return value.astype(np.float32)
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], np.ndarray):
        return type(value)(_as_float32(v) for v in value)
    return value


def _call(case, args, kwargs, reduction):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(case.fn(*args, reduction=reduction, **kwargs), dtype=np.float64)


def _reference(case, args, kwargs, reduction):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(reference_value(case, args, kwargs, reduction), dtype=np.float64)
    except (ValueError, RuntimeError, TypeError):
        return None  # outside the reference's domain


@functools.cache
def _setup(case_id):
    """The case's arguments, its reduction, its output there, and up to three positions of the
    prediction whose loss counts, each with the output entries that depend on it."""
    case = BY_ID[case_id]
    args, kwargs = case.make_args(np.random.default_rng(0))
    reduction = _reduction(case)
    base = _call(case, args, kwargs, reduction)
    flat = _first(args).reshape(-1)
    n = flat.size
    positions = []
    for pos in dict.fromkeys([n - 1, n // 2 + 1, 1, 0, n // 3, *range(n - 2, 0, -max(1, n // 9))]):
        if pos >= n:
            continue
        v = flat[pos]
        owners = np.zeros(base.shape, dtype=bool)
        for new in (v + 0.37, v - 0.41, v + 50.0, v - 50.0, 0.5 * v, 0.5 * (v + 1.0), 1.0 - v):
            try:
                out = _call(case, _with(args, pos, new), kwargs, reduction)
            except ValueError:  # out of the prediction's domain
                continue
            owners |= ~np.isclose(out, base, rtol=1e-13, atol=0.0)
        if owners.any():
            positions.append((pos, owners))
        if len(positions) == 3:
            break
    return args, kwargs, reduction, base, positions


def _is_refusal(exc):
    return isinstance(exc, (ValueError, TypeError))


# -- NaN in, NaN out ----------------------------------------------------------------------------


def test_every_catalogued_loss_is_covered():
    assert {_name(c) for c in CASES} == set(SPACE)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_nan_prediction_gives_nan_where_it_counts(case):
    args, kwargs, reduction, base, positions = _setup(case.id)
    assert positions, "no position of the prediction changes the loss"
    for pos, owners in positions:
        bad = _with(args, pos, np.nan)
        try:
            out = _call(case, bad, kwargs, reduction)
        except (ValueError, TypeError) as exc:
            assert "NaN" in str(exc), f"refusal that does not say NaN: {exc}"
            continue
        assert np.all(np.isnan(out[owners])), f"position {pos}: NaN in, {out[owners]} out"
        np.testing.assert_array_equal(out[~owners], base[~owners], err_msg=f"NaN leaked from {pos}")
        for other in case.reductions:
            if other != reduction:
                total = _call(case, bad, kwargs, other)
                assert np.all(np.isnan(total)) if total.ndim == 0 else np.any(np.isnan(total)), other


# -- infinite and huge logits -------------------------------------------------------------------


def _limit(case, args, kwargs, reduction, pos, sign):
    """The reference's limit, entry by entry, as the prediction's entry ``pos`` goes to
    ``sign * inf``: a number, +-inf, or NaN where the reference is undefined there; and the
    reference at the largest probe."""
    probes = [_reference(case, _with(args, pos, sign * s), kwargs, reduction) for s in PROBES]
    if any(p is None for p in probes):
        return None, None
    a, b, c = probes
    limit = np.full(c.shape, np.nan)
    with np.errstate(invalid="ignore"):
        infinite = np.isinf(a) & (a == b) & (b == c)
        # settled, or settling at least 50 times faster with each factor of 100 (as 1/x does)
        step = np.abs(c - b)
        converged = np.isfinite(c) & (
            (step <= 1e-6 * (1.0 + np.abs(c)))
            | ((step <= 0.02 * np.abs(b - a)) & (step <= 1e-4 * (1.0 + np.abs(c))))
        )
        growing = (
            np.isfinite(a)
            & np.isfinite(c)
            & (np.sign(c - b) == np.sign(b - a))
            & (np.abs(c - b) >= 0.5 * np.abs(b - a))
            & ~converged
        )
        direction = np.sign(c - b)
    limit[infinite] = c[infinite]
    limit[converged] = c[converged]
    limit[growing] = direction[growing] * np.inf
    unknown = ~(infinite | converged | growing | np.isnan(c))
    assert not unknown.any(), f"no clear limit from the reference: {a[unknown]}, {b[unknown]}, {c[unknown]}"
    return limit, c


def _extreme_params():
    out = []
    for case in CASES:
        signs = () if _name(case) in SLOW_LIMITS else LIMIT_SPACES.get(_space(case), ())
        for sign in signs:
            for label, _ in EXTREMES:
                tag = f"{'+' if sign > 0 else '-'}{label}"
                out.append(pytest.param(case, sign, label, id=f"{case.id}-{tag}"))
    return out


@pytest.mark.parametrize("case,sign,label", _extreme_params())
def test_infinite_and_huge_logits_give_the_limit(case, sign, label):
    args, kwargs, reduction, base, positions = _setup(case.id)
    assert positions
    magnitude = dict(EXTREMES)[label]
    float32 = label == "f32max"
    for pos, owners in positions[:2]:
        limit, at_probe = _limit(case, args, kwargs, reduction, pos, sign)
        call_args, call_kwargs = args, kwargs
        if float32:
            call_args = tuple(_as_float32(a) for a in args)
            call_kwargs = {k: _as_float32(v) for k, v in kwargs.items()}
        try:
            ours = _call(case, _with(call_args, pos, sign * magnitude), call_kwargs, reduction)
        except (ValueError, TypeError) as exc:
            # a refusal is right only outside the loss's domain: where the reference fails too,
            # or below a lower bound the message states (Poisson rates, Tweedie means)
            below_bound = sign < 0 and re.search(r"must be >=? ", str(exc)) is not None
            assert below_bound or limit is None or np.isnan(limit[owners]).all(), (
                f"refused where the limit is {limit[owners]}: {exc}"
            )
            continue
        if limit is None:
            continue  # the reference is undefined there; losskit's answer is not checked
        where = f"position {pos} at {sign * magnitude:g}"
        undefined = np.isnan(limit)
        finite = np.isfinite(limit)
        infinite = np.isinf(limit)
        if np.isinf(magnitude):
            assert np.all(np.isnan(ours[undefined])), where
            np.testing.assert_array_equal(ours[infinite], limit[infinite], err_msg=where)
            np.testing.assert_allclose(ours[finite], limit[finite], rtol=1e-6, atol=1e-9, err_msg=where)
            continue
        rtol, atol = (1e-4, 1e-4) if float32 else (1e-6, 1e-9)
        scale = np.maximum(1.0, np.abs(limit))
        with np.errstate(invalid="ignore"):
            near = np.isclose(ours, limit, rtol=rtol, atol=0.0) | (np.abs(ours - limit) <= atol * scale)
        assert np.all(near[finite]), f"{where}: {ours[finite & ~near]}, limit {limit[finite & ~near]}"
        grow = ours[infinite]
        assert not np.isnan(grow).any(), f"{where}: NaN where the loss grows without bound"
        np.testing.assert_array_equal(np.sign(grow), np.sign(limit[infinite]), err_msg=where)
        probe = np.abs(at_probe[infinite])  # inf where the reference itself overflowed: unchecked
        assert np.all((np.abs(grow) >= (1 - 1e-5) * probe) | np.isinf(probe)), (
            f"{where}: {grow} is smaller than the reference at {PROBES[-1]:g}: {at_probe[infinite]}"
        )


# -- probabilities outside [0, 1] ---------------------------------------------------------------


@pytest.mark.parametrize("case", [c for c in CASES if _space(c) == "probabilities"], ids=lambda c: c.id)
@pytest.mark.parametrize("value", [np.inf, -np.inf, 1e30])
def test_probabilities_out_of_range_are_refused(case, value):
    args, kwargs, reduction, _, positions = _setup(case.id)
    for pos, _ in positions[:1]:
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            _call(case, _with(args, pos, value), kwargs, reduction)


# -- worked cases -------------------------------------------------------------------------------

INF = np.inf


@pytest.mark.parametrize(
    "fn,kwargs",
    [
        (lk.poly1_cross_entropy, {}),
        (lk.poly1_cross_entropy, {"epsilon": -1.0}),
        (lk.poly1_cross_entropy, {"epsilon": 2.0, "weight": np.array([0.5, 2.0, 1.0])}),
        (lk.softmax_focal, {}),
        (lk.softmax_focal, {"gamma": 0.5}),
        (lk.softmax_focal, {"gamma": 0.0, "weight": np.array([0.5, 2.0, 1.0])}),
        (lk.cross_entropy, {}),
        (lk.cross_entropy, {"weight": np.array([0.5, 2.0, 1.0])}),
    ],
    ids=lambda v: getattr(v, "__name__", None) or ",".join(f"{k}" for k in v) or "defaults",
)
def test_a_plus_inf_logit_takes_all_the_probability(fn, kwargs):
    # p = (1, 0, 0): the loss is 0 when the target is the +inf class and +inf otherwise, with a
    # zero gradient on the row whose target is right (PyTorch gives NaN for both)
    x = np.array([[INF, 1.0, 0.0], [INF, 1.0, 0.0], [0.2, -0.3, 0.4]])
    t = np.array([0, 1, 2])
    none = _quiet(fn, x, t, reduction="none", **kwargs)
    assert none[0] == 0 and np.isposinf(none[1])
    finite = fn(x[2:], t[2:], reduction="none", **kwargs)
    np.testing.assert_allclose(none[2], finite[0], rtol=1e-14)
    # the analytic gradient of the portable code (cross_entropy's NumPy kernel is checked below)
    strict = BY_NAME["array_api_strict"]
    s_args, s_kwargs = strict.args((x[[0, 2]], t[[0, 2]]), kwargs)
    _, g = _quiet(lk.value_and_grad(fn), *s_args, reduction="sum", **s_kwargs)
    g = strict.back(g)
    assert np.all(g[0] == 0)
    _, g_finite = lk.value_and_grad(fn)(x[2:], t[2:], reduction="sum", **kwargs)
    np.testing.assert_allclose(g[1], g_finite[0], rtol=1e-12)
    # two +inf logits share the probability: -log(1/2) for the plain cross-entropy
    if fn is lk.cross_entropy and not kwargs:
        assert float(_quiet(fn, np.array([[INF, INF, 0.0]]), np.array([1]))) == pytest.approx(np.log(2))


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def test_nan_scores_give_nan_as_pytorch():
    import torch
    import torch.nn.functional as F

    x1, x2, y = np.array([np.nan, 1.0, 0.5]), np.zeros(3), np.array([1.0, -1.0, 1.0])
    ref = F.margin_ranking_loss(*(torch.from_numpy(a) for a in (x1, x2, y)), reduction="none")
    ours = lk.margin_ranking(x1, x2, y, reduction="none")
    np.testing.assert_array_equal(np.isnan(ours), ref.isnan().numpy())
    np.testing.assert_allclose(ours[1:], ref[1:].numpy())
    a, p, n = np.array([[np.nan, 1.0], [0.5, 0.1]]), np.zeros((2, 2)), np.ones((2, 2))
    ref = F.triplet_margin_loss(*(torch.from_numpy(v) for v in (a, p, n)), reduction="none")
    ours = lk.triplet_margin(a, p, n, reduction="none")
    np.testing.assert_array_equal(np.isnan(ours), ref.isnan().numpy())
    np.testing.assert_allclose(ours[1:], ref[1:].numpy(), rtol=1e-12)
    ours = lk.triplet_margin_with_distance(a, p, n, reduction="none")
    assert np.isnan(ours[0]) and not np.isnan(ours[1])
    msle = lk.msle(np.array([np.nan, -3.0, 2.0]), np.array([1.0, 1.0, 1.0]), reduction="none")
    assert np.isnan(msle[0]) and np.isfinite(msle[1:]).all()  # -3 is clipped to eps, NaN is not


@pytest.mark.parametrize("top", [1.7e7, 2e7, 1e30, F32_MAX])
def test_sparsemax_of_huge_float32_scores_is_a_distribution(top):
    z = np.array([[top, 1.0, 0.0], [top, top, -5.0]], dtype=np.float32)
    p = _quiet(lk.sparsemax, z)  # float32's max overflows in the threshold's sums, harmlessly
    np.testing.assert_array_equal(p, np.array([[1, 0, 0], [0.5, 0.5, 0]], dtype=np.float32))
    # +inf takes all the probability, -inf none, NaN spoils the row
    odd = np.array([[INF, 1.0, 0.0], [-INF, 1.0, 0.5], [np.nan, 1.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(_quiet(lk.sparsemax, odd[:2]), [[1, 0, 0], [0, 0.75, 0.25]])
    assert np.isnan(_quiet(lk.sparsemax, odd[2:])).all()
    loss = _quiet(lk.sparsemax_loss, z, np.array([0, 1]), reduction="none")
    np.testing.assert_allclose(loss, [0.0, 0.25], atol=1e-6)


# -- cross-entropy's fast paths at +inf ---------------------------------------------------------
# The row kernel (NumPy value_and_grad, the torch Function on CPU) and the JAX custom_jvp compute
# their own shifted exponentials: at a +inf logit they take softmax's limit as the portable code.

X_INF = np.array([[INF, 1.0, 0.0], [0.5, INF, -1.0], [0.2, -0.3, 0.4]])
T_INF = np.array([0, 2, 1])


def _portable_expected():
    value = _quiet(lk.cross_entropy, X_INF, T_INF, reduction="none")
    assert value[0] == 0 and np.isposinf(value[1]) and np.isfinite(value[2])
    return value


def test_cross_entropy_plus_inf_logit_numpy_kernel():
    value, g = _quiet(lk.value_and_grad(lk.cross_entropy), X_INF, T_INF, reduction="none")
    np.testing.assert_array_equal(value, _portable_expected())
    assert np.all(g[0] == 0)


def test_cross_entropy_plus_inf_logit_torch_function():
    import torch

    x = torch.from_numpy(X_INF).requires_grad_(True)
    value = _quiet(lk.cross_entropy, x, torch.from_numpy(T_INF), reduction="none")
    np.testing.assert_array_equal(value.detach().numpy(), _portable_expected())


def test_cross_entropy_plus_inf_logit_jax_fast_path():
    import jax.numpy as jnp

    value = lk.cross_entropy(jnp.asarray(X_INF), jnp.asarray(T_INF), reduction="none")
    np.testing.assert_array_equal(np.asarray(value), _portable_expected())


def test_cross_entropy_plus_inf_logit_portable_paths():
    import torch

    expected = _portable_expected()
    plain = _quiet(lk.cross_entropy, torch.from_numpy(X_INF), torch.from_numpy(T_INF), reduction="none")
    np.testing.assert_array_equal(plain.numpy(), expected)
    import array_api_strict as xps

    value, g = _quiet(
        lk.value_and_grad(lk.cross_entropy), xps.asarray(X_INF), xps.asarray(T_INF), reduction="none"
    )
    np.testing.assert_array_equal(np.asarray(value), expected)
    assert np.all(np.asarray(g)[0] == 0) and np.isfinite(np.asarray(g)).all()
