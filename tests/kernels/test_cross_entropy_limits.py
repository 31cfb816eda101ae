"""The row kernel (NumPy, the optional numba rows, and the torch Function that runs them on CPU)
at infinite and NaN logits: softmax's limits, as the portable code takes them.

A row holding ``+inf`` puts all its probability on its ``+inf`` entries (the loss is ``log k``
for a target among ``k`` of them, ``+inf`` otherwise), a ``-inf`` logit has probability 0 and a
class of target probability or weight 0 there adds nothing (``0 log 0 = 0``), and a NaN makes
its row NaN.  Every number is compared with the portable code's analytic value and gradient
(array-api-strict, which has no fast path); rows that do not count (ignored, masked) get a
gradient of exactly 0 from the kernel whatever their logits hold."""

from __future__ import annotations

import warnings

import array_api_strict as xps
import numpy as np
import pytest
import torch

import losskit as lk
import losskit.torch as lt
from losskit import kernels
from losskit.kernels import fused_cross_entropy

KERNELS = ["numpy"] + (["numba"] if kernels.numba_available() else [])
INF, NAN = np.inf, np.nan

# one row per case; the comment gives the row's loss without options
X = np.array(
    [
        [0.3, -1.2, 2.0, 0.5, -0.1],  # finite
        [INF, 1.0, 0.0, -1.0, 2.0],  # target at +inf: 0
        [0.5, INF, -1.0, 0.0, 3.0],  # target off +inf: +inf
        [INF, 0.0, INF, 1.0, -INF],  # two +inf, target on one: log 2
        [-INF, INF, 0.0, 1.0, 2.0],  # +inf and -inf, target at -inf: +inf
        [1.0, -INF, 0.5, -INF, 2.0],  # masked classes, target finite: finite
        [-INF, 1.0, 2.0, 0.0, 0.5],  # target masked: +inf
        [0.1, NAN, 0.2, 0.3, 0.4],  # NaN: NaN
        [INF, NAN, 0.0, 0.0, 0.0],  # NaN and +inf: NaN
        [INF, 0.0, 0.0, 0.0, 0.0],  # ignored
        [NAN, 0.0, 0.0, 0.0, 0.0],  # ignored
        [0.2, 0.4, -0.3, -INF, 1.0],  # masked class of weight 0 in W: finite with W's smoothing
        [INF, INF, INF, INF, INF],  # every class at +inf: log 5
        [0.7, -0.2, 0.1, 1.1, -0.6],  # finite
    ]
)
T = np.array([2, 0, 4, 2, 0, 4, 0, 0, 0, -100, -100, 1, 3, 1])
W = np.array([1.0, 2.0, 0.7, 0.0, 1.5])  # class 3 weighs 0
MASK = np.array([True, True, False, True, True, True, False, False, True, True, True, True, True, True])
# probability targets: 0 on some -inf classes (adds nothing), > 0 on others (+inf), on and off +inf
Q = np.array(
    [
        [0.2, 0.2, 0.2, 0.2, 0.2],
        [1.0, 0.0, 0.0, 0.0, 0.0],
        [0.5, 0.0, 0.0, 0.0, 0.5],
        [0.5, 0.0, 0.5, 0.0, 0.0],
        [0.0, 0.5, 0.0, 0.5, 0.0],
        [0.5, 0.0, 0.5, 0.0, 0.0],
        [0.1, 0.2, 0.3, 0.4, 0.0],
        [0.2, 0.2, 0.2, 0.2, 0.2],
        [1.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0, 0.0],
        [0.3, 0.3, 0.4, 0.0, 0.0],
        [0.2, 0.2, 0.2, 0.2, 0.2],
        [0.0, 0.0, 0.0, 0.0, 1.0],
    ]
)

OPTIONS = {
    "plain": {},
    "smoothing": {"label_smoothing": 0.1},
    "weight": {"weight": W},
    "weight-smoothing": {"weight": W, "label_smoothing": 0.2},
    "z_loss-temperature": {"z_loss": 1e-2, "temperature": 0.5},
    "where": {"where": MASK},
    "everything": {"weight": W, "where": MASK, "label_smoothing": 0.1, "z_loss": 1e-3, "temperature": 2.0},
}


