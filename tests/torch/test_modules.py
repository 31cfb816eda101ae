"""losskit.torch's modules: an nn.Module for every catalogued loss, named like PyTorch's and
matching its function, options checked and tensors kept as buffers, modules for losses
catalogued later; the linear cross-entropy head trains."""

from __future__ import annotations

import inspect
import pickle

import pytest
import torch
import torch.nn.functional as F

import losskit as lk
import losskit.torch as lt
from losskit.core.catalog import _CATALOG, catalogued
from losskit.core.gradients import loss_function
from tests.support.backends import BY_NAME
from tests.support.cases import ALL_CASES


@pytest.fixture(autouse=True)
def _no_numba(monkeypatch):
    monkeypatch.setenv("LOSSKIT_DISABLE_NUMBA", "1")


def test_linear_cross_entropy_module_trains():
    torch.manual_seed(0)
    head = lt.LinearCrossEntropyLoss(8, 16, bias=True, label_smoothing=0.05)
    x = torch.randn(64, 8)
    t = (x[:, 0] > 0).long() * 3 + (x[:, 1] > 0).long()
    opt = torch.optim.SGD(head.parameters(), lr=0.5)
    first = None
    for _ in range(30):
        opt.zero_grad()
        loss = head(x, t)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.6 * first
    assert head.logits(x).shape == (64, 16)
    with pytest.raises(ValueError, match=r"class weights of shape \(16,\).*module.linear.weight ="):
        lt.LinearCrossEntropyLoss(8, 16, weight=torch.zeros(16, 8))
    with pytest.raises(ValueError, match=r"as in torch.nn.LinearCrossEntropyLoss; got shape \(3,\)"):
        lt.LinearCrossEntropyLoss(8, 16, weight=torch.zeros(3))


def test_linear_cross_entropy_module_ties_its_weight_as_torch_does():
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(16, 8)
    head = lt.LinearCrossEntropyLoss(8, 16)
    head.linear.weight = embedding.weight
    x, t = torch.randn(5, 8), torch.randint(0, 16, (5,))
    head(x, t).backward()
    want = torch.nn.functional.cross_entropy(x @ embedding.weight.detach().T, t)
    torch.testing.assert_close(head(x, t), want)
    assert embedding.weight.grad is not None and embedding.weight.grad.abs().sum() > 0


def test_module_names_follow_pytorch():
    for name in ["CrossEntropyLoss", "MSELoss", "HuberLoss", "L1Loss", "SmoothL1Loss", "NLLLoss", "KLDivLoss",
                 "BCELoss", "BCEWithLogitsLoss", "LinearCrossEntropyLoss"]:  # fmt: skip
        assert issubclass(getattr(lt, name), torch.nn.Module), name
    assert set(lt.modules_by_loss()) == {info.name for info in lk.catalog()}
    assert lt.modules_by_loss()["cross_entropy"] is lt.CrossEntropyLoss


TORCH_CASES = [c for c in ALL_CASES if "torch" in c.backends and lt.modules_by_loss().get(c.fn.__name__)]


def module_call(cls, case, args, kwargs):
    """Split a case's call of its function into the module's: options (and a positional option
    such as BCE's ``weight``) to the constructor, arrays and per-call ``where`` to ``forward``;
    classes on the last axis (``axis=-1``), as the cases have them.  Returns (options, forward
    args, forward keywords)."""
    init = inspect.signature(cls.__init__).parameters
    options = {k: v for k, v in kwargs.items() if k in init}
    per_call = {k: v for k, v in kwargs.items() if k not in init}
    fn_names = list(inspect.signature(case.fn).parameters)
    forward_params = list(inspect.signature(cls.forward).parameters.values())[1:]
    n_forward = sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in forward_params)
    if any(p.kind is p.VAR_POSITIONAL for p in forward_params):
        n_forward = len(args)
    for i in range(n_forward, len(args)):
        options[fn_names[i]] = args[i]
    if cls.class_dim:
        options.setdefault("axis", -1)
    return options, list(args[:n_forward]), per_call


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: c.id)
def test_every_catalogued_loss_module_matches_its_function(case, rng):
    cls = lt.modules_by_loss()[case.fn.__name__]
    if cls is lt.LinearCrossEntropyLoss:
        pytest.skip("owns its parameters; tested above")
    args, kwargs = BY_NAME["torch"].args(*case.make_args(rng))
    args = [a.clone().requires_grad_() if i == 0 else a for i, a in enumerate(args)]
    options, forward_args, per_call = module_call(cls, case, args, kwargs)
    for reduction in case.reductions:
        module = cls(reduction=reduction, **options)
        got = module(*forward_args, **per_call)
        want = case.fn(*args, reduction=reduction, **kwargs)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
        got.sum().backward()
        assert args[0].grad is not None and torch.isfinite(args[0].grad).all()
        args[0].grad = None


def test_module_options_are_checked_and_tensors_are_buffers():
    with pytest.raises(TypeError, match="delta"):
        lt.MSELoss(delta=1.0)
    with pytest.raises(TypeError, match="unknown option"):
        lt.LossModule.__init__(lt.MSELoss.__new__(lt.MSELoss), delta=1.0)
    m = lt.CrossEntropyLoss(weight=torch.ones(3, dtype=torch.float64))
    assert "weight" in dict(m.named_buffers())
    m = m.to(torch.float32)
    assert m.weight.dtype == torch.float32
    x = torch.randn(2, 3, requires_grad=True)
    assert m(x, torch.tensor([0, 2])).item() == pytest.approx(F.cross_entropy(x, torch.tensor([0, 2])).item())
    assert m(x, torch.tensor([0, 2]), reduction="sum").item() == pytest.approx(
        F.cross_entropy(x, torch.tensor([0, 2]), reduction="sum").item()
    )


def test_a_loss_catalogued_later_gets_a_module():
    @catalogued(family="penalty", input_space="parameters", formula="sum x^2")
    @loss_function
    def squared_norm_for_test(input, *, reduction="sum", wrt=frozenset()):
        """Test-only loss: the sum of squares of the input, with gradient 2x (shape of input)."""
        return (input * input).sum(), {0: 2 * input}

    try:
        cls = lt.modules_by_loss()["squared_norm_for_test"]
        assert cls.__name__ == "SquaredNormForTestLoss" and cls.loss is squared_norm_for_test
        x = torch.tensor([1.0, 2.0])
        assert cls()(x).item() == 5.0
        # a class built at run time pickles in the process that built it
        assert pickle.loads(pickle.dumps(cls(reduction="sum")))(x).item() == 5.0
        # the generated classes are attributes of losskit.torch; a run-time one is not
        assert not hasattr(lt, "SquaredNormForTestLoss")
    finally:
        _CATALOG.pop("squared_norm_for_test", None)
        built = lt.modules._BUILT.pop("squared_norm_for_test", None)
        if built is not None:
            vars(lt.modules).pop(built.__name__, None)
