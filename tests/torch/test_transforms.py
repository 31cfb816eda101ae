"""losskit's losses under PyTorch's transforms: ``torch.func.grad``, per-sample gradients with
``vmap(grad(...))`` and ``jacrev``, equal to PyTorch's own losses; meta tensors (deferred
initialisation) give meta results for every catalogued loss; a model with a losskit loss in its
forward exports with ``torch.export``; ``losskit.torch.linear_cross_entropy`` takes
``F.linear_cross_entropy``'s arguments and equals it, value and gradients, for each option.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch.func import grad, jacrev, vmap  # noqa: E402

import losskit as lk  # noqa: E402
import losskit.torch as lt  # noqa: E402
from tests.support.backends import BY_NAME  # noqa: E402
from tests.support.cases import ALL_CASES  # noqa: E402

N, C = 5, 4


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, C, dtype=torch.float64, generator=g)
    return {
        "logits": x,
        "classes": torch.randint(0, C, (N,), generator=g),
        "values": torch.randn(N, C, dtype=torch.float64, generator=g),
        "bits": torch.randint(0, 2, (N, C), generator=g).to(torch.float64),
        "log_probs": torch.log_softmax(torch.randn(N, C, dtype=torch.float64, generator=g), dim=-1),
        "probs": torch.softmax(torch.randn(N, C, dtype=torch.float64, generator=g), dim=-1),
    }


# (name, losskit loss, PyTorch's, the prediction's and the target's kind in _data)
PAIRS = [
    ("cross_entropy", lambda x, t: lk.cross_entropy(x, t), F.cross_entropy, "logits", "classes"),
    ("torch.cross_entropy", lambda x, t: lt.cross_entropy(x, t, label_smoothing=0.1),
     lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1), "logits", "classes"),
    ("CrossEntropyLoss", lambda x, t: lt.CrossEntropyLoss()(x, t), F.cross_entropy, "logits", "classes"),
    ("bce_with_logits", lambda x, t: lk.binary_cross_entropy_with_logits(x, t),
     F.binary_cross_entropy_with_logits, "logits", "bits"),
    ("mse", lambda x, t: lk.mse(x, t), F.mse_loss, "logits", "values"),
    ("huber", lambda x, t: lk.huber(x, t, 0.7),
     lambda x, t: F.huber_loss(x, t, delta=0.7), "logits", "values"),
    ("kl_div", lambda x, t: lk.kl_div(x, t, reduction="sum"),
     lambda x, t: F.kl_div(x, t, reduction="sum"), "log_probs", "probs"),
]  # fmt: skip


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p[0])
def test_func_grad_matches_pytorch(pair):
    _, ours, theirs, xk, tk = pair
    d = _data()
    x, t = d[xk], d[tk]
    torch.testing.assert_close(grad(ours)(x, t), grad(theirs)(x, t), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p[0])
def test_per_sample_gradients_with_vmap_of_grad(pair):
    _, ours, theirs, xk, tk = pair
    d = _data()
    x, t = d[xk], d[tk]

    def one(fn):
        return lambda xi, ti: fn(xi.unsqueeze(0), ti.unsqueeze(0))

    got = vmap(grad(one(ours)))(x, t)
    want = vmap(grad(one(theirs)))(x, t)
    assert got.shape == x.shape
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p[0])
def test_jacrev_matches_pytorch(pair):
    _, ours, theirs, xk, tk = pair
    d = _data()
    x, t = d[xk], d[tk]
    torch.testing.assert_close(jacrev(ours)(x, t), jacrev(theirs)(x, t), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_jacrev_of_per_token_cross_entropy(reduction):
    d = _data()
    x, t = d["logits"], d["classes"]
    want = jacrev(lambda a: F.cross_entropy(a, t, reduction=reduction))(x)
    for ours in (lk.cross_entropy, lt.cross_entropy):
        got = jacrev(lambda a, fn=ours: fn(a, t, reduction=reduction))(x)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_hessian_of_cross_entropy_through_the_portable_operations():
    d = _data()
    x, t = d["logits"], d["classes"]
    got = torch.func.hessian(lambda a: lk.cross_entropy(a, t))(x)
    torch.testing.assert_close(got, torch.func.hessian(lambda a: F.cross_entropy(a, t))(x))


def test_linear_cross_entropy_under_func_grad_and_vmap():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 3, dtype=torch.float64, generator=g)
    w = torch.randn(5, 3, dtype=torch.float64, generator=g)
    t = torch.randint(0, 5, (6,), generator=g)
    for reduction in ("mean", "sum"):
        chunked = lambda a, b, r=reduction: lt.linear_cross_entropy(a, b, t, reduction=r, chunk_size=4)  # noqa: E731
        ours = grad(chunked, (0, 1))
        theirs = grad(lambda a, b, r=reduction: F.cross_entropy(a @ b.T, t, reduction=r), (0, 1))
        ours, theirs = ours(x, w), theirs(x, w)
        for got, want in zip(ours, theirs):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    ours = grad(lambda a, b, ti: lt.linear_cross_entropy(a[None], b, ti[None]), 1)
    theirs = grad(lambda a, b, ti: F.cross_entropy(a[None] @ b.T, ti[None]), 1)
    per_sample = vmap(ours, (0, None, 0))(x, w, t)
    want = vmap(theirs, (0, None, 0))(x, w, t)
    torch.testing.assert_close(per_sample, want, rtol=1e-10, atol=1e-12)


# -- meta tensors ------------------------------------------------------------------------------

FIRST_CASE = {}
for _case in ALL_CASES:
    if "torch" in _case.backends:
        FIRST_CASE.setdefault(_case.fn.__name__, _case)


@pytest.mark.parametrize("name", sorted(FIRST_CASE))
def test_meta_tensors_give_meta_results(name):
    case = FIRST_CASE[name]
    args, kwargs = BY_NAME["torch"].args(*case.make_args(np.random.default_rng(0)))
    to_meta = lambda a: a.to("meta") if isinstance(a, torch.Tensor) else a  # noqa: E731
    meta_args = [to_meta(a) for a in args]
    meta_kwargs = {k: to_meta(v) for k, v in kwargs.items()}
    for reduction in case.reductions:
        eager = case.fn(*args, reduction=reduction, **kwargs)
        out = case.fn(*meta_args, reduction=reduction, **meta_kwargs)
        outs = out if isinstance(out, tuple) else (out,)
        eagers = eager if isinstance(eager, tuple) else (eager,)
        for o, e in zip(outs, eagers):
            assert o.device.type == "meta"
            assert o.shape == e.shape and o.dtype == e.dtype


def test_meta_tensors_through_the_torch_forms():
    x = torch.empty(4, 3, device="meta", requires_grad=True)
    t = torch.empty(4, dtype=torch.long, device="meta")
    for out in (lt.cross_entropy(x, t), lt.CrossEntropyLoss()(x, t), lk.cross_entropy(x, t)):
        assert out.device.type == "meta" and out.shape == ()
    w = torch.empty(7, 3, device="meta", requires_grad=True)
    out = lt.linear_cross_entropy(x, w, t, reduction="none")
    assert out.device.type == "meta" and out.shape == (4,)


# -- torch.export ------------------------------------------------------------------------------


class _Classifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(3, 4)
        self.loss = lt.CrossEntropyLoss(label_smoothing=0.05)

    def forward(self, x, t):
        logits = self.body(x)
        return self.loss(logits, t) + 0.1 * lk.huber(logits, torch.zeros_like(logits))


def test_a_model_with_a_losskit_loss_exports():
    torch.manual_seed(0)
    model = _Classifier().double()
    x = torch.randn(6, 3, dtype=torch.float64)
    t = torch.randint(0, 4, (6,))
    exported = torch.export.export(model, (x, t))
    torch.testing.assert_close(exported.module()(x, t), model(x, t))
    logits = model.body(x)
    want = F.cross_entropy(logits, t, label_smoothing=0.05)
    want = want + 0.1 * F.huber_loss(logits, torch.zeros_like(logits))
    torch.testing.assert_close(exported.module()(x, t), want)


# -- linear_cross_entropy with F.linear_cross_entropy's arguments -------------------------------


def _lce_data(probabilities=False):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(9, 4, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(6, 4, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, generator=g, requires_grad=True)
    if probabilities:
        t = torch.softmax(torch.randn(9, 6, dtype=torch.float64, generator=g), dim=-1)
    else:
        t = torch.randint(0, 6, (9,), generator=g)
        t[3] = -100
    cw = torch.rand(6, dtype=torch.float64, generator=g) + 0.5
    return x, w, b, t, cw


LCE_OPTIONS = [
    {},
    {"reduction": "sum"},
    {"reduction": "none"},
    {"label_smoothing": 0.2},
    {"ignore_index": 2},
    {"weight": True},
    {"weight": True, "label_smoothing": 0.1, "reduction": "sum"},
    {"weight": True, "reduction": "none"},
    {"probabilities": True},
    {"probabilities": True, "weight": True, "label_smoothing": 0.1},
    {"options": True},
]


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("opts", LCE_OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()) or "-")
def test_linear_cross_entropy_equals_pytorch(opts, with_bias):
    opts = dict(opts)
    x, w, b, t, cw = _lce_data(opts.pop("probabilities", False))
    if "ignore_index" in opts:
        t[3] = opts["ignore_index"]
    if opts.pop("weight", False):
        opts["weight"] = cw
    if opts.pop("options", False):
        opts["options"] = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=4)
    if with_bias:
        opts["linear_bias"] = b
    params = (x, w, b) if with_bias else (x, w)
    up = torch.linspace(0.5, 1.5, 9, dtype=torch.float64) if opts.get("reduction") == "none" else 1.0
    ours = lt.linear_cross_entropy(x, w, t, **opts)
    got = torch.autograd.grad((ours * up).sum(), params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's own notes on its chunked path
        theirs = F.linear_cross_entropy(x, w, t, **opts)
    want = torch.autograd.grad((theirs * up).sum(), params)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    for a, e in zip(got, want):
        torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-11)


def test_linear_cross_entropy_positional_arguments_follow_pytorch():
    x, w, b, t, cw = _lce_data()
    assert list(__import__("inspect").signature(lt.linear_cross_entropy).parameters)[:3] == [
        "input", "linear_weight", "target"
    ]  # fmt: skip
    torch.testing.assert_close(
        lt.linear_cross_entropy(input=x, linear_weight=w, target=t, linear_bias=b, weight=cw),
        F.linear_cross_entropy(x, w, t, linear_bias=b, weight=cw),
    )


def test_the_former_meaning_of_weight_is_refused_not_misread():
    x, w, b, t, _ = _lce_data()
    # a caller of the former API passing the output layer's (V, D) weight as weight=
    with pytest.raises(ValueError, match="linear_weight"):
        lt.linear_cross_entropy(x, w, t, weight=w)
    with pytest.raises(TypeError):
        lt.linear_cross_entropy(x, w, t, b)  # the bias is keyword-only, as in PyTorch
    with pytest.warns(DeprecationWarning, match="linear_bias"):
        old = lt.linear_cross_entropy(x, w, t, bias=b)
    torch.testing.assert_close(old, F.linear_cross_entropy(x, w, t, linear_bias=b))


def test_probability_targets_refuse_ignore_index():
    x, w, _, t, _ = _lce_data(probabilities=True)
    with pytest.raises(ValueError, match="ignore_index"):
        lt.linear_cross_entropy(x, w, t, ignore_index=-100)


def test_the_module_takes_the_new_names():
    torch.manual_seed(0)
    module = lt.LinearCrossEntropyLoss(4, 6, bias=True).double()
    x, _, _, t, _ = _lce_data()
    want = F.linear_cross_entropy(x, module.linear.weight, t, linear_bias=module.linear.bias)
    torch.testing.assert_close(module(x, t), want)
