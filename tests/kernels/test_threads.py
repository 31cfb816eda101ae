"""The kernels' thread pool: row blocks shared between threads survive a fork, deliver the
exception that stopped them (KeyboardInterrupt, MemoryError, a worker's error) and keep
working while another thread changes the thread count."""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
import warnings

import numpy as np
import pytest

from losskit import kernels
from losskit.kernels import fused_cross_entropy
from losskit.kernels import threads as kt

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHAPE = (512, 1024)  # 2**19 float32 logits: the kernel shares them between threads
TIMEOUT = 30.0  # seconds a child gets for one small kernel call (it takes milliseconds)


@pytest.fixture(autouse=True)
def _restore_threads():
    n = kernels.get_num_threads()
    yield
    kernels.set_num_threads(n)


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(SHAPE, dtype=np.float32)
    t = rng.integers(0, SHAPE[1], SHAPE[0])
    return x, t


def _single_threaded_reference(x, t):
    n = kernels.get_num_threads()
    kernels.set_num_threads(1)
    try:
        return fused_cross_entropy(x, t)
    finally:
        kernels.set_num_threads(n)


# -- fork --------------------------------------------------------------------------------------


def _threaded_call(seed: int):
    """The kernel on the two-thread path (in a child: its first call there)."""
    x, t = _problem(seed)
    return fused_cross_entropy(x, t)


def _same(a, b) -> bool:
    return bool(a[0] == b[0]) and bool(np.array_equal(a[1], b[1]))


def _reference(seed: int):
    return _single_threaded_reference(*_problem(seed))


def _torch_call():
    import torch

    import losskit.torch as lkt

    x, t = _problem(2)
    xx = torch.from_numpy(x).requires_grad_()
    loss = lkt.cross_entropy(xx, torch.from_numpy(t))
    loss.backward()
    return loss.detach().numpy().copy(), xx.grad.numpy().copy()


def _fork_and_wait(child) -> int:
    """Run ``child()`` in an ``os.fork()`` child; its exit status (0: it returned True).  A child
    still running after TIMEOUT seconds is killed and the test fails instead of hanging."""
    with warnings.catch_warnings():  # forking a process with threads warns (JAX, Python 3.12+)
        warnings.simplefilter("ignore")
        pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            status = 0 if child() else 1
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(status)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked child did not finish one kernel call within {TIMEOUT:.0f} s (hung)")


def test_forked_child_can_call_the_kernel():
    assert kernels.get_num_threads() >= 2
    expected = _reference(1)
    assert _same(_threaded_call(1), expected)  # the parent's call starts the pool
    assert _fork_and_wait(lambda: _same(_threaded_call(1), expected)) == 0
    assert _same(_threaded_call(1), expected)  # and the parent's pool still works


