"""Every catalogued loss under JAX's transforms, on the small inputs of the shared case table:
``jit`` (equal to the eager value), ``grad`` under ``jit`` (equal to losskit's analytic
gradient), ``vmap`` over a stacked batch of inputs (equal to a loop), ``hessian`` (equal to
finite differences of the analytic gradient); and no dtype warning with JAX's default
``jax_enable_x64=False``, checked in a fresh process (x64 is a process-wide switch, and this
suite turns it on)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import losskit as lk
from tests.support.cases import ALL_CASES

ROOT = Path(__file__).resolve().parents[2]


def _first_case_per_loss():
    seen, cases = set(), []
    for case in ALL_CASES:
        if "jax" in case.backends and case.fn not in seen:
            seen.add(case.fn)
            cases.append(case)
    return cases


CASES = _first_case_per_loss()
# the transport losses' analytic gradient is the envelope gradient of the converged problem, while
# JAX differentiates the fixed iteration budget: their Hessians are of different functions
NO_HESSIAN_CHECK = {"sinkhorn", "sinkhorn_divergence", "sinkhorn_histograms"}
MAX_HESSIAN_SIZE = 64


def _jax(value):
    if isinstance(value, np.ndarray):
        return jnp.asarray(value)
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], np.ndarray):
        return type(value)(jnp.asarray(v) for v in value)
    return value


def _args(case, seed=0):
    args, kwargs = case.make_args(np.random.default_rng(seed))
    return args, kwargs, tuple(_jax(a) for a in args), {k: _jax(v) for k, v in kwargs.items()}


def test_every_catalogued_loss_with_jax_cases_is_covered():
    names = {case.fn.__name__ for case in CASES}
    # linear_cross_entropy has its own JAX tests (tests/jax/test_functional.py)
    assert {info.name for info in lk.catalog()} - names <= {"linear_cross_entropy"}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.fn.__name__)
def test_jit_grad_vmap(case):
    args, kwargs, jargs, jkwargs = _args(case)

    def total(x):
        return case.fn(x, *jargs[1:], reduction="sum", **jkwargs)

    for reduction in [r for r in ("sum", "none") if r in case.reductions]:  # the penalties: no "none"
        eager = case.fn(*jargs, reduction=reduction, **jkwargs)
        traced = jax.jit(lambda *a, r=reduction: case.fn(*a, reduction=r, **jkwargs))(*jargs)
        np.testing.assert_allclose(np.asarray(traced), np.asarray(eager), rtol=1e-10, atol=1e-12)

    # the gradient JAX takes through the loss under jit is losskit's analytic gradient
    _, analytic = lk.value_and_grad(case.fn)(*args, reduction="sum", **kwargs)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.grad(total))(jargs[0])), analytic, rtol=1e-6, atol=1e-9)

    # vmap over a leading axis of stacked inputs (options and keyword arrays shared)
    other, _ = case.make_args(np.random.default_rng(1))
    stacked = [
        jnp.stack([jnp.asarray(a), jnp.asarray(b)]) if isinstance(a, np.ndarray) else a
        for a, b in zip(args, other)
    ]
    axes = [0 if isinstance(a, np.ndarray) else None for a in args]
    mapped = jax.vmap(lambda *a: case.fn(*a, reduction="mean", **jkwargs), in_axes=axes)(*stacked)
    looped = [
        case.fn(*[s[i] if ax == 0 else s for s, ax in zip(stacked, axes)], reduction="mean", **jkwargs)
        for i in range(2)
    ]
    np.testing.assert_allclose(np.asarray(mapped), np.stack(looped), rtol=1e-10, atol=1e-12)


def _small(case):
    return case.make_args(np.random.default_rng(0))[0][0].size <= MAX_HESSIAN_SIZE


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.fn.__name__ not in NO_HESSIAN_CHECK and _small(c)],
    ids=lambda c: c.fn.__name__,
)
def test_hessian_matches_finite_differences_of_the_analytic_gradient(case):
    args, kwargs, jargs, jkwargs = _args(case)
    x = args[0]
    n = x.size
    hessian = jax.hessian(lambda z: case.fn(z, *jargs[1:], reduction="sum", **jkwargs))(jargs[0])
    hessian = np.asarray(hessian).reshape(n, n)
    gradient = lk.grad(case.fn)
    eps = 1e-5
    fd = np.empty((n, n))
    for j in range(n):
        step = np.zeros(n)
        step[j] = eps
        up = gradient((x.reshape(-1) + step).reshape(x.shape), *args[1:], reduction="sum", **kwargs)
        down = gradient((x.reshape(-1) - step).reshape(x.shape), *args[1:], reduction="sum", **kwargs)
        fd[:, j] = ((np.asarray(up) - np.asarray(down)) / (2 * eps)).reshape(-1)
    scale = max(1.0, float(np.max(np.abs(fd))))
    np.testing.assert_allclose(hessian / scale, fd / scale, atol=1e-5)
    np.testing.assert_allclose(hessian, hessian.T, rtol=1e-6, atol=1e-8 * scale)


_X64_OFF = textwrap.dedent(
    """
    import os, warnings
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax, jax.numpy as jnp, numpy as np
    assert not jax.config.jax_enable_x64
    import losskit as lk
    from tests.support.cases import ALL_CASES

    def to_jax(v):
        if isinstance(v, np.ndarray):
            return jnp.asarray(v)
        if isinstance(v, (tuple, list)) and v and isinstance(v[0], np.ndarray):
            return type(v)(jnp.asarray(a) for a in v)
        return v

    warnings.simplefilter("error")
    done = set()
    # traced once each: the losses whose integer inputs take the paths that once asked for int64
    traced = {"cross_entropy", "nll", "softmax_focal", "arcface", "lovasz_softmax", "ctc"}
    for case in ALL_CASES:
        if "jax" not in case.backends or case.fn.__name__ in done:
            continue  # the first case of each loss
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NumPy's float64 to JAX's float32 is the point here
            args, kwargs = case.make_args(np.random.default_rng(0))
            args = tuple(to_jax(a) for a in args)
            kwargs = {k: to_jax(v) for k, v in kwargs.items()}
        case.fn(*args, reduction=case.reductions[0], **kwargs)  # the reduction asks for no index
        if case.fn.__name__ in traced:  # under jit and grad
            traced.discard(case.fn.__name__)
            f = lambda x: jnp.sum(case.fn(x, *args[1:], reduction="mean", **kwargs))
            jax.jit(jax.value_and_grad(f))(args[0])
        done.add(case.fn.__name__)
    x = jnp.ones((5, 8)); w = jnp.ones((11, 8)) / 8; t = jnp.arange(5) % 11
    for reduction in ("mean", "none"):
        jax.jit(jax.grad(lambda x: jnp.sum(lk.linear_cross_entropy(x, w, t, reduction=reduction))))(x)
    done.add("linear_cross_entropy")
    print(len(done), sorted({i.name for i in lk.catalog()} - done))
    """
)


@pytest.mark.slow
def test_no_dtype_warning_with_x64_off():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_ENABLE_X64": "0", "LOSSKIT_DISABLE_NUMBA": "1"}
    run = subprocess.run(
        [sys.executable, "-c", _X64_OFF], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, run.stderr[-4000:]
    count, missing = run.stdout.strip().splitlines()[-1].split(" ", 1)
    assert missing == "[]", missing
    assert int(count) == len(lk.catalog())


def test_the_x64_check_would_see_a_truncation_warning():
    # the subprocess's filter turns exactly this warning into an error
    env = {**os.environ, "JAX_ENABLE_X64": "0"}
    code = (
        "import warnings, jax.numpy as jnp; warnings.simplefilter('error')\n"
        "try:\n    jnp.zeros(2).astype(jnp.int64)\n"
        "except UserWarning as e:\n    print('caught', 'int64' in str(e))"
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert run.stdout.strip() == "caught True", run.stderr[-2000:]
