"""The NumPy chunk loop of linear cross-entropy: its matrix products through a chosen
``matmul`` (the fastest of several, timed on the first real products), same numbers whichever
does them; float32 within 1e-5 of float64."""

from __future__ import annotations

import time

import numpy as np
import pytest

import losskit as lk
from losskit.core.specs import LinearCrossEntropyArrays, LinearCrossEntropyOptions, LinearCrossEntropySpec
from losskit.kernels.linear_cross_entropy import FastestMatmul, numpy_chunk_sweep, numpy_matmul


def _slow(a, b, out):
    time.sleep(0.01)
    np.matmul(a, b, out=out)


def test_fastest_matmul_keeps_the_faster_candidate_per_product(rng):
    calls = []
    mm = FastestMatmul({
        "slow": lambda *a: calls.append("slow") or _slow(*a),
        "fast": lambda *a: calls.append("fast") or numpy_matmul(*a),
    }, min_flops=0)  # fmt: skip
    a, b = rng.standard_normal((8, 5)), rng.standard_normal((5, 3))
    for _ in range(6):
        out = np.empty((8, 3))
        mm(a, b, out)
        np.testing.assert_allclose(out, a @ b, rtol=1e-12)
    assert sorted(calls[:4]) == ["fast", "fast", "slow", "slow"] and calls[4:] == ["fast", "fast"]
    assert mm.choice(a, b) == "fast"
    assert mm.choice(a.copy(), b) == "fast"  # the same shapes and strides
    assert mm.choice(np.asfortranarray(a), b) is None  # another layout is timed on its own


def test_fastest_matmul_runs_small_products_on_the_first_candidate_untimed(rng):
    calls = []
    mm = FastestMatmul({
        "first": lambda *a: calls.append("first") or numpy_matmul(*a),
        "second": lambda *a: calls.append("second") or numpy_matmul(*a),
    }, min_flops=1000)  # fmt: skip
    a, b = rng.standard_normal((8, 5)), rng.standard_normal((5, 3))  # 120 multiply-adds
    for _ in range(4):
        mm(a, b, np.empty((8, 3)))
    assert calls == ["first"] * 4 and mm.choice(a, b) is None


def _sweep(x, w, t, matmul=None, chunk=16, **options):
    spec = LinearCrossEntropySpec.of(
        np, LinearCrossEntropyOptions(chunk_size=chunk, **options), LinearCrossEntropyArrays(x, w, t, None)
    )
    valid = t != -100
    scale = np.where(valid, 1.0 / valid.sum(), 0.0).astype(x.dtype)
    need = (True, True, False)
    return numpy_chunk_sweep(x, w, None, np.where(valid, t, 0), valid, scale, spec, need, matmul=matmul)


@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1, "z_loss": 1e-3}, {"softcap": 5.0}], ids=str)
def test_chunk_loop_with_a_chosen_matmul_float32_within_1e5_of_float64(rng, options):
    n, d, v = 70, 24, 300
    x = rng.standard_normal((n, d)) * 0.7
    w = rng.standard_normal((v, d)) * 0.4
    t = rng.integers(0, v, n)
    t[[2, 40]] = -100
    ref = _sweep(x, w, t, **options)
    mm = FastestMatmul({"a": numpy_matmul, "b": lambda a, b, out: np.dot(a, b, out=out)}, min_flops=0)
    for _ in range(3):  # timing the candidates, then the chosen one
        got = _sweep(x.astype(np.float32), w.astype(np.float32), t, matmul=mm, **options)
        for r, g in zip(ref[:3], got[:3]):
            np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6 * np.abs(r).max())
    loss = lk.linear_cross_entropy(x, w, t, chunk_size=16, **options)
    counted = t != -100
    np.testing.assert_allclose(np.sum(ref[0][counted]) / counted.sum(), loss, rtol=1e-12)