def test_fork_start_method_pool_can_call_the_kernel():
    expected = [_reference(seed) for seed in (3, 4, 5)]
    assert _same(_threaded_call(3), expected[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = [pool.apply_async(_threaded_call, (seed,)) for seed in (3, 4, 5)]
            for r, e in zip(results, expected):
                assert _same(r.get(timeout=TIMEOUT), e)


def test_forked_child_can_call_the_torch_function():
    torch = pytest.importorskip("torch")
    expected = _torch_call()  # the parent runs the same kernel first

    def child():
        torch.set_num_threads(1)  # PyTorch's own OpenMP threads do not survive a fork either
        return _same(_torch_call(), expected)

    assert _fork_and_wait(child) == 0


def test_fork_while_the_pool_lock_is_held():
    # a fork while a thread is inside set_num_threads or a submission (holding the pool's lock)
    # must not leave the child with a lock nobody will release
    expected = _reference(1)
    assert _same(_threaded_call(1), expected)
    with kt._pool_lock:
        status = _fork_and_wait(lambda: _same(_threaded_call(1), expected))
    assert status == 0


def test_fork_while_another_thread_holds_the_buffer_cache_lock():
    from losskit.kernels import buffer_cache

    held, release = threading.Event(), threading.Event()

    def hold():
        with buffer_cache._lock:
            held.set()
            release.wait(TIMEOUT)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(TIMEOUT)

        def child():  # a gradient of 4 MiB or more goes through the cache and its lock
            big = buffer_cache.empty((1024, 8192), np.float32)
            del big
            return buffer_cache.cached_bytes() in (0, 32 << 20)

        status = _fork_and_wait(child)
    finally:
        release.set()
        holder.join()
    assert status == 0


# -- exceptions --------------------------------------------------------------------------------


class _Blocks:
    """A row-block function: the calling thread (worker 0) raises ``exc`` on its first block
    while the pool's worker waits on its block until then, so both threads are inside."""

    def __init__(self, raise_in: int, exc: BaseException):
        self.raise_in = raise_in
        self.exc = exc
        self.started = threading.Event()
        self.raised = threading.Event()
        self.calls: list[int] = []

    def __call__(self, lo: int, hi: int, worker: int) -> None:
        self.calls.append(worker)
        if worker == self.raise_in:
            self.started.wait(TIMEOUT)  # the other thread holds a block too
            self.raised.set()
            raise self.exc
        self.started.set()
        self.raised.wait(TIMEOUT)


@pytest.mark.parametrize(
    "exc", [KeyboardInterrupt(), MemoryError(), ValueError("bad block")], ids=lambda e: type(e).__name__
)
def test_an_exception_in_the_callers_share_arrives_as_itself(exc):
    fn = _Blocks(raise_in=0, exc=exc)
    with pytest.raises(type(exc)) as caught:
        kt.run_row_blocks(1000, 1, fn, threads=2)
    assert caught.value is exc
    # the other worker stopped after the block it held: not all 1000 blocks were run
    assert len(fn.calls) <= 3, fn.calls


@pytest.mark.parametrize("exc", [MemoryError(), ValueError("bad block")], ids=lambda e: type(e).__name__)
def test_an_exception_in_a_pool_worker_arrives_as_itself(exc):
    fn = _Blocks(raise_in=1, exc=exc)
    with pytest.raises(type(exc)) as caught:
        kt.run_row_blocks(1000, 1, fn, threads=2)
    assert caught.value is exc
    assert len(fn.calls) <= 3, fn.calls  # the calling thread stopped too


def test_the_pool_works_after_an_exception():
    with pytest.raises(KeyboardInterrupt):
        kt.run_row_blocks(1000, 1, _Blocks(raise_in=0, exc=KeyboardInterrupt()), threads=2)
    seen = np.zeros(1000, dtype=int)

    def fn(lo, hi, worker):
        seen[lo:hi] += 1

    kt.run_row_blocks(1000, 7, fn, threads=2)
    assert np.all(seen == 1)
    assert _same(_threaded_call(0), _reference(0))


SIGINT_SCRIPT = textwrap.dedent(
    """
    import signal, sys, threading, time, traceback
    import numpy as np
    from losskit.kernels import fused_cross_entropy, set_num_threads

    # a process started in the background of a shell inherits SIGINT ignored, and Python then
    # leaves it so: restore the usual KeyboardInterrupt
    signal.signal(signal.SIGINT, signal.default_int_handler)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2048, 8192), dtype=np.float32)
    t = rng.integers(0, 8192, 2048)
    fused_cross_entropy(x, t)  # starts the pool
    main = threading.main_thread().ident

    def interrupt(delay):
        time.sleep(delay)
        signal.pthread_kill(main, signal.SIGINT)

    for delay in map(float, sys.argv[1:]):  # SIGINT at different points of a call
        try:
            threading.Thread(target=interrupt, args=(delay,), daemon=True).start()
            for _ in range(1000):
                fused_cross_entropy(x, t)
            print("none")
        except BaseException as exc:
            frames = [f.name for f in traceback.extract_tb(exc.__traceback__)]
            print(type(exc).__name__, "inside" if "run_row_blocks" in frames else "outside")
    # the pool still works and gives the single-threaded numbers
    loss, g = fused_cross_entropy(x, t)
    set_num_threads(1)
    ref, ref_g = fused_cross_entropy(x, t)
    print("same" if loss == ref and np.array_equal(g, ref_g) else "different")
    """
)


@pytest.mark.slow
def test_sigint_during_a_large_call_raises_keyboard_interrupt():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), LOSSKIT_DISABLE_NUMBA="1")
    delays = ["0.013", "0.041", "0.077", "0.029", "0.003", "0.055"]
    proc = subprocess.run(
        [sys.executable, "-c", SIGINT_SCRIPT, *delays], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.split("\n")
    outcomes = [line.split() for line in lines[: len(delays)]]
    assert all(o[0] == "KeyboardInterrupt" for o in outcomes), proc.stdout + proc.stderr
    # most land inside the kernel's row blocks (a few may land in the code around them)
    assert sum(o[1] == "inside" for o in outcomes) >= 3, proc.stdout
    assert lines[len(delays)] == "same", proc.stdout


# -- set_num_threads while other threads compute -----------------------------------------------


@pytest.mark.slow
def test_set_num_threads_while_other_threads_compute():
    problems = [_problem(seed) for seed in range(3)]
    references = [_single_threaded_reference(x, t) for x, t in problems]
    stop = threading.Event()
    errors: list[BaseException] = []
    mismatches: list[int] = []
    calls = [0]

    def compute(k: int) -> None:
        try:
            i = 0
            while not stop.is_set():
                x, t = problems[(i + k) % 3]
                loss, g = fused_cross_entropy(x, t)
                ref_loss, ref_g = references[(i + k) % 3]
                if loss != ref_loss or not np.array_equal(g, ref_g):
                    mismatches.append(i)
                calls[0] += 1
                i += 1
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    def toggle() -> None:
        try:
            i = 0
            while not stop.is_set():
                kernels.set_num_threads(1 + i % 4)
                i += 1
                time.sleep(0.0005)
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    workers = [threading.Thread(target=compute, args=(k,)) for k in range(3)]
    workers.append(threading.Thread(target=toggle))
    for w in workers:
        w.start()
    deadline = time.monotonic() + 8.0
    while time.monotonic() < deadline and not stop.is_set() and calls[0] < 600:
        time.sleep(0.05)
    stop.set()
    for w in workers:
        w.join(TIMEOUT)
    assert not any(w.is_alive() for w in workers), "a thread is stuck"
    assert not errors, errors
    assert not mismatches
    assert calls[0] > 0
