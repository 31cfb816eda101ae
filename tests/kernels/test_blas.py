"""``out += a @ b`` in one BLAS call (``losskit.kernels.blas``) and the chunk loops that use it:
every layout a loop hands it, against NumPy's products; the refusals; the same gradients
whether the product accumulates in BLAS or through a temporary."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import losskit as lk
from losskit.kernels import blas
from losskit.kernels.blas import blas_library, blocked_matmul_add, gemm_add, numpy_matmul_add

needs_blas = pytest.mark.skipif(blas_library() is None, reason="NumPy's bundled OpenBLAS not found")


def _operand(rng, shape, transposed, dtype):
    """A (rows, cols) operand, stored row-major or as the transpose of a row-major array."""
    m = rng.standard_normal(shape[::-1] if transposed else shape).astype(dtype)
    return m.T if transposed else m


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 7, 3), (1, 4, 6), (6, 1, 2), (4, 5, 1), (64, 33, 17)])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_gemm_add_accumulates_the_product(rng, dtype, shape, ta, tb):
    m, k, n = shape
    a, b = _operand(rng, (m, k), ta, dtype), _operand(rng, (k, n), tb, dtype)
    out = rng.standard_normal((m, n)).astype(dtype)
    expected = out.astype(np.float64) + a.astype(np.float64) @ b.astype(np.float64)
    assert gemm_add(a, b, out)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)


@needs_blas
def test_gemm_add_takes_column_blocks_and_row_blocks_as_the_loops_do(rng):
    # the loops pass lb[:, v0:v1].T (a strided transpose) into gw[v0:v1] (a block of rows)
    lb = rng.standard_normal((8, 50)).astype(np.float32)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    gw = np.ones((100, 3), np.float32)
    assert gemm_add(lb[:, 10:30].T, x, gw[40:60])
    np.testing.assert_allclose(gw[40:60], 1 + lb[:, 10:30].T @ x, rtol=1e-5)
    np.testing.assert_array_equal(gw[:40], 1)
    np.testing.assert_array_equal(gw[60:], 1)


def test_gemm_add_declines_what_blas_cannot_take(rng):
    a, b = rng.standard_normal((4, 6)), rng.standard_normal((6, 2))
    out = np.zeros((4, 2))
    before = out.copy()
    assert not gemm_add(a.astype(np.int64), b.astype(np.int64), out.astype(np.int64))  # not floating
    assert not gemm_add(a.astype(np.float32), b, out)  # mixed dtypes
    assert not gemm_add(rng.standard_normal((4, 12))[:, ::2], b, out)  # neither axis contiguous
    assert not gemm_add(a, b, np.zeros((2, 4)).T)  # a transposed output
    readonly = np.zeros((4, 2))
    readonly.flags.writeable = False
    assert not gemm_add(a, b, readonly)
    np.testing.assert_array_equal(out, before)
    with pytest.raises(ValueError, match="do not give"):
        gemm_add(a, b, np.zeros((4, 3)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocked_and_blas_accumulation_agree(rng, dtype, monkeypatch):
    monkeypatch.setattr(blas, "_ACCUMULATE_BYTES", 64)  # several blocks of rows
    a = rng.standard_normal((9, 40)).astype(dtype).T
    b = rng.standard_normal((9, 5)).astype(dtype)
    start = rng.standard_normal((40, 5)).astype(dtype)
    blocked, through = start.copy(), start.copy()
    blocked_matmul_add(a, b, blocked)
    numpy_matmul_add(a, b, through)  # BLAS where reachable, else the same blocks
    expected = start.astype(np.float64) + a.astype(np.float64) @ b
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(blocked, expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(through, expected, rtol=tol, atol=tol)


def _no_blas(monkeypatch):
    # both loops accumulate through blas.numpy_matmul_add: without gemm it takes the blocks
    monkeypatch.setattr(blas, "gemm_add", lambda a, b, out: False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_cross_entropy_gradients_equal_with_and_without_blas_accumulation(rng, dtype, monkeypatch):
    n, d, v = 70, 12, 90
    x = (rng.standard_normal((n, d)) * 0.5).astype(dtype)
    w = (rng.standard_normal((v, d)) * 0.3).astype(dtype)
    t = rng.integers(0, v, n)
    vg = lk.value_and_grad(lk.linear_cross_entropy, argnums=(0, 1))
    with_blas = vg(x, w, t, chunk_size=16)
    _no_blas(monkeypatch)
    without = vg(x, w, t, chunk_size=16)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(with_blas[0], without[0], rtol=tol)
    for g1, g2 in zip(with_blas[1], without[1]):
        np.testing.assert_allclose(g1, g2, rtol=tol, atol=tol)


def test_log_prob_gradients_equal_with_and_without_blas_accumulation(rng, monkeypatch):
    n, d, v = 40, 8, 50
    x = rng.standard_normal((n, d)) * 0.5
    w = rng.standard_normal((v, d)) * 0.3
    t = rng.integers(0, v, n)
    g = rng.standard_normal(n)
    # several chunks of tokens and blocks of the vocabulary: both accumulations run
    kw = {"grad_log_probs": g, "chunk_size": 8, "vocab_chunk_size": 16}
    with_blas = lk.linear_log_probs_vjp(x, w, t, **kw)
    _no_blas(monkeypatch)
    without = lk.linear_log_probs_vjp(x, w, t, **kw)
    for g1, g2 in zip(with_blas[:2], without[:2]):
        np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-13)


def test_disabled_blas_falls_back_to_blocks():
    code = (
        "import numpy as np, losskit as lk\n"
        "from losskit.kernels.blas import blas_library, gemm_add\n"
        "assert blas_library() is None\n"
        "a = np.ones((3, 2)); out = np.zeros((3, 3))\n"
        "assert not gemm_add(a, a.T, out)\n"
        "x = np.ones((40, 4)); w = np.ones((7, 4)) * 0.1; t = np.arange(40) % 7\n"
        "lk.value_and_grad(lk.linear_cross_entropy, argnums=(0, 1))(x, w, t, chunk_size=8)\n"
    )
    env = dict(os.environ, LOSSKIT_DISABLE_BLAS="1")
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
