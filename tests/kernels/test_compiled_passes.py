"""The compiled passes of the NumPy row kernel (float32 with numba installed, ``kernel="auto"``):
the in-line exponential against float64's, and the whole kernel against the pure NumPy kernel
in float64 -- every option, in place, at the limits (infinite and NaN logits), across threads."""

from __future__ import annotations

import numpy as np
import pytest

from losskit import kernels
from losskit.kernels import cross_entropy as fused
from losskit.kernels import fused_cross_entropy

pytestmark = pytest.mark.skipif(not kernels.numba_available(), reason="numba is not installed")

INF, NAN = np.inf, np.nan


@pytest.fixture(autouse=True)
def _numba_on(monkeypatch):
    monkeypatch.delenv("LOSSKIT_DISABLE_NUMBA", raising=False)
    monkeypatch.delenv("LOSSKIT_FUSED_KERNEL", raising=False)


def _exp_row(y: np.ndarray, m: float = 0.0, inv_t: float = 1.0) -> tuple[np.ndarray, float]:
    from losskit.kernels.cross_entropy_numba import _exp_row

    y = np.ascontiguousarray(y, dtype=np.float32)
    out = np.empty_like(y)
    total = _exp_row(y, out, np.empty(y.size, np.int32), np.float32(m), np.float32(inv_t))
    return out, float(total)


def test_exponential_within_float32_rounding():
    y = np.concatenate([-np.geomspace(1e-8, 87.3, 20001), np.linspace(-87.3, 0, 20001), [0.0]])
    y = y.astype(np.float32)
    e, total = _exp_row(y)
    ref = np.exp(y.astype(np.float64))
    rel = np.abs(e / ref - 1)
    assert rel.max() < 4e-7, rel.max()
    assert total == pytest.approx(ref.sum(), rel=1e-6)
    assert e[-1] == 1.0


def test_exponential_shift_temperature_and_underflow():
    x = np.array([3.0, 2.0, -90.0, -INF, 3.0 - 87.0], np.float32)
    e, total = _exp_row(x, m=3.0, inv_t=0.5)
    ref = np.exp((x.astype(np.float64) - 3.0) * 0.5)
    np.testing.assert_allclose(e[[0, 1, 4]], ref[[0, 1, 4]], rtol=4e-7)
    assert e[3] == 0.0 and e[2] == pytest.approx(ref[2], rel=1e-5)
    e, _ = _exp_row(np.array([0.0, -88.0, -100.0, -INF], np.float32))
    assert e[0] == 1 and np.all(e[1:] == 0)  # below float32's normal range: 0


OPTIONS = [
    {},
    {"label_smoothing": 0.1},
    {"z_loss": 1e-2, "temperature": 0.7},
    {"weight": "w"},
    {"weight": "w", "label_smoothing": 0.2, "z_loss": 1e-3},
    {"where": "m"},
    {"target": "probabilities", "label_smoothing": 0.1},
]


def _case(rng, opts, n=96, c=700):
    x = rng.standard_normal((n, c)) * 3.0
    kw = dict(opts)
    if kw.pop("target", None) == "probabilities":
        t = rng.random((n, c))
        t /= t.sum(axis=1, keepdims=True)
    else:
        t = rng.integers(0, c, n)
        t[[3, 50]] = -100
    if kw.get("weight") == "w":
        kw["weight"] = rng.random(c) + 0.1
    if kw.get("where") == "m":
        kw["where"] = rng.random(n) > 0.3
    return x, t, kw


def _f32(kw):
    return {k: (v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == np.float64 else v)
            for k, v in kw.items()}  # fmt: skip


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("reduction", ["sum", "none"])
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(o) or "plain")
def test_float32_within_1e5_of_float64(rng, opts, reduction, inplace):
    x, t, kw = _case(rng, opts)
    ref_v, ref_g = fused_cross_entropy(x, t, reduction=reduction, kernel="numpy", **kw)
    t32 = t.astype(np.float32) if t.dtype.kind == "f" else t
    x32 = x.astype(np.float32)
    v, g = fused_cross_entropy(x32, t32, reduction=reduction, inplace=inplace, **_f32(kw))
    assert g.dtype == np.float32 and (g is x32) == inplace
    np.testing.assert_allclose(v, ref_v, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g, ref_g, rtol=1e-5, atol=1e-7 * np.abs(ref_g).max())


