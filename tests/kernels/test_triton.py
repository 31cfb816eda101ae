"""The Triton kernels of losskit.torch.triton against the NumPy kernels and PyTorch in float64.

On a machine without a GPU the kernels run on CPU tensors through Triton's interpreter
(``TRITON_INTERPRET=1``, set in ``tests/conftest.py`` before triton is imported) inside
:func:`losskit.torch.triton.force_on_cpu`; with a GPU they run on CUDA tensors.  The shapes are
small (the interpreter runs each program in NumPy) but ragged against every block size.
"""

from __future__ import annotations

import contextlib
from unittest import mock

import numpy as np
import pytest

triton = pytest.importorskip("triton")
torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

import losskit as lk  # noqa: E402
import losskit.torch as lt  # noqa: E402
from losskit.core.backend import namespace  # noqa: E402
from losskit.core.specs import (  # noqa: E402
    CrossEntropyArrays,
    CrossEntropyOptions,
    CrossEntropySpec,
    LinearCrossEntropyArrays,
    LinearCrossEntropyOptions,
    LinearCrossEntropySpec,
)
from losskit.torch import triton as lkt  # noqa: E402

CUDA = torch.cuda.is_available()
if not CUDA and type(triton.language.sum).__name__ != "InterpretedFunction":
    pytest.skip(
        "no GPU, and triton was imported before TRITON_INTERPRET=1 was set (tests/conftest.py sets it)",
        allow_module_level=True,
    )
DEVICE = "cuda" if CUDA else "cpu"

from losskit.torch.triton import cross_entropy as tce  # noqa: E402
from losskit.torch.triton import linear_cross_entropy as tlce  # noqa: E402

LOW = (torch.bfloat16, torch.float16)


def on_device():
    """The kernels take this device's tensors: CUDA as they are, CPU ones when forced."""
    return contextlib.nullcontext() if CUDA else lkt.force_on_cpu()


def dev(a):
    return None if a is None or isinstance(a, float) else a.to(DEVICE)


def leaf(a, **to):
    """A fresh leaf tensor (its own .grad) with ``a``'s values."""
    return None if a is None else a.detach().to(**to).clone().requires_grad_()


def np64(a):
    return None if a is None else a.detach().cpu().double().numpy()


# -- fused cross-entropy ---------------------------------------------------------------------

def case(shape, axis=-1, *, soft=False, weighted=False, where=False, normalizer=None, **options):
    """(logits shape, class axis, soft targets, options, weighted, where, normalizer)"""
    return shape, axis, soft, options, weighted, where, normalizer


CE_CASES = {
    "plain": case((7, 37)),
    "ignore_index": case((9, 37), ignore_index=3),
    "weights": case((9, 37), weighted=True),
    "smoothing": case((9, 37), label_smoothing=0.2),
    "weights+smoothing": case((9, 37), weighted=True, label_smoothing=0.1),
    "temperature": case((6, 37), temperature=2.5),
    "z_loss": case((6, 37), weighted=True, z_loss=1e-2, label_smoothing=0.1),
    "sum": case((6, 37), weighted=True, reduction="sum", label_smoothing=0.1),
    "none": case((6, 37), reduction="none", z_loss=1e-3),
    "where": case((8, 37), weighted=True, where=True, label_smoothing=0.1),
    "normalizer": case((8, 37), normalizer=5.0),
    "soft": case((6, 37), soft=True),
    "soft+weights+smoothing": case((6, 37), soft=True, weighted=True, label_smoothing=0.1, z_loss=1e-3),
    "soft temperature none": case((6, 37), soft=True, where=True, temperature=0.7, reduction="none"),
    "axis=1 (N, C, d)": case((3, 19, 4), 1, weighted=True, label_smoothing=0.1),
    "axis=1 soft": case((3, 19, 4), 1, soft=True),
    # more classes than one block (4096): the online log-sum-exp across blocks, ragged
    "two blocks": case((3, 5000), weighted=True, label_smoothing=0.1, z_loss=1e-3),
}


