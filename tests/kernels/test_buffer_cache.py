"""The cache of released gradient buffers behind the fused cross-entropy."""

import gc
import os

import numpy as np
import pytest

from losskit.kernels import buffer_cache as bc
from losskit.kernels import (
    cached_bytes,
    clear_buffer_cache,
    fused_cross_entropy,
    get_buffer_cache,
    set_buffer_cache,
)

BIG = (1024, 8192)  # 32 MiB of float32


@pytest.fixture(autouse=True)
def fresh_cache():
    limit = get_buffer_cache()
    clear_buffer_cache()
    yield
    set_buffer_cache(limit)
    clear_buffer_cache()


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def test_released_buffer_is_reused_and_live_one_is_not():
    a = bc.empty(BIG, np.float32)
    assert a.shape == BIG and a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable
    a.fill(3.0)
    b = bc.empty(BIG, np.float32)  # a is alive: b must be other memory
    assert _address(b) != _address(a)
    b.fill(5.0)
    assert np.all(a == 3.0)
    where_a = _address(a)
    del a
    gc.collect()
    assert cached_bytes() == np.prod(BIG) * 4
    c = bc.empty(BIG, np.float32)
    assert _address(c) == where_a
    assert cached_bytes() == 0
    assert np.all(b == 5.0)


def test_a_view_keeps_the_buffer_out_of_the_cache():
    a = bc.empty(BIG, np.float32)
    row = a[3]
    del a
    gc.collect()
    assert cached_bytes() == 0
    del row
    gc.collect()
    assert cached_bytes() > 0


