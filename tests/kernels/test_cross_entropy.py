"""The fused NumPy cross-entropy: same numbers as losskit.cross_entropy's array-API path and as
PyTorch (float64), 1e-5 relative in float32, every option; in-place mode; threads; numba
optional; the benchmark script's quick mode."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import array_api_strict as xps
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import losskit as lk
from losskit import kernels
from losskit.kernels import cross_entropy as fused
from losskit.kernels import fused_cross_entropy

KERNELS = ["numpy"] + (["numba"] if kernels.numba_available() else [])
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_numba(monkeypatch, request):
    """The pure NumPy path must work without numba: numba is disabled in these tests except
    where a test asks for kernel="numba" explicitly."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is None or callspec.params.get("kernel") != "numba":
        monkeypatch.setenv("LOSSKIT_DISABLE_NUMBA", "1")


def _strict_reference(x, t, **kw):
    """losskit.cross_entropy's own array-API path (array-api-strict is never fused), float64."""
    conv = {k: (xps.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    value, g = lk.value_and_grad(lk.cross_entropy)(xps.asarray(x), xps.asarray(t), **conv)
    return np.asarray(value), np.asarray(g)


def _data(rng, n=37, c=11, ignored=(3, 5)):
    x = rng.standard_normal((n, c)) * 2.0
    t = rng.integers(0, c, n)
    t[list(ignored)] = -100
    return x, t


OPTIONS = [
    {},
    {"label_smoothing": 0.1},
    {"z_loss": 1e-2, "temperature": 0.7},
    {"weight": "w"},
    {"weight": "w", "label_smoothing": 0.2, "z_loss": 1e-3},
    {"where": "m"},
    {"normalizer": 7.0},
    {"ignore_index": 2},
]


def _options(rng, opts, n, c):
    out = dict(opts)
    if out.get("weight") == "w":
        out["weight"] = rng.random(c) + 0.1
    if out.get("where") == "m":
        out["where"] = rng.random(n) > 0.3
    return out


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(o) or "plain")
def test_matches_array_api_path_float64(rng, kernel, reduction, opts):
    x, t = _data(rng)
    kw = _options(rng, opts, *x.shape)
    t = np.where(t == -100, kw.get("ignore_index", -100), t)
    ref_v, ref_g = _strict_reference(x, t, reduction=reduction, **kw)
    v, g = fused_cross_entropy(x, t, reduction=reduction, kernel=kernel, **kw)
    np.testing.assert_allclose(v, ref_v, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g, ref_g, rtol=1e-12, atol=1e-14)
    assert g.dtype == np.float64 and g.shape == x.shape


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_torch_float64(rng, reduction):
    x, t = _data(rng)
    w = rng.random(x.shape[1]) + 0.1
    xt = torch.tensor(x, requires_grad=True)
    ref = F.cross_entropy(xt, torch.tensor(t), torch.tensor(w), reduction=reduction, label_smoothing=0.15)
    ref.sum().backward()
    v, g = fused_cross_entropy(x, t, w, reduction=reduction, label_smoothing=0.15)
    np.testing.assert_allclose(v, ref.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(o) or "plain")
def test_float32_within_1e5_of_float64(rng, kernel, opts):
    x, t = _data(rng, n=64, c=300)
    kw = _options(rng, opts, *x.shape)
    t = np.where(t == -100, kw.get("ignore_index", -100), t)
    ref_v, ref_g = fused_cross_entropy(x, t, reduction="sum", **kw)
    kw32 = {k: (v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == np.float64 else v)
            for k, v in kw.items()}  # fmt: skip
    v, g = fused_cross_entropy(x.astype(np.float32), t, reduction="sum", kernel=kernel, **kw32)
    assert g.dtype == np.float32 and np.asarray(v).dtype == np.float32
    np.testing.assert_allclose(v, ref_v, rtol=1e-5)
    np.testing.assert_allclose(g, ref_g, rtol=1e-5, atol=1e-7 * np.abs(ref_g).max())


def test_probability_targets_and_class_axis(rng):
    x = rng.standard_normal((4, 6, 5))  # PyTorch layout (N, C, d): classes on axis 1
    q = rng.random((4, 6, 5))
    q /= q.sum(axis=1, keepdims=True)
    for target in (q, rng.integers(0, 6, (4, 5))):
        ref_v, ref_g = _strict_reference(x, target, axis=1, label_smoothing=0.1)
        v, g = fused_cross_entropy(x, target, axis=1, label_smoothing=0.1)
        np.testing.assert_allclose(v, ref_v, rtol=1e-12)
        np.testing.assert_allclose(g, ref_g, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kernel", KERNELS)
def test_inplace_writes_the_gradient_into_the_logits(rng, kernel):
    x, t = _data(rng, n=50, c=40)
    v_ref, g_ref = fused_cross_entropy(x, t, label_smoothing=0.1, z_loss=1e-3)
    buf = x.astype(np.float32)
    v, g = fused_cross_entropy(buf, t, label_smoothing=0.1, z_loss=1e-3, inplace=True, kernel=kernel)
    assert g is buf
    np.testing.assert_allclose(v, v_ref, rtol=1e-5)
    np.testing.assert_allclose(buf, g_ref, rtol=1e-5, atol=1e-8)


def test_inplace_needs_a_writable_contiguous_last_axis_input(rng):
    x, t = _data(rng)
    with pytest.raises(ValueError, match="inplace=True needs a writable, C-contiguous"):
        fused_cross_entropy(np.asfortranarray(x), t, inplace=True)
    with pytest.raises(ValueError, match="inplace=True needs a float32 or float64"):
        fused_cross_entropy(x.astype(np.float16), t, inplace=True)
    with pytest.raises(ValueError, match="needs grad=True"):
        fused_cross_entropy(x, t, inplace=True, grad=False)
    with pytest.raises(TypeError, match="inplace must be a bool"):
        fused_cross_entropy(x, t, inplace=1)
    with pytest.raises(ValueError, match="kernel must be"):
        fused_cross_entropy(x, t, kernel="cuda")
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        fused_cross_entropy(x, t, label_smoothing=1.5)
    with pytest.raises(ValueError, match="target holds class index"):
        fused_cross_entropy(x, np.full(x.shape[0], 99))


def test_out_buffer_is_reused(rng):
    x, t = _data(rng, n=40, c=30)
    x = x.astype(np.float32)
    buf = np.full_like(x, np.nan)
    v, g = fused_cross_entropy(x, t, out=buf, label_smoothing=0.1)
    assert g is buf
    v_ref, g_ref = fused_cross_entropy(x, t, label_smoothing=0.1)
    np.testing.assert_array_equal(g, g_ref)
    assert v == v_ref
    with pytest.raises(ValueError, match="out must be a writable C-contiguous float32"):
        fused_cross_entropy(x, t, out=np.empty((40, 30)))
    with pytest.raises(ValueError, match="needs grad=True and inplace=False"):
        fused_cross_entropy(x, t, out=buf, inplace=True)


@pytest.mark.skipif("numba" not in KERNELS, reason="numba is not installed")
def test_auto_picks_numba_only_when_asked(rng, monkeypatch):
    monkeypatch.delenv("LOSSKIT_DISABLE_NUMBA")
    from losskit.kernels import cross_entropy_numba as _numba_kernels

    calls = []
    real = _numba_kernels.numba_rows
    monkeypatch.setattr(_numba_kernels, "numba_rows", lambda *a: calls.append(1) or real(*a))
    x, t = _data(rng)
    x = x.astype(np.float32)
    fused_cross_entropy(x, t)
    assert not calls
    monkeypatch.setenv("LOSSKIT_FUSED_KERNEL", "numba")
    fused_cross_entropy(x, t)
    assert calls


def test_numba_kernel_refused_when_disabled(rng):
    x, t = _data(rng)
    with pytest.raises(ValueError, match="numba"):
        fused_cross_entropy(x, t, kernel="numba")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_every_row_ignored(rng, reduction):
    x, _ = _data(rng)
    t = np.full(x.shape[0], -100)
    v, g = fused_cross_entropy(x, t, reduction=reduction, label_smoothing=0.1)
    assert np.all(np.asarray(v) == 0) and np.all(g == 0)


def test_forward_only_and_threads_agree(rng):
    # big enough for the two-thread path (>= 2**18 logits), several row blocks
    x = rng.standard_normal((700, 1200)).astype(np.float32)
    t = rng.integers(0, 1200, 700)
    v2, g2 = fused_cross_entropy(x, t, reduction="none", z_loss=1e-4)
    v0, none = fused_cross_entropy(x, t, reduction="none", z_loss=1e-4, grad=False)
    assert none is None
    np.testing.assert_array_equal(v0, v2)
    kernels.set_num_threads(1)
    try:
        v1, g1 = fused_cross_entropy(x, t, reduction="none", z_loss=1e-4)
    finally:
        kernels.set_num_threads(2)
    np.testing.assert_array_equal(v1, v2)
    np.testing.assert_array_equal(g1, g2)
    with pytest.raises(ValueError, match="positive int"):
        kernels.set_num_threads(0)


def test_masked_vocabulary_and_float16(rng):
    x, t = _data(rng, ignored=())
    x[:, 7] = -np.inf  # a banned class: probability 0, finite loss
    t = np.where(t == 7, 0, t)
    ref_v, ref_g = _strict_reference(x, t)
    v, g = fused_cross_entropy(x, t)
    np.testing.assert_allclose(v, ref_v, rtol=1e-12)
    np.testing.assert_allclose(g, ref_g, rtol=1e-12, atol=1e-15)
    assert np.all(g[:, 7] == 0)
    v16, g16 = fused_cross_entropy(x.astype(np.float16), t)
    assert g16.dtype == np.float16 and np.asarray(v16).dtype == np.float16
    np.testing.assert_allclose(g16.astype(np.float64), ref_g, atol=2e-3 * np.abs(ref_g).max())


def test_value_and_grad_on_numpy_uses_the_fused_kernel(rng, monkeypatch):
    x, t = _data(rng)
    calls = []
    real = fused.numpy_rows
    monkeypatch.setattr(fused, "numpy_rows", lambda *a: calls.append(1) or real(*a))
    v, g = lk.value_and_grad(lk.cross_entropy)(x, t, label_smoothing=0.1)
    assert calls
    ref_v, ref_g = _strict_reference(x, t, label_smoothing=0.1)
    np.testing.assert_allclose(v, ref_v, rtol=1e-12)
    np.testing.assert_allclose(g, ref_g, rtol=1e-12, atol=1e-15)
    calls.clear()
    lk.cross_entropy(x, t)  # value only: the array-API path
    assert not calls


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 9),
    c=st.integers(1, 9),
    eps=st.sampled_from([0.0, 0.3]),
    z=st.sampled_from([0.0, 0.01]),
    temperature=st.sampled_from([1.0, 2.5]),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    seed=st.integers(0, 2**16),
)
def test_property_matches_array_api_path(n, c, eps, z, temperature, reduction, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c)) * 3
    t = rng.integers(-1, c, n)
    kw = dict(ignore_index=-1, label_smoothing=eps, z_loss=z, temperature=temperature, reduction=reduction)
    ref_v, ref_g = _strict_reference(x, t, **kw)
    v, g = fused_cross_entropy(x, t, **kw)
    np.testing.assert_allclose(v, ref_v, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(g, ref_g, rtol=1e-11, atol=1e-13)


def test_benchmark_script_quick_mode():
    env = dict(os.environ, LOSSKIT_DISABLE_NUMBA="1")
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick"],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert "| case |" in text and "losskit numpy" in text and "F.cross_entropy" in text
    assert "linear" in text and "peak extra" in text