def ce_inputs(name, dtype, seed=0):
    shape, axis, soft, options, weighted, use_where, normalizer = CE_CASES[name]
    g = torch.Generator().manual_seed(seed)
    C = shape[axis]
    x = (3 * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)
    sample = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
    if soft:
        target = torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64), dim=axis).float()
    else:
        target = torch.randint(0, C, sample, generator=g)
        ignore = options.get("ignore_index", -100)
        target.view(-1)[::4] = ignore  # every fourth sample ignored
    weight = torch.rand(C, generator=g, dtype=torch.float64).add(0.2).float() if weighted else None
    where = torch.rand(sample, generator=g) > 0.3 if use_where else None
    return x, target, weight, where, normalizer, {"axis": axis, **options}


def triton_ce(x, target, weight, where, normalizer, options, *, inplace=False):
    x, target, weight, where = dev(x), dev(target), dev(weight), dev(where)
    chosen = CrossEntropyOptions(**options)
    arrays = CrossEntropyArrays(x, target, weight, where, normalizer)
    spec = CrossEntropySpec.of(namespace(input=x, target=target), chosen, arrays)
    with on_device():
        value, g = tce.cross_entropy_rows(spec, arrays, grad=True, inplace=inplace)
    return value.cpu(), g.cpu()


def numpy_reference(x, target, weight, where, normalizer, options):
    """The NumPy row kernel in float64 on the same (rounded) inputs."""
    t = target.numpy() if target.dtype != torch.float32 else np64(target)
    mask = None if where is None else where.numpy()
    value, grad = lk.value_and_grad(lk.cross_entropy)(
        np64(x), t, np64(weight), where=mask, normalizer=normalizer, **options
    )
    return np.asarray(value), grad


def torch_reference(x, target, weight, where, options):
    """PyTorch's own cross-entropy in float64, with temperature as a division of the logits and
    the z-loss added by hand; None for what it cannot express (a sample mask, a normalizer)."""
    axis = options["axis"] % x.ndim
    xd = x.detach().double().movedim(axis, 1).clone().requires_grad_()
    reduction = options.get("reduction", "mean")
    eps = options.get("label_smoothing", 0.0)
    z = options.get("z_loss", 0.0)
    T = options.get("temperature", 1.0)
    ignore = options.get("ignore_index", -100)
    soft = target.dtype == torch.float32
    tgt = target.double().movedim(axis, 1) if soft else target
    w = None if weight is None else weight.double()
    per = F.cross_entropy(xd / T, tgt, weight=w, ignore_index=ignore, label_smoothing=eps, reduction="none")
    if z:
        lse = torch.logsumexp(xd / T, dim=1)
        per = per + z * lse**2 * (1.0 if soft else (tgt != ignore))
    if reduction == "none":
        value = per
    elif reduction == "sum":
        value = per.sum()
    else:
        counted = torch.ones_like(per) if soft else (tgt != ignore).double()
        if w is not None and not soft:
            counted = counted * w[torch.where(tgt != ignore, tgt, 0)]
        value = per.sum() / counted.sum()
    value.sum().backward()
    return value.detach(), xd.grad.movedim(1, axis)


def tolerances(dtype):
    # float32 arithmetic throughout; a low-precision gradient is rounded once when stored
    if dtype == torch.float32:
        return {"rtol": 1e-5, "atol": 1e-6}
    return {"rtol": 2e-2, "atol": 2e-3 if dtype == torch.bfloat16 else 5e-4}


