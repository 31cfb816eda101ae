"""torch.compile(fullgraph=True) traces every catalogued loss, forward and backward, without a
graph break and without a warning from losskit, and gives the eager numbers.

The sweep uses the ``aot_eager`` backend (Dynamo's trace and AOTAutograd's joint graph, without
Inductor's code generation, which would take minutes for 80 losses on a small CPU); a few losses
run with the default Inductor backend too.  The inputs are each loss's first case in the shared
table (``tests/support/cases``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import losskit as lk  # noqa: E402
import losskit.torch as lt  # noqa: E402
from tests.support.backends import BY_NAME  # noqa: E402
from tests.support.cases import ALL_CASES  # noqa: E402

FIRST_CASE = {}
for _case in ALL_CASES:
    if "torch" in _case.backends:
        FIRST_CASE.setdefault(_case.fn.__name__, _case)


def _inputs(name):
    """``(args, kwargs)`` as float64 tensors, the first floating argument requiring a gradient."""
    if name == "linear_cross_entropy":
        rng = np.random.default_rng(0)
        x = torch.tensor(rng.standard_normal((6, 5)), requires_grad=True)
        w = torch.tensor(rng.standard_normal((7, 5)), requires_grad=True)
        return (x, w, torch.tensor(rng.integers(0, 7, 6))), {"chunk_size": 4}
    case = FIRST_CASE[name]
    args, kwargs = BY_NAME["torch"].args(*case.make_args(np.random.default_rng(0)))
    args = list(args)
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            args[i] = a.clone().requires_grad_()
            break
    return tuple(args), kwargs


def _differentiated(args):
    return [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]


def _losskit_warnings(record):
    return [str(w.message) for w in record if "losskit" in (w.filename or "")]


def _run_compiled(fn, args, backend):
    torch._dynamo.reset()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        compiled = torch.compile(fn, backend=backend, fullgraph=True)
        value = compiled(*args)
        value.sum().backward()
    return value, [a.grad.clone() for a in _differentiated(args)], record


def _run_eager(fn, args):
    fresh = [
        a.detach().clone().requires_grad_() if isinstance(a, torch.Tensor) and a.requires_grad else a
        for a in args
    ]
    value = fn(*fresh)
    value.sum().backward()
    return value, [a.grad for a in _differentiated(fresh)]


NAMES = sorted(info.name for info in lk.catalog())


def test_every_catalogued_loss_has_inputs_here():
    assert set(NAMES) <= set(FIRST_CASE) | {"linear_cross_entropy"}


@pytest.mark.parametrize("name", NAMES)
def test_compiles_fullgraph_forward_and_backward(name):
    args, kwargs = _inputs(name)
    fn = getattr(lk, name)
    value, grads, record = _run_compiled(lambda *a: fn(*a, **kwargs), args, "aot_eager")
    assert _losskit_warnings(record) == []
    want, want_grads = _run_eager(lambda *a: fn(*a, **kwargs), args)
    torch.testing.assert_close(value, want, rtol=1e-9, atol=1e-12)
    for got, expected in zip(grads, want_grads):
        torch.testing.assert_close(got, expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(
    "name", ["cross_entropy", "mse", "huber", "kl_div", "binary_cross_entropy_with_logits"]
)
def test_modules_compile_fullgraph(name):
    args, kwargs = _inputs(name)
    module = lt.modules_by_loss()[name](**kwargs)
    value, grads, record = _run_compiled(module, args, "aot_eager")
    assert _losskit_warnings(record) == []
    want, want_grads = _run_eager(module, args)
    torch.testing.assert_close(value, want, rtol=1e-9, atol=1e-12)
    for got, expected in zip(grads, want_grads):
        torch.testing.assert_close(got, expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", ["cross_entropy", "linear_cross_entropy", "mse", "sigmoid_focal"])
def test_inductor_compiles_fullgraph(name):
    args, kwargs = _inputs(name)
    fn = getattr(lk, name)
    value, grads, record = _run_compiled(lambda *a: fn(*a, **kwargs), args, "inductor")
    assert _losskit_warnings(record) == []
    want, want_grads = _run_eager(lambda *a: fn(*a, **kwargs), args)
    torch.testing.assert_close(value, want, rtol=1e-9, atol=1e-12)
    for got, expected in zip(grads, want_grads):
        torch.testing.assert_close(got, expected, rtol=1e-8, atol=1e-10)


def test_torch_functional_forms_compile_fullgraph():
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.standard_normal((6, 5)), requires_grad=True)
    t = torch.tensor(rng.integers(0, 5, 6))
    smoothed = lambda a: lt.cross_entropy(a, t, label_smoothing=0.1)  # noqa: E731
    value, grads, record = _run_compiled(smoothed, (x,), "aot_eager")
    assert _losskit_warnings(record) == []
    ref = torch.nn.functional.cross_entropy(x.detach().requires_grad_(), t, label_smoothing=0.1)
    torch.testing.assert_close(value, ref)
    w = torch.tensor(rng.standard_normal((5, 5)), requires_grad=True)
    x.grad = None
    value, grads, _ = _run_compiled(lambda a, b: lt.linear_cross_entropy(a, b, t), (x, w), "aot_eager")
    torch.testing.assert_close(value, torch.nn.functional.linear_cross_entropy(x, w, t))


def test_value_checks_still_run_in_eager_mode():
    # the checks are skipped only while tracing: eager calls still refuse bad values
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="class index"):
        lk.cross_entropy(x, torch.tensor([0, 5]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        lk.binary_cross_entropy(torch.full((2,), 0.5), torch.tensor([0.0, 2.0]))


@pytest.mark.parametrize("imports", ["import losskit as lk, torch", "import torch, losskit as lk"])
def test_a_first_call_under_the_compiler_in_a_fresh_process(imports):
    # torch.compile cannot follow an import: losskit's torch fast paths are loaded when torch
    # is imported, before or after losskit
    import subprocess
    import sys

    code = (
        f"{imports}\n"
        "x = torch.randn(4, 3, requires_grad=True); t = torch.randint(0, 3, (4,))\n"
        "f = torch.compile(lambda a: lk.cross_entropy(a, t) + lk.mse(a, a.detach()), fullgraph=True, "
        "backend='eager')\n"
        "f(x).backward(); print(bool(torch.isfinite(x.grad).all()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "True"