@pytest.fixture(autouse=True)
def _no_numba(monkeypatch, request):
    """numba is disabled except where a test asks for kernel="numba"."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is None or callspec.params.get("kernel") != "numba":
        monkeypatch.setenv("LOSSKIT_DISABLE_NUMBA", "1")


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def _portable(x, target, **kw):
    """losskit.cross_entropy's array-API value and analytic gradient (no fast path)."""
    conv = {k: (xps.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    value, g = _quiet(lk.value_and_grad(lk.cross_entropy), xps.asarray(x), xps.asarray(target), **conv)
    return np.asarray(value), np.asarray(g)


def _counted(target, kw, axis=-1):
    """Which samples count (shape of the per-sample losses)."""
    counted = np.ones(target.shape if target.dtype.kind == "i" else np.delete(target.shape, axis), bool)
    if target.dtype.kind == "i":
        counted &= target != kw.get("ignore_index", -100)
    if kw.get("where") is not None:
        counted &= kw["where"]
    return counted


def _assert_matches(value, g, ref_value, ref_g, counted, *, rtol=1e-12, axis=-1):
    """Values (inf and NaN where the portable code has them) and the counted samples' gradients
    match; the other samples' gradients are exactly 0."""
    value, g = np.asarray(value, dtype=np.float64), np.asarray(g, dtype=np.float64)
    np.testing.assert_allclose(value, ref_value, rtol=rtol, atol=rtol)
    g, ref_g = np.moveaxis(g, axis, -1), np.moveaxis(ref_g, axis, -1)
    np.testing.assert_allclose(g[counted], ref_g[counted], rtol=rtol, atol=rtol)
    assert np.all(g[~counted] == 0)


def test_the_rows_cover_each_limit():
    value, _ = _portable(X, T, reduction="none")
    expected = [np.isfinite, 0.0, INF, np.log(2), INF, np.isfinite, INF, NAN, NAN, 0.0, 0.0]
    for i, e in enumerate(expected):
        if callable(e):
            assert e(value[i]), i
        else:
            np.testing.assert_allclose(value[i], e, err_msg=str(i))
    assert value[12] == pytest.approx(np.log(5))
    smoothed, _ = _portable(X, T, weight=W, label_smoothing=0.1, reduction="none")
    assert np.isfinite(smoothed[11])  # the masked class weighs 0
    assert np.isposinf(_portable(X, T, label_smoothing=0.1, reduction="none")[0][11])


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("opts", list(OPTIONS), ids=str)
def test_integer_targets_match_the_portable_code(kernel, reduction, opts):
    kw = OPTIONS[opts]
    ref_value, ref_g = _portable(X, T, reduction=reduction, **kw)
    counted = _counted(T, kw)
    if kernel == "numba":  # the numba rows take float32
        kw32 = {k: (v.astype(np.float32) if k == "weight" else v) for k, v in kw.items()}
        value, g = _quiet(
            fused_cross_entropy, X.astype(np.float32), T, reduction=reduction, kernel=kernel, **kw32
        )
        assert g.dtype == np.float32
        _assert_matches(value, g, ref_value, ref_g, counted, rtol=1e-5)
    else:
        value, g = _quiet(fused_cross_entropy, X, T, reduction=reduction, kernel=kernel, **kw)
        _assert_matches(value, g, ref_value, ref_g, counted)
        # losskit's own value_and_grad on NumPy arrays runs the same kernel
        value, g = _quiet(lk.value_and_grad(lk.cross_entropy), X, T, reduction=reduction, **kw)
        _assert_matches(value, g, ref_value, ref_g, counted)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("opts", list(OPTIONS), ids=str)
def test_probability_targets_match_the_portable_code(reduction, opts):
    kw = OPTIONS[opts]
    ref_value, ref_g = _portable(X, Q, reduction=reduction, **kw)
    counted = np.ones(len(X), bool) if kw.get("where") is None else kw["where"]
    value, g = _quiet(fused_cross_entropy, X, Q, reduction=reduction, **kw)
    _assert_matches(value, g, ref_value, ref_g, counted)
    f32 = {k: (v.astype(np.float32) if k == "weight" else v) for k, v in kw.items()}
    value, g = _quiet(
        fused_cross_entropy, X.astype(np.float32), Q.astype(np.float32), reduction=reduction, **f32
    )
    _assert_matches(value, g, ref_value, ref_g, counted, rtol=1e-5)


def test_probability_targets_zero_at_masked_classes_are_finite():
    rows = [0, 5, 11, 13]  # finite logits, or -inf only where the target is 0
    value, g = fused_cross_entropy(X[rows], Q[rows], W, reduction="none")
    assert np.isfinite(value).all() and np.isfinite(g).all()
    finite = np.where(np.isinf(X[rows]), -1e4, X[rows])
    ref_value, ref_g = fused_cross_entropy(finite, Q[rows], W, reduction="none")
    np.testing.assert_allclose(value, ref_value, rtol=1e-12)
    np.testing.assert_allclose(g, ref_g, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kernel", KERNELS)
def test_inplace_and_out_give_the_same_numbers(kernel):
    kw = OPTIONS["everything"]
    kw = {**kw, "weight": kw["weight"].astype(np.float32)}
    x = X.astype(np.float32)
    value, g = _quiet(fused_cross_entropy, x, T, reduction="none", kernel=kernel, **kw)
    buf = x.copy()
    v_in, g_in = _quiet(fused_cross_entropy, buf, T, reduction="none", kernel=kernel, inplace=True, **kw)
    assert g_in is buf
    out = np.full_like(x, 7.0)
    v_out, g_out = _quiet(fused_cross_entropy, x, T, reduction="none", kernel=kernel, out=out, **kw)
    assert g_out is out
    for v2, g2 in ((v_in, g_in), (v_out, g_out)):
        np.testing.assert_array_equal(v2, value)
        np.testing.assert_array_equal(g2, g)
    ref_value, ref_g = _portable(X, T, reduction="none", **OPTIONS["everything"])
    _assert_matches(value, g, ref_value, ref_g, _counted(T, kw), rtol=1e-5)


@pytest.mark.parametrize("kernel", KERNELS)
def test_class_axis_one(kernel):
    # PyTorch's (N, C, d) layout: the kernel moves the classes last and back
    x = np.moveaxis(X[:12].reshape(3, 4, 5), -1, 1).astype(np.float32)
    t = T[:12].reshape(3, 4)
    kw = {"label_smoothing": 0.1, "z_loss": 1e-3}
    ref_value, ref_g = _portable(x.astype(np.float64), t, axis=1, reduction="none", **kw)
    value, g = _quiet(fused_cross_entropy, x, t, axis=1, reduction="none", kernel=kernel, **kw)
    _assert_matches(value, g, ref_value, ref_g, t != -100, rtol=1e-5, axis=1)
    q = np.moveaxis(Q[:12].reshape(3, 4, 5), -1, 1)
    ref_value, ref_g = _portable(x.astype(np.float64), q, axis=1, reduction="none", **kw)
    value, g = _quiet(fused_cross_entropy, x.astype(np.float64), q, axis=1, reduction="none", **kw)
    _assert_matches(value, g, ref_value, ref_g, np.ones((3, 4), bool), axis=1)


@pytest.mark.parametrize("kernel", KERNELS)
def test_long_rows_across_blocks_and_threads(kernel, rng):
    # rows long enough for the vectorised loops, enough of them for several blocks and the
    # two-thread path (>= 2**18 logits), with a NaN, +inf and -inf deep inside some rows
    n, c = 700, 1200
    x = rng.standard_normal((n, c)).astype(np.float32)
    t = rng.integers(0, c, n)
    t[::97] = -100
    x[3, 611] = NAN
    x[250, 5], x[250, 900] = INF, INF
    t[250] = 900
    x[251, 17] = INF
    x[400, :600] = -INF
    t[400] = 1000
    x[401, 3] = -INF
    t[401] = 3
    x[402, 700] = NAN
    t[402] = -100
    w = (rng.random(c) + 0.5).astype(np.float32)
    w[:600:7] = 0.0
    kw = {"label_smoothing": 0.1, "weight": w, "reduction": "sum"}
    ref_value, ref_g = _portable(x.astype(np.float64), t, **{**kw, "weight": w.astype(np.float64)})
    value, g = _quiet(fused_cross_entropy, x, t, kernel=kernel, **kw)
    assert np.isnan(value)  # row 3
    counted = t != -100
    g64 = g.astype(np.float64)
    assert np.isnan(g64[3]).all() and np.all(g64[402] == 0)
    np.testing.assert_allclose(g64[counted], ref_g[counted], rtol=1e-5, atol=1e-7)
    per, _ = _quiet(fused_cross_entropy, x, t, kernel=kernel, **{**kw, "reduction": "none"})
    ref_per, _ = _portable(
        x.astype(np.float64), t, **{**kw, "weight": w.astype(np.float64), "reduction": "none"}
    )
    np.testing.assert_allclose(per, ref_per, rtol=1e-5)
    assert np.isposinf(per[[250, 251, 400, 401]]).all()  # smoothing puts mass off +inf, on -inf
    plain, _ = _quiet(fused_cross_entropy, x, t, kernel=kernel, reduction="none")
    assert np.isnan(plain[3]) and plain[250] == pytest.approx(np.log(2))
    assert np.isposinf(plain[251]) and np.isfinite(plain[400]) and np.isposinf(plain[401])


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("opts", ["plain", "weight-smoothing", "z_loss-temperature", "everything"])
def test_torch_function_on_cpu(reduction, opts):
    kw = OPTIONS[opts]
    ref_value, ref_g = _portable(X, T, reduction=reduction, **kw)
    tkw = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    x = torch.from_numpy(X).requires_grad_(True)
    value = _quiet(lk.cross_entropy, x, torch.from_numpy(T), reduction=reduction, **tkw)
    (g,) = torch.autograd.grad(value.sum(), x)
    counted = _counted(T, kw)
    _assert_matches(value.detach().numpy(), g.numpy(), ref_value, ref_g, counted)
    # in place: the gradient overwrites the logits
    buf = torch.from_numpy(X.copy()).requires_grad_(True)
    value = _quiet(lt.cross_entropy, buf, torch.from_numpy(T), reduction=reduction, inplace=True, **tkw)
    (g,) = torch.autograd.grad(value.sum(), buf)
    _assert_matches(value.detach().numpy(), g.detach().numpy(), ref_value, ref_g, counted)
    # probability targets
    ref_value, ref_g = _portable(X, Q, reduction=reduction, **kw)
    x = torch.from_numpy(X).requires_grad_(True)
    value = _quiet(lk.cross_entropy, x, torch.from_numpy(Q), reduction=reduction, **tkw)
    (g,) = torch.autograd.grad(value.sum(), x)
    q_counted = np.ones(len(X), bool) if kw.get("where") is None else kw["where"]
    _assert_matches(value.detach().numpy(), g.numpy(), ref_value, ref_g, q_counted)