@pytest.mark.parametrize("name", sorted(CE_CASES))
def test_fused_cross_entropy_matches_the_numpy_kernel_and_pytorch(name):
    x, target, weight, where, normalizer, options = ce_inputs(name, torch.float32)
    value, grad = triton_ce(x, target, weight, where, normalizer, options)
    ref_value, ref_grad = numpy_reference(x, target, weight, where, normalizer, options)
    np.testing.assert_allclose(value.double().numpy(), ref_value, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad.double().numpy(), ref_grad, rtol=1e-5, atol=1e-7)
    if where is None and normalizer is None:
        torch_value, torch_grad = torch_reference(x, target, weight, where, options)
        np.testing.assert_allclose(value.double().numpy(), torch_value.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(grad.double().numpy(), torch_grad.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", LOW, ids=str)
@pytest.mark.parametrize("name", ["plain", "weights+smoothing", "z_loss", "soft+weights+smoothing", "none"])
def test_fused_cross_entropy_low_precision_inputs(name, dtype):
    x, target, weight, where, normalizer, options = ce_inputs(name, dtype)
    value, grad = triton_ce(x, target, weight, where, normalizer, options)
    assert value.dtype == dtype and grad.dtype == dtype
    # the reference sees the same rounded logits, in float64
    ref_value, ref_grad = numpy_reference(x, target, weight, where, normalizer, options)
    np.testing.assert_allclose(value.double().numpy(), ref_value, **tolerances(dtype))
    np.testing.assert_allclose(grad.double().numpy(), ref_grad, **tolerances(dtype))


@pytest.mark.parametrize("dtype", (torch.float32, *LOW), ids=str)
def test_fused_cross_entropy_inplace_writes_the_gradient_into_the_logits(dtype):
    x, target, weight, where, normalizer, options = ce_inputs("weights+smoothing", dtype)
    expected_value, expected_grad = triton_ce(x, target, weight, where, normalizer, options)
    logits = dev(x.clone())
    chosen = CrossEntropyOptions(**options)
    arrays = CrossEntropyArrays(logits, dev(target), dev(weight), None, None)
    spec = CrossEntropySpec.of(namespace(input=logits), chosen, arrays)
    pointer = logits.data_ptr()
    with on_device():
        value, grad = tce.cross_entropy_rows(spec, arrays, inplace=True)
    assert grad is logits and grad.data_ptr() == pointer
    torch.testing.assert_close(value.cpu(), expected_value, rtol=0, atol=0)
    torch.testing.assert_close(logits.cpu(), expected_grad, rtol=0, atol=0)


@pytest.mark.parametrize("soft", [False, True])
def test_fused_cross_entropy_all_ignored_is_zero_with_zero_gradient(soft):
    x = torch.randn(5, 37)
    if soft:
        target, where = torch.softmax(torch.randn(5, 37), -1), torch.zeros(5, dtype=torch.bool)
    else:
        target, where = torch.full((5,), -100), None
    value, grad = triton_ce(x, target, None, where, None, {"label_smoothing": 0.1, "z_loss": 1e-2})
    assert float(value) == 0.0
    assert torch.count_nonzero(grad) == 0


def test_fused_cross_entropy_refuses_inplace_on_a_strided_class_axis():
    x, target, weight, where, normalizer, options = ce_inputs("axis=1 (N, C, d)", torch.float32)
    with pytest.raises(ValueError, match="inplace=True needs a contiguous input with the classes"):
        triton_ce(x, target, weight, where, normalizer, options, inplace=True)


# -- linear cross-entropy ----------------------------------------------------------------------

# tokens N=21, hidden D=24, classes V=50: ragged against the interpreter's 16 x 32 x 16 tiles
LCE_CASES = {
    "plain": {},
    "bias": {"bias": True},
    "smoothing": {"label_smoothing": 0.2, "bias": True},
    "z_loss": {"z_loss": 1e-2},
    "softcap": {"softcap": 2.0, "bias": True},
    "everything": {"softcap": 3.0, "label_smoothing": 0.1, "z_loss": 1e-3, "bias": True},
    "sum": {"reduction": "sum", "label_smoothing": 0.1},
    "none": {"reduction": "none", "softcap": 2.0, "bias": True},
    "ignore_index": {"ignore_index": 7, "bias": True},
}


def lce_inputs(dtype, *, bias, ignore_index=-100, lead=(3, 7), seed=1):
    g = torch.Generator().manual_seed(seed)
    D, V = 24, 50
    x = torch.randn(*lead, D, generator=g, dtype=torch.float64).to(dtype)
    w = (0.4 * torch.randn(V, D, generator=g, dtype=torch.float64)).to(dtype)
    b = torch.randn(V, generator=g, dtype=torch.float64).to(dtype) if bias else None
    t = torch.randint(0, V, lead, generator=g)
    t.view(-1)[::5] = ignore_index
    return x, w, b, t


def lce_reference(x, w, b, t, options):
    """PyTorch in float64: the logits materialised, soft-capped, then its cross-entropy with the
    z-loss added by hand; gradients by autograd."""
    xd, wd, bd = (leaf(a, dtype=torch.float64) for a in (x, w, b))
    logits = F.linear(xd, wd, bd)
    cap = options.get("softcap")
    if cap is not None:
        logits = cap * torch.tanh(logits / cap)
    ignore = options.get("ignore_index", -100)
    logits2, t2 = logits.reshape(-1, w.shape[0]), t.reshape(-1)
    eps = options.get("label_smoothing", 0.0)
    per = F.cross_entropy(logits2, t2, ignore_index=ignore, label_smoothing=eps, reduction="none")
    valid = (t2 != ignore).double()
    per = per + options.get("z_loss", 0.0) * torch.logsumexp(logits2, -1) ** 2 * valid
    reduction = options.get("reduction", "mean")
    mean = per.sum() / valid.sum().clamp(min=1)
    value = {"none": per.reshape(t.shape), "sum": per.sum(), "mean": mean}[reduction]
    value.sum().backward()
    return value.detach(), xd.grad, wd.grad, None if bd is None else bd.grad


def triton_lce(x, w, b, t, options):
    """losskit.linear_cross_entropy through the autograd Function on the kernel's device."""
    xd, wd, bd = (leaf(a, device=DEVICE) for a in (x, w, b))
    with on_device(), spy_lce() as spy:
        value = lk.linear_cross_entropy(xd, wd, dev(t), bd, **options)
        value.sum().backward()
    assert spy.called  # the Triton kernels ran
    grads = [None if a is None else a.grad.cpu() for a in (xd, wd, bd)]
    return value.detach().cpu(), *grads


@pytest.mark.parametrize("name", sorted(LCE_CASES))
def test_linear_cross_entropy_matches_pytorch_and_the_cpu_path(name):
    options = dict(LCE_CASES[name])
    bias = options.pop("bias", False)
    x, w, b, t = lce_inputs(torch.float32, bias=bias, ignore_index=options.get("ignore_index", -100))
    got = triton_lce(x, w, b, t, options)
    ref = lce_reference(x, w, b, t, options)
    for a, r in zip(got, ref):
        assert (a is None) == (r is None)
        if a is not None:
            np.testing.assert_allclose(a.double().numpy(), r.numpy(), rtol=1e-5, atol=2e-6)
    # losskit's own CPU path (NumPy chunk loop) in float64 gives the same numbers
    cpu = lk.value_and_grad(lk.linear_cross_entropy, argnums=(0, 1))(
        np64(x), np64(w), t.numpy(), np64(b), **options
    )
    np.testing.assert_allclose(got[0].double().numpy(), cpu[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1].double().numpy(), cpu[1][0], rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("dtype", LOW, ids=str)
@pytest.mark.parametrize("name", ["bias", "everything", "none"])
def test_linear_cross_entropy_low_precision_inputs(name, dtype):
    options = dict(LCE_CASES[name])
    bias = options.pop("bias", False)
    x, w, b, t = lce_inputs(dtype, bias=bias)
    value, gx, gw, gb = triton_lce(x, w, b, t, options)
    assert value.dtype == dtype and gx.dtype == dtype and gw.dtype == dtype
    ref = lce_reference(x, w, b, t, options)  # the same rounded inputs, in float64
    tol = {"rtol": 3e-2, "atol": 1e-2}
    for a, r in zip((value, gx, gw, gb), ref):
        if r is not None:
            np.testing.assert_allclose(a.double().numpy(), r.numpy(), **tol)


def test_linear_cross_entropy_all_ignored_is_zero_with_zero_gradients():
    x, w, b, t = lce_inputs(torch.float32, bias=True)
    t = torch.full_like(t, -100)
    value, gx, gw, gb = triton_lce(x, w, b, t, {"label_smoothing": 0.1, "z_loss": 1e-2})
    assert float(value) == 0.0
    for g in (gx, gw, gb):
        assert torch.count_nonzero(g) == 0


def test_linear_log_sum_exp_is_the_log_partition_of_every_token():
    x, w, b, t = lce_inputs(torch.float32, bias=True)
    x2, t2 = dev(x.reshape(-1, 24)), dev(t.reshape(-1).clamp(min=0))
    spec = LinearCrossEntropySpec.of(
        namespace(input=x2),
        LinearCrossEntropyOptions(softcap=2.5),
        LinearCrossEntropyArrays(x2, dev(w), t2, dev(b)),
    )
    with on_device():
        lse, loss = tlce.linear_log_sum_exp(x2, dev(w), dev(b), t2, spec)
    logits = 2.5 * torch.tanh(F.linear(x2.double(), w.double(), b.double()).cpu() / 2.5)
    np.testing.assert_allclose(lse.cpu().double().numpy(), torch.logsumexp(logits, -1).numpy(), rtol=1e-6)
    expected = torch.logsumexp(logits, -1) - logits.gather(1, t2.cpu()[:, None])[:, 0]
    np.testing.assert_allclose(loss.cpu().double().numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


# -- dispatch: the public entry points reach the kernels -----------------------------------


def spy_lce():
    return mock.patch.object(tlce, "linear_cross_entropy_sweep", wraps=tlce.linear_cross_entropy_sweep)


def spy_ce():
    return mock.patch.object(tce, "cross_entropy_rows", wraps=tce.cross_entropy_rows)


def test_losskit_cross_entropy_and_the_torch_module_reach_the_triton_kernel():
    x, target, weight, _, _, options = ce_inputs("weights+smoothing", torch.float32)
    reference = lk.cross_entropy(x.clone().requires_grad_(), target, weight, **options)
    for call in (
        lambda a: lk.cross_entropy(a, dev(target), dev(weight), **options),
        lambda a: lt.CrossEntropyLoss(weight=dev(weight), **options)(a, dev(target)),
        lambda a: lt.cross_entropy(a, dev(target), dev(weight), inplace=False, **options),
    ):
        logits = dev(x.clone()).requires_grad_()
        with on_device(), spy_ce() as spy:
            value = call(logits)
            value.backward()
        assert spy.call_count == 1
        torch.testing.assert_close(value.detach().cpu(), reference.detach(), rtol=1e-6, atol=1e-6)
    # with inplace=True the gradient is the logits' own buffer
    logits = dev(x.clone()).requires_grad_()
    h = logits * 1.0
    with on_device(), spy_ce() as spy:
        lt.CrossEntropyLoss(weight=dev(weight), inplace=True, **options)(h, dev(target)).backward()
    assert spy.call_count == 1 and spy.call_args.kwargs["inplace"] is True
    expected = numpy_reference(x, target, weight, None, None, options)[1]
    np.testing.assert_allclose(logits.grad.cpu().numpy(), expected, rtol=1e-5, atol=1e-7)


def test_linear_cross_entropy_module_reaches_the_triton_kernel():
    x, w, b, t = lce_inputs(torch.float32, bias=False)
    module = lt.LinearCrossEntropyLoss(24, 50, bias=False).to(DEVICE)
    with torch.no_grad():
        module.linear.weight.copy_(dev(w))
    with on_device(), spy_lce() as spy:
        value = module(dev(x), dev(t))
        value.backward()
    assert spy.called
    ref = lce_reference(x, w, None, t, {})
    got = module.linear.weight.grad.cpu().double().numpy()
    np.testing.assert_allclose(got, ref[2].numpy(), rtol=1e-5, atol=2e-6)


def test_the_kernels_are_declined_where_they_do_not_apply(monkeypatch):
    x, target, _, _, _, options = ce_inputs("plain", torch.float32)
    with spy_ce() as spy:
        # CPU tensors outside force_on_cpu, float64 tensors, and LOSSKIT_DISABLE_TRITON=1 keep
        # the other paths
        lk.cross_entropy(x.clone().requires_grad_(), target, **options).backward()
        with on_device():
            lk.cross_entropy(dev(x).double().requires_grad_(), dev(target)).backward()
            monkeypatch.setenv("LOSSKIT_DISABLE_TRITON", "1")
            assert not lkt.available()
            lk.cross_entropy(dev(x).requires_grad_(), dev(target)).backward()
    assert spy.call_count == 0


# -- linear_log_probs on the same kernels -------------------------------------------------------


def spy_log_probs():
    return mock.patch.object(tlce, "linear_log_probs_sweep", wraps=tlce.linear_log_probs_sweep)


@pytest.mark.parametrize("entropy", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("bias", [False, True])
def test_linear_log_probs_matches_pytorch(bias, temperature, entropy):
    x, w, b, t = lce_inputs(torch.float32, bias=bias, seed=2)
    g = torch.Generator().manual_seed(3)
    up_lp, up_ent = torch.randn(t.shape, generator=g), torch.randn(t.shape, generator=g)
    xd, wd, bd = (leaf(a, device=DEVICE) for a in (x, w, b))
    with on_device(), spy_log_probs() as spy:
        out = lk.linear_log_probs(xd, wd, dev(t), bd, temperature=temperature, return_entropy=entropy)
        log_probs, ent = out if entropy else (out, None)
        total = (log_probs * dev(up_lp)).sum() + (0 if ent is None else (ent * dev(up_ent)).sum())
        total.backward()
    assert spy.call_count == 2  # the forward sweep and the gradient sweep
    # PyTorch in float64 with the logits materialised
    xr, wr, br = (leaf(a, dtype=torch.float64) for a in (x, w, b))
    logp = torch.log_softmax(F.linear(xr, wr, br) / temperature, -1)
    valid = t != -100
    ref_lp = torch.where(valid, logp.gather(-1, t.clamp(min=0)[..., None])[..., 0], 0.0)
    ref_ent = torch.where(valid, -(logp.exp() * logp).sum(-1), 0.0)
    ref_total = (ref_lp * up_lp).sum() + ((ref_ent * up_ent).sum() if entropy else 0)
    ref_total.backward()
    tol = {"rtol": 1e-5, "atol": 2e-6}
    np.testing.assert_allclose(log_probs.detach().cpu().double().numpy(), ref_lp.detach().numpy(), **tol)
    if entropy:
        np.testing.assert_allclose(ent.detach().cpu().double().numpy(), ref_ent.detach().numpy(), **tol)
    for got, ref in ((xd, xr), (wd, wr), (bd, br)):
        if got is not None:
            np.testing.assert_allclose(got.grad.cpu().double().numpy(), ref.grad.numpy(), **tol)


@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_linear_log_probs_low_precision_inputs(dtype):
    x, w, b, t = lce_inputs(dtype, bias=True, seed=4)
    xd, wd, bd = (leaf(a, device=DEVICE) for a in (x, w, b))
    with on_device(), spy_log_probs() as spy:
        log_probs, ent = lk.linear_log_probs(xd, wd, dev(t), bd, return_entropy=True)
        (log_probs.sum() + ent.sum()).backward()
    assert spy.call_count == 2 and log_probs.dtype == dtype and xd.grad.dtype == dtype
    xr, wr, br = (leaf(a, dtype=torch.float64) for a in (x, w, b))
    logp = torch.log_softmax(F.linear(xr, wr, br), -1)
    valid = t != -100
    ref_lp = torch.where(valid, logp.gather(-1, t.clamp(min=0)[..., None])[..., 0], 0.0)
    ref_ent = torch.where(valid, -(logp.exp() * logp).sum(-1), 0.0)
    (ref_lp.sum() + ref_ent.sum()).backward()
    tol = {"rtol": 3e-2, "atol": 1e-2}
    np.testing.assert_allclose(log_probs.detach().cpu().double().numpy(), ref_lp.detach().numpy(), **tol)
    np.testing.assert_allclose(ent.detach().cpu().double().numpy(), ref_ent.detach().numpy(), **tol)
    np.testing.assert_allclose(wd.grad.cpu().double().numpy(), wr.grad.numpy(), **tol)