def test_same_size_other_dtype_and_shape_reuses():
    a = bc.empty(BIG, np.float32)
    where_a = _address(a)
    del a
    b = bc.empty((BIG[0] // 2, BIG[1]), np.float64)
    assert _address(b) == where_a and b.dtype == np.float64


def test_small_buffers_bypass_the_cache():
    a = bc.empty((10, 10), np.float32)
    del a
    gc.collect()
    assert cached_bytes() == 0
    b = bc.empty((1024, 1023), np.float32)  # just under 4 MiB
    del b
    gc.collect()
    assert cached_bytes() == 0


def test_a_4096_x_1000_float32_gradient_is_cached():
    a = bc.empty((4096, 1000), np.float32)  # 16 MiB: its fresh pages would cost a third of the step
    where = _address(a)
    del a
    gc.collect()
    assert cached_bytes() == 4096 * 1000 * 4
    assert _address(bc.empty((4096, 1000), np.float32)) == where


def test_limit_evicts_oldest_and_zero_disables():
    nbytes = int(np.prod(BIG)) * 4
    set_buffer_cache(nbytes)
    a = bc.empty(BIG, np.float32)
    b = bc.empty((2 * BIG[0], BIG[1]), np.float32)  # larger than the limit: never kept
    del a, b
    gc.collect()
    assert cached_bytes() == nbytes
    set_buffer_cache(0)
    assert cached_bytes() == 0
    c = bc.empty(BIG, np.float32)
    del c
    gc.collect()
    assert cached_bytes() == 0


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1"])
def test_set_buffer_cache_rejects_bad_limits(bad):
    with pytest.raises(ValueError, match="max_bytes"):
        set_buffer_cache(bad)


def test_fused_gradient_reuses_memory_and_stays_correct():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(BIG, dtype=np.float32)
    t = rng.integers(0, BIG[1], BIG[0])
    loss1, g1 = fused_cross_entropy(x, t)
    reference = g1.copy()
    where_1 = _address(g1)
    del g1
    loss2, g2 = fused_cross_entropy(x, t)
    assert _address(g2) == where_1
    np.testing.assert_array_equal(g2, reference)
    assert loss1 == loss2
    loss3, g3 = fused_cross_entropy(x, t)  # g2 is alive: new memory, same numbers
    assert _address(g3) != _address(g2)
    np.testing.assert_array_equal(g3, g2)


def test_torch_function_returns_gradient_to_the_cache():
    torch = pytest.importorskip("torch")
    import losskit.torch as lkt

    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.standard_normal(BIG, dtype=np.float32))
    t = torch.from_numpy(rng.integers(0, BIG[1], BIG[0]))
    grads = []
    for _ in range(3):
        xx = x.clone().requires_grad_()
        lkt.cross_entropy(xx, t).backward()
        grads.append(xx.grad.clone())
        ptr = xx.grad.data_ptr()
        del xx
        gc.collect()
        assert cached_bytes() == np.prod(BIG) * 4
    xx = x.clone().requires_grad_()
    lkt.cross_entropy(xx, t).backward()
    assert xx.grad.data_ptr() == ptr
    for g in grads:
        torch.testing.assert_close(g, xx.grad, rtol=0, atol=0)
    ref = x.clone().requires_grad_()
    torch.nn.functional.cross_entropy(ref, t).backward()
    torch.testing.assert_close(xx.grad, ref.grad, rtol=1e-5, atol=1e-8)


# -- reuse of larger buffers, and memory bounded when the shape changes every step ------------

MIB = 1 << 20


def test_a_larger_released_buffer_serves_a_smaller_request_best_fit_first():
    sizes = [48 * MIB, 80 * MIB, 64 * MIB, 40 * MIB]
    held = [bc.empty((s // 4,), np.float32) for s in sizes]
    where = {s: _address(a) for s, a in zip(sizes, held)}
    del held
    gc.collect()
    assert cached_bytes() == sum(sizes)
    a = bc.empty((36 * MIB // 4,), np.float32)  # the smallest buffer that holds it: 40 MiB
    assert _address(a) == where[40 * MIB] and a.nbytes == 36 * MIB
    b = bc.empty((64 * MIB // 4,), np.float32)  # an exact fit is taken before a larger one
    assert _address(b) == where[64 * MIB]
    c = bc.empty((50 * MIB // 4,), np.float32)
    assert _address(c) == where[80 * MIB]
    assert cached_bytes() == 48 * MIB


def test_a_request_larger_than_every_cached_buffer_drops_them():
    a, b = bc.empty((40 * MIB // 4,), np.float32), bc.empty((48 * MIB // 4,), np.float32)
    del a, b
    gc.collect()
    assert cached_bytes() == 88 * MIB
    c = bc.empty((64 * MIB // 4,), np.float32)  # neither can hold it: both are dropped
    assert cached_bytes() == 0
    del c
    gc.collect()
    assert cached_bytes() == 64 * MIB


def test_a_view_of_a_buffer_cut_from_a_larger_one_keeps_it_leased():
    big = bc.empty((2 * BIG[0], BIG[1]), np.float32)
    where = _address(big)
    del big
    gc.collect()
    a = bc.empty(BIG, np.float32)
    assert _address(a) == where and a.shape == BIG and cached_bytes() == 0
    a.fill(7.0)
    row = a[-1]
    del a
    gc.collect()
    assert cached_bytes() == 0  # the view still sees (part of) the large buffer
    b = bc.empty(BIG, np.float32)
    assert _address(b) != where
    b.fill(1.0)
    assert np.all(row == 7.0)
    del row
    gc.collect()
    assert cached_bytes() == 2 * BIG[0] * BIG[1] * 4  # the whole large buffer, back for reuse


@pytest.mark.parametrize("kernel", ["numpy", "numba"])
def test_a_gradient_in_a_reused_larger_buffer_is_fully_written(kernel):
    if kernel == "numba":
        from losskit.kernels import numba_available

        if not numba_available():
            pytest.skip("numba is not installed")
    stale = bc.empty((BIG[0] + 300, BIG[1]), np.float32)
    stale.fill(np.nan)  # what a reused buffer holds before the kernel writes it
    where = _address(stale)
    del stale
    gc.collect()
    rng = np.random.default_rng(3)
    x = rng.standard_normal(BIG, dtype=np.float32)
    t = rng.integers(0, BIG[1], BIG[0])
    t[::7] = -100  # ignored rows
    mask = rng.random(BIG[0]) > 0.2  # masked rows
    for options in ({}, {"where": mask}, {"where": mask, "label_smoothing": 0.1, "reduction": "sum"}):
        loss, g = fused_cross_entropy(x, t, kernel=kernel, **options)
        assert _address(g) == where, options
        ref_loss, ref_g = fused_cross_entropy(x, t, kernel=kernel, out=np.zeros_like(x), **options)
        assert loss == ref_loss
        np.testing.assert_array_equal(g, ref_g)
        assert not np.isnan(g).any()
        g.fill(np.nan)
        del g
        gc.collect()


def _rss() -> int:
    """This process's resident memory in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


ROWS, CLASSES = (1000, 4096), 8192
LARGEST = ROWS[1] * CLASSES * 4  # the largest gradient of the loop: 128 MiB
CEILING = 3 * LARGEST


def _varying_loop(step, steps=120):
    """Run ``step(rows)`` (it returns the gradient) with a row count drawn in ROWS every step,
    keeping the previous gradient alive until the next one exists, as a training loop does.
    Asserts cached_bytes() and the growth of resident memory stay under CEILING; returns their
    peaks."""
    rng = np.random.default_rng(7)
    gc.collect()
    base = _rss()
    previous = None
    peak_cached = peak_rss = 0
    for i in range(steps):
        g = step(int(rng.integers(ROWS[0], ROWS[1] + 1)))
        peak_rss = max(peak_rss, _rss() - base)  # both gradients alive: the loop's high point
        previous = g  # noqa: F841  (the step before's gradient is released here)
        del g
        peak_cached = max(peak_cached, cached_bytes())
        assert cached_bytes() <= CEILING, (i, cached_bytes() / MIB)
        assert peak_rss <= CEILING, (i, peak_rss / MIB)
    return peak_cached, peak_rss


@pytest.fixture(scope="module")
def varying_problem():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((ROWS[1], CLASSES), dtype=np.float32)
    t = rng.integers(0, CLASSES, ROWS[1])
    return x, t


@pytest.mark.slow
def test_memory_stays_bounded_when_the_row_count_changes_every_step(varying_problem):
    x, t = varying_problem

    def step(rows):
        loss, g = fused_cross_entropy(x[:rows], t[:rows])
        return g

    peak_cached, peak_rss = _varying_loop(step)
    print(
        f"numpy: peak cached {peak_cached / MIB:.0f} MiB, peak RSS growth {peak_rss / MIB:.0f} MiB, "
        f"ceiling {CEILING / MIB:.0f} MiB"
    )


@pytest.mark.slow
def test_torch_memory_stays_bounded_when_the_row_count_changes_every_step(varying_problem):
    torch = pytest.importorskip("torch")
    import losskit.torch as lkt

    x, t = varying_problem
    target = torch.from_numpy(t)

    def step(rows):
        logits = torch.from_numpy(x[:rows]).requires_grad_()
        lkt.cross_entropy(logits, target[:rows]).backward()
        return logits.grad

    peak_cached, peak_rss = _varying_loop(step)
    print(
        f"torch: peak cached {peak_cached / MIB:.0f} MiB, peak RSS growth {peak_rss / MIB:.0f} MiB, "
        f"ceiling {CEILING / MIB:.0f} MiB"
    )
