"""The cache of released gradient buffers behind the fused cross-entropy."""

import gc

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

BIG = (1024, 8192)  # 32 MiB of float32: the smallest size the cache handles


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