def test_auto_runs_the_compiled_passes_and_numpy_does_not(rng, monkeypatch):
    from losskit.kernels.cross_entropy_numba import FastRows

    calls = []
    real = FastRows.exp_rows
    monkeypatch.setattr(FastRows, "exp_rows", lambda self, *a: calls.append(1) or real(self, *a))
    x = rng.standard_normal((20, 30)).astype(np.float32)
    t = rng.integers(0, 30, 20)
    v_np, g_np = fused_cross_entropy(x, t, kernel="numpy")
    assert not calls
    v, g = fused_cross_entropy(x, t)
    assert calls
    np.testing.assert_allclose(g, g_np, rtol=1e-6, atol=1e-9)
    calls.clear()
    fused_cross_entropy(x.astype(np.float64), t)  # float64 stays on NumPy's passes
    assert not calls
    monkeypatch.setenv("LOSSKIT_DISABLE_NUMBA", "1")
    fused_cross_entropy(x, t)
    assert not calls
    assert fused.compiled_passes(np.float32, 30) is None


X = np.array(
    [
        [0.3, -1.2, 2.0, 0.5, -0.1],
        [INF, 1.0, 0.0, -1.0, 2.0],
        [0.5, INF, -1.0, 0.0, 3.0],
        [INF, 0.0, INF, 1.0, -INF],
        [-INF, INF, 0.0, 1.0, 2.0],
        [1.0, -INF, 0.5, -INF, 2.0],
        [-INF, 1.0, 2.0, 0.0, 0.5],
        [0.1, NAN, 0.2, 0.3, 0.4],
        [INF, NAN, 0.0, 0.0, 0.0],
        [-INF, -INF, -INF, -INF, -INF],
        [-100.0, 0.0, -95.0, -200.0, 1.0],
    ]
)
T = np.array([0, 0, 0, 2, 0, 0, 0, 1, 2, 3, 2])


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize(
    "kw", [{}, {"label_smoothing": 0.1}, {"z_loss": 1e-3, "temperature": 2.0}], ids=str
)
def test_limits_as_the_numpy_kernel(kw, inplace):
    with np.errstate(all="ignore"):
        ref_v, ref_g = fused_cross_entropy(X, T, reduction="none", kernel="numpy", **kw)
        x32 = X.astype(np.float32)
        v, g = fused_cross_entropy(x32, T, reduction="none", inplace=inplace, **kw)
    np.testing.assert_array_equal(np.isnan(v), np.isnan(ref_v))
    np.testing.assert_array_equal(np.isinf(v), np.isinf(ref_v))
    np.testing.assert_allclose(v, ref_v, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.isnan(g), np.isnan(ref_g))
    np.testing.assert_allclose(g, ref_g, rtol=1e-5, atol=1e-7)


def test_long_rows_across_blocks_and_threads(rng):
    x = (rng.standard_normal((300, 5000)) * 2).astype(np.float32)
    t = rng.integers(0, 5000, 300)
    before = kernels.get_num_threads()
    try:
        kernels.set_num_threads(1)
        v1, g1 = fused_cross_entropy(x, t, label_smoothing=0.05)
        kernels.set_num_threads(2)
        v2, g2 = fused_cross_entropy(x, t, label_smoothing=0.05)
    finally:
        kernels.set_num_threads(before)
    np.testing.assert_array_equal(g1, g2)
    assert v1 == v2
    ref_v, ref_g = fused_cross_entropy(x.astype(np.float64), t, label_smoothing=0.05, kernel="numpy")
    np.testing.assert_allclose(v1, ref_v, rtol=1e-5)
    np.testing.assert_allclose(g1, ref_g, rtol=1e-5, atol=1e-7 * np.abs(ref_g).max())
