"""losskit.torch's modules named as torch.nn's losses are drop-in replacements: built the ways
PyTorch's documentation builds them (positional and keyword arguments, the deprecated
size_average/reduce), on PyTorch's layouts ((N, C), (N, C, L) with C == L, (N, C, H, W),
unbatched (C,)), they give torch.nn's value and gradient in float64, for every reduction."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import losskit.torch as lkt

RTOL, ATOL = 1e-10, 1e-12
REDUCTIONS = ("none", "mean", "sum")


@pytest.fixture(autouse=True)
def _no_numba(monkeypatch):
    monkeypatch.setenv("LOSSKIT_DISABLE_NUMBA", "1")


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=_g(seed), dtype=torch.float64)


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=_g(seed), dtype=torch.float64)


def randint(high: int, *shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, high, shape, generator=_g(seed))


def sign(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.where(rand(*shape, seed=seed) > 0.5, 1.0, -1.0).to(torch.float64)


@dataclass
class Layout:
    """One call: the forward arguments (float tensors get gradients) and an id."""

    id: str
    make: Callable[[], tuple[Any, ...]]


@dataclass
class Mirror:
    name: str  # the class name in torch.nn and losskit.torch
    layouts: list[Layout]
    # constructor calls as PyTorch's documentation shows them: (id, args, kwargs)
    constructions: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(
        default_factory=lambda: [("", (), {})]
    )
    reductions: tuple[str, ...] = REDUCTIONS
    # the arguments differentiated (the inputs a model produces; targets are data)
    grads: tuple[int, ...] = (0,)
    # applied to the first argument inside the graph (the gradient is taken before it)
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None


def _probs(*shape: int, dim: int, seed: int) -> torch.Tensor:
    return torch.softmax(randn(*shape, seed=seed), dim=dim)


def _ctc_batch():
    T, N, C, S = 12, 3, 6, 4
    log_probs = randn(T, N, C, seed=1)  # logits: the test takes log_softmax in the graph
    targets = 1 + randint(C - 1, N, S, seed=2)
    return log_probs, targets, torch.tensor([12, 11, 9]), torch.tensor([4, 3, 2])


def _ctc_concatenated():
    log_probs, targets, input_lengths, target_lengths = _ctc_batch()
    flat = torch.cat([targets[i, : int(n)] for i, n in enumerate(target_lengths)])
    return log_probs, flat, input_lengths, target_lengths


W5 = rand(5, seed=9) + 0.5  # per-class weights for C = 5
W4 = rand(4, seed=9) + 0.5

CLASS_LAYOUTS = [
    Layout("N,C", lambda: (randn(6, 5, seed=1), randint(5, 6, seed=2))),
    Layout("N,C,L=C", lambda: (randn(4, 5, 5, seed=1), randint(5, 4, 5, seed=2))),
    Layout("N,C,H,W", lambda: (randn(2, 5, 3, 4, seed=1), randint(5, 2, 3, 4, seed=2))),
    Layout("C", lambda: (randn(5, seed=1), torch.tensor(3))),
]

MIRRORS = [
    Mirror(
        "CrossEntropyLoss",
        [
            *CLASS_LAYOUTS,
            Layout("probs N,C", lambda: (randn(6, 5, seed=1), _probs(6, 5, dim=1, seed=3))),
            Layout("probs N,C,L=C", lambda: (randn(4, 5, 5, seed=1), _probs(4, 5, 5, dim=1, seed=3))),
            Layout("probs N,C,H,W", lambda: (randn(2, 5, 3, 4, seed=1), _probs(2, 5, 3, 4, dim=1, seed=3))),
            Layout("probs C", lambda: (randn(5, seed=1), _probs(5, dim=0, seed=3))),
            Layout(
                "ignored N,C,L=C",
                lambda: (
                    randn(4, 5, 5, seed=1),
                    randint(5, 4, 5, seed=2).masked_fill(rand(4, 5) > 0.7, -100),
                ),
            ),
        ],
        [
            ("", (), {}),
            ("weight positional", (W5,), {}),
            (
                "weight, ignore_index, smoothing",
                (),
                {"weight": W5, "ignore_index": 2, "label_smoothing": 0.1},
            ),
            ("smoothing", (), {"label_smoothing": 0.2}),
        ],
        grads=(0, 1),  # class probabilities are differentiated too, as in torch
    ),
    Mirror(
        "NLLLoss",
        [
            Layout("N,C", lambda: (randn(6, 5, seed=1).log_softmax(1), randint(5, 6, seed=2))),
            Layout("N,C,L=C", lambda: (randn(4, 5, 5, seed=1).log_softmax(1), randint(5, 4, 5, seed=2))),
            Layout(
                "N,C,H,W", lambda: (randn(2, 5, 3, 4, seed=1).log_softmax(1), randint(5, 2, 3, 4, seed=2))
            ),
            Layout("C", lambda: (randn(5, seed=1).log_softmax(0), torch.tensor(3))),
        ],
        [
            ("", (), {}),
            ("weight positional", (W5,), {}),
            ("weight, ignore_index", (), {"weight": W5, "ignore_index": 1}),
        ],
    ),
    Mirror(
        "BCELoss",
        [
            Layout("N", lambda: (torch.sigmoid(randn(3, seed=1)), rand(3, seed=2))),
            Layout("N,C,H,W", lambda: (torch.sigmoid(randn(2, 4, 3, 3, seed=1)), rand(2, 4, 3, 3, seed=2))),
        ],
        [("", (), {}), ("weight positional", (rand(3, seed=7) + 0.5,), {})],
    ),
    Mirror(
        "BCEWithLogitsLoss",
        [
            Layout("N,C", lambda: (randn(10, 4, seed=1), rand(10, 4, seed=2))),
            Layout("N,C,H,W", lambda: (randn(2, 3, 3, 4, seed=1), rand(2, 3, 3, 4, seed=2))),
        ],
        [
            ("", (), {}),
            ("weight positional", (rand(4, seed=6) + 0.5,), {}),
            ("pos_weight", (), {"pos_weight": rand(4, seed=5) + 0.5}),
        ],
    ),
    Mirror(
        "MSELoss",
        [
            Layout("N,D", lambda: (randn(3, 5, seed=1), randn(3, 5, seed=2))),
            Layout("N,C,H,W", lambda: (randn(2, 3, 4, 4, seed=1), randn(2, 3, 4, 4, seed=2))),
        ],
    ),
    Mirror(
        "L1Loss",
        [
            Layout("N,D", lambda: (randn(3, 5, seed=1), randn(3, 5, seed=2))),
            Layout("N,C,H,W", lambda: (randn(2, 3, 4, 4, seed=1), randn(2, 3, 4, 4, seed=2))),
        ],
    ),
    Mirror(
        "HuberLoss",
        [
            Layout("N,D", lambda: (randn(3, 5, seed=1), randn(3, 5, seed=2))),
            Layout("N,C,H,W", lambda: (randn(2, 3, 4, 4, seed=1), randn(2, 3, 4, 4, seed=2))),
        ],
        [("", (), {}), ("reduction, delta positional", ("mean", 0.5), {}), ("delta", (), {"delta": 2.0})],
    ),
    Mirror(
        "SmoothL1Loss",
        [
            Layout("N,D", lambda: (randn(3, 5, seed=1), randn(3, 5, seed=2))),
            Layout("N,C,H,W", lambda: (randn(2, 3, 4, 4, seed=1), randn(2, 3, 4, 4, seed=2))),
        ],
        [("", (), {}), ("beta", (), {"beta": 0.5})],
    ),
    Mirror(
        "KLDivLoss",
        [
            Layout("N,C", lambda: (randn(3, 5, seed=1).log_softmax(1), _probs(3, 5, dim=1, seed=2))),
            Layout(
                "N,C,H,W",
                lambda: (randn(2, 5, 3, 3, seed=1).log_softmax(1), _probs(2, 5, 3, 3, dim=1, seed=2)),
            ),
        ],
        [("", (), {}), ("batchmean", (), {"reduction": "batchmean"})],
        reductions=("none", "mean", "sum", "batchmean"),
    ),
    Mirror(
        "PoissonNLLLoss",
        [
            # positive inputs: rates when log_input=False, log-rates otherwise
            Layout("N,D", lambda: (rand(5, 2, seed=1) * 2 + 0.1, torch.poisson(rand(5, 2, seed=2) * 3))),
            Layout(
                "N,C,H,W",
                lambda: (rand(2, 3, 2, 2, seed=1) * 2 + 0.1, torch.poisson(rand(2, 3, 2, 2, seed=2) * 3)),
            ),
        ],
        [("", (), {}), ("log_input=False, full positional", (False, True), {}), ("full", (), {"full": True})],
    ),
    Mirror(
        "GaussianNLLLoss",
        [
            Layout(
                "heteroscedastic",
                lambda: (randn(5, 2, seed=1), randn(5, 2, seed=2), rand(5, 2, seed=3) + 0.1),
            ),
            Layout(
                "homoscedastic", lambda: (randn(5, 2, seed=1), randn(5, 2, seed=2), rand(5, 1, seed=3) + 0.1)
            ),
            Layout("N var", lambda: (randn(5, 2, seed=1), randn(5, 2, seed=2), rand(5, seed=3) + 0.1)),
        ],
        [("", (), {}), ("full, eps", (), {"full": True, "eps": 1e-3})],
        grads=(0, 2),
    ),
    Mirror(
        "HingeEmbeddingLoss",
        [Layout("N,D", lambda: (randn(4, 3, seed=1), sign(4, 3, seed=2)))],
        [("", (), {}), ("margin positional", (0.5,), {})],
    ),
    Mirror(
        "SoftMarginLoss",
        [
            Layout("N", lambda: (randn(6, seed=1), sign(6, seed=2))),
            Layout("N,C,H,W", lambda: (randn(2, 3, 2, 2, seed=1), sign(2, 3, 2, 2, seed=2))),
        ],
    ),
    Mirror(
        "MarginRankingLoss",
        [Layout("N", lambda: (randn(3, seed=1), randn(3, seed=2), sign(3, seed=3)))],
        [("", (), {}), ("margin positional", (0.5,), {})],
        grads=(0, 1),
    ),
    Mirror(
        "CosineEmbeddingLoss",
        [
            Layout("N,D", lambda: (randn(4, 3, seed=1), randn(4, 3, seed=2), sign(4, seed=3))),
            Layout(
                "D", lambda: (randn(3, seed=1), randn(3, seed=2), torch.tensor(-1.0, dtype=torch.float64))
            ),
        ],
        [("", (), {}), ("margin positional", (0.2,), {})],
        grads=(0, 1),
    ),
    Mirror(
        "MultiMarginLoss",
        [
            Layout("N,C", lambda: (randn(6, 4, seed=1), randint(4, 6, seed=2))),
            Layout("C", lambda: (randn(4, seed=1), torch.tensor(2))),
        ],
        [("", (), {}), ("p, margin, weight positional", (2, 0.5, W4), {}), ("margin", (), {"margin": 2.0})],
    ),
    Mirror(
        "MultiLabelMarginLoss",
        [
            Layout("N,C", lambda: (randn(1, 4, seed=1), torch.tensor([[3, 0, -1, 1]]))),
            Layout(
                "N,C mixed",
                lambda: (randn(3, 4, seed=1), torch.tensor([[3, 0, -1, 1], [1, -1, 0, 0], [0, 1, 2, 3]])),
            ),
            Layout("C", lambda: (randn(4, seed=1), torch.tensor([2, 1, -1, 0]))),
        ],
    ),
    Mirror(
        "MultiLabelSoftMarginLoss",
        [
            Layout("N,C", lambda: (randn(5, 4, seed=1), (rand(5, 4, seed=2) > 0.5).to(torch.float64))),
            Layout("C", lambda: (randn(4, seed=1), (rand(4, seed=2) > 0.5).to(torch.float64))),
        ],
        [("", (), {}), ("weight positional", (W4,), {})],
    ),
    Mirror(
        "TripletMarginLoss",
        [
            Layout("N,D", lambda: (randn(8, 6, seed=1), randn(8, 6, seed=2), randn(8, 6, seed=3))),
            Layout("D", lambda: (randn(6, seed=1), randn(6, seed=2), randn(6, seed=3))),
        ],
        [
            ("", (), {}),
            ("documented", (), {"margin": 1.0, "p": 2, "eps": 1e-7}),
            ("margin, p positional", (0.5, 1.0), {}),
            ("swap", (), {"swap": True}),
        ],
        grads=(0, 1, 2),
    ),
    Mirror(
        "TripletMarginWithDistanceLoss",
        [Layout("N,D", lambda: (randn(8, 6, seed=1), randn(8, 6, seed=2), randn(8, 6, seed=3)))],
        [
            ("", (), {}),
            ("PairwiseDistance", (), {"distance_function": nn.PairwiseDistance()}),
            (
                "cosine, margin",
                (),
                {"distance_function": lambda x, y: 1.0 - F.cosine_similarity(x, y), "margin": 0.5},
            ),
            ("swap", (), {"swap": True, "margin": 2.0}),
        ],
        grads=(0, 1, 2),
    ),
    Mirror(
        "CTCLoss",
        [Layout("padded", _ctc_batch), Layout("concatenated", _ctc_concatenated)],
        [
            ("", (), {}),
            ("blank, reduction positional", (0, "sum"), {}),
            ("zero_infinity", (), {"zero_infinity": True}),
        ],
        # torch's ctc_loss backward returns the gradient for logits followed by log_softmax (not
        # the partial derivative in log_probs), so both are compared through a log_softmax
        transform=lambda logits: logits.log_softmax(-1),
    ),
]


def test_every_mirrored_torch_nn_loss_is_covered():
    """The mirrored list here is every losskit.torch module that has a torch.nn namesake; the
    chunked linear head, whose constructor owns parameters, is compared by
    test_linear_cross_entropy_loss_is_torchs below."""
    mirrored = {
        name for name in lkt.__all__ if name.endswith("Loss") and isinstance(getattr(nn, name, None), type)
    }
    assert mirrored == {m.name for m in MIRRORS} | {"LinearCrossEntropyLoss"}
    assert len(MIRRORS) == 21


def test_linear_cross_entropy_loss_has_torchs_constructor():
    """torch.nn.LinearCrossEntropyLoss's parameters, in order, with its defaults; losskit's
    options follow, keyword only."""
    ours = list(inspect.signature(lkt.LinearCrossEntropyLoss.__init__).parameters.values())
    theirs = list(inspect.signature(nn.LinearCrossEntropyLoss.__init__).parameters.values())
    assert [(p.name, p.kind, p.default) for p in ours[: len(theirs)]] == [
        (p.name, p.kind, p.default) for p in theirs
    ]
    assert all(p.kind is p.KEYWORD_ONLY for p in ours[len(theirs) :])


LINEAR_CE_BUILDS = [
    ("positional", {}),
    ("bias", {"bias": True}),
    ("class weight", {"weight": rand(7, seed=5) + 0.5, "bias": True}),
    ("ignore_index", {"ignore_index": 2}),
    ("label_smoothing", {"label_smoothing": 0.2, "bias": True}),
    (
        "weight, ignore_index, smoothing",
        {"weight": rand(7, seed=6) + 0.1, "ignore_index": 0, "label_smoothing": 0.1},
    ),
    ("out_features", {"out_features": (3, 2), "bias": True}),
    ("out_features, weight", {"out_features": (4,), "weight": rand(7, seed=7) + 0.5, "ignore_index": 1}),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("probabilities", [False, True], ids=["indices", "probabilities"])
@pytest.mark.parametrize("kwargs", [k for _, k in LINEAR_CE_BUILDS], ids=[n for n, _ in LINEAR_CE_BUILDS])
def test_linear_cross_entropy_loss_is_torchs(kwargs, probabilities, reduction):
    """Built as torch.nn.LinearCrossEntropyLoss's documentation builds it, with torch's module's
    parameters loaded: the same state_dict keys, value and gradients (input, linear.weight,
    linear.bias) in float64."""
    if probabilities and "ignore_index" in kwargs:
        pytest.skip("ignore_index applies to class indices only")
    in_features, num_classes, n = 5, 7, 6
    torch.manual_seed(0)
    nn_mod = nn.LinearCrossEntropyLoss(in_features, num_classes, dtype=torch.float64, reduction=reduction,
                                       **kwargs)  # fmt: skip
    lk_mod = lkt.LinearCrossEntropyLoss(in_features, num_classes, dtype=torch.float64, reduction=reduction,
                                        **kwargs)  # fmt: skip
    assert list(lk_mod.state_dict()) == list(nn_mod.state_dict())
    lk_mod.load_state_dict(nn_mod.state_dict())
    extra = tuple(kwargs.get("out_features", ()))
    if probabilities:
        target = randn(n, num_classes, *extra, seed=2).softmax(1)
    else:
        target = torch.randint(0, num_classes, (n, *extra), generator=_g(3))
        if "ignore_index" in kwargs:
            target.view(-1)[::3] = kwargs["ignore_index"]
    results = []
    for module in (nn_mod, lk_mod):
        x = randn(n, in_features, seed=1).requires_grad_()
        value = module(x, target)
        (value * randn(*value.shape, seed=4)).sum().backward()
        grads = [x.grad] + [p.grad for p in module.linear.parameters()]
        results.append((value.detach(), grads))
    (want, want_grads), (got, got_grads) = results
    torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL)
    assert len(got_grads) == len(want_grads) == 2 + ("bias" in kwargs)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, rtol=RTOL, atol=ATOL)


def _construct(cls, args, kwargs, reduction):
    """The module with ``reduction`` put where PyTorch's signature has it (positionally if the
    construction passes arguments past it)."""
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    pos = params.index("reduction")
    if len(args) > pos:
        args = (*args[:pos], reduction, *args[pos + 1 :])
        return cls(*args, **kwargs)
    return cls(*args, **{**kwargs, "reduction": reduction})


CALLS = [
    pytest.param(m, layout, c, id=f"{m.name}-{layout.id}-{c[0] or 'default'}")
    for m in MIRRORS
    for layout in m.layouts
    for c in m.constructions
]


@pytest.mark.parametrize(("mirror", "layout", "construction"), CALLS)
def test_value_and_gradient_equal_torch_nn(mirror, layout, construction):
    _, args, kwargs = construction
    for reduction in mirror.reductions:
        if "reduction" in kwargs and kwargs["reduction"] != reduction:
            continue
        inputs = layout.make()
        grads = [i for i in mirror.grads if inputs[i].is_floating_point()]
        got_in = [a.clone().requires_grad_() if i in grads else a for i, a in enumerate(inputs)]
        want_in = [a.clone().requires_grad_() if i in grads else a for i, a in enumerate(inputs)]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "reduction: 'mean' divides the total loss")
            ours = _construct(getattr(lkt, mirror.name), args, kwargs, reduction)
            theirs = _construct(getattr(nn, mirror.name), args, kwargs, reduction)
            got_args, want_args = list(got_in), list(want_in)
            if mirror.transform is not None:
                got_args[0], want_args[0] = mirror.transform(got_in[0]), mirror.transform(want_in[0])
            try:
                want = theirs(*want_args)
            except RuntimeError as error:
                if "ignore_index is not supported for floating point target" not in str(error):
                    raise
                # torch refuses ignore_index with class probabilities; losskit ignores it there
                # (no index can be ignored), so the loss is the one without it
                got = ours(*got_args)
                plain = _construct(
                    getattr(lkt, mirror.name), args, {**kwargs, "ignore_index": -100}, reduction
                )
                torch.testing.assert_close(got, plain(*got_args), rtol=0, atol=0)
                continue
            except IndexError as error:  # a class index out of range: refused here too
                assert "out of bounds" in str(error)
                with pytest.raises(ValueError, match="outside"):
                    ours(*got_args)
                continue
            got = ours(*got_args)
        assert got.shape == want.shape, (reduction, got.shape, want.shape)
        torch.testing.assert_close(
            got, want, rtol=RTOL, atol=ATOL, msg=lambda m, r=reduction: f"{r}: value: {m}"
        )
        upstream = randn(*want.shape, seed=11)
        (got * upstream).sum().backward()
        (want * upstream).sum().backward()
        for i in grads:
            torch.testing.assert_close(
                got_in[i].grad,
                want_in[i].grad,
                rtol=RTOL,
                atol=ATOL,
                msg=lambda m, r=reduction, i=i: f"{r}: grad {i}: {m}",
            )


def test_class_dimension_equal_to_the_last_is_pytorchs():
    """(N, C, L) with C == L: the class dimension is 1, as in torch.nn (the number that once
    silently differed)."""
    x, t = randn(4, 5, 5, seed=3), randint(5, 4, 5, seed=4)
    got = lkt.CrossEntropyLoss()(x, t)
    torch.testing.assert_close(got, nn.CrossEntropyLoss()(x, t), rtol=RTOL, atol=ATOL)
    assert not torch.allclose(got, lkt.CrossEntropyLoss(axis=-1)(x, t))  # classes last: another loss
    # axis=-1 keeps losskit's layout, classes last
    torch.testing.assert_close(lkt.CrossEntropyLoss(axis=-1)(x.transpose(1, 2), t), got, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    ("size_average", "reduce", "expected"),
    [
        (False, None, "sum"),
        (None, False, "none"),
        (True, True, "mean"),
        (False, True, "sum"),
        (True, False, "none"),
    ],
)
def test_deprecated_size_average_and_reduce_as_in_pytorch(size_average, reduce, expected):
    x, y = randn(3, 4, seed=1), randn(3, 4, seed=2)
    with pytest.warns(UserWarning, match=f"please use reduction='{expected}'"):
        ours = lkt.MSELoss(size_average, reduce)
    with pytest.warns(UserWarning, match=f"please use reduction='{expected}'"):
        theirs = nn.MSELoss(size_average, reduce)
    assert ours.reduction == theirs.reduction == expected
    torch.testing.assert_close(ours(x, y), theirs(x, y), rtol=RTOL, atol=ATOL)
    with pytest.warns(UserWarning, match="please use reduction='sum'"):
        ce = lkt.CrossEntropyLoss(None, False, -100, True, "none")  # reduction ignored, as in torch
    assert ce.reduction == "sum"


def test_kl_div_mean_warns_as_pytorch_does():
    x, y = randn(3, 5, seed=1).log_softmax(1), _probs(3, 5, dim=1, seed=2)
    with pytest.warns(UserWarning, match="'mean' divides the total loss by both"):
        lkt.KLDivLoss()(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lkt.KLDivLoss(reduction="batchmean")(x, y)


def test_options_are_attributes_as_in_pytorch():
    ours, theirs = lkt.CrossEntropyLoss(W5, ignore_index=3), nn.CrossEntropyLoss(W5, ignore_index=3)
    for name in ("ignore_index", "reduction", "label_smoothing"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert torch.equal(ours.weight, theirs.weight)
    assert set(dict(ours.named_buffers())) == set(dict(theirs.named_buffers())) == {"weight"}
    ours.reduction = theirs.reduction = "sum"  # changed after construction, as torch allows
    x, t = randn(6, 5, seed=1), randint(5, 6, seed=2)
    torch.testing.assert_close(ours(x, t), theirs(x, t), rtol=RTOL, atol=ATOL)
    assert "weight" not in dict(lkt.CrossEntropyLoss().state_dict())  # a None buffer, as in torch


def test_signatures_match_torch_nn():
    """Each mirrored module's constructor starts with torch.nn's parameters, in order, of the
    same kinds and defaults; the rest are keyword-only."""
    for m in MIRRORS:
        theirs = list(inspect.signature(getattr(nn, m.name).__init__).parameters.values())
        ours = list(inspect.signature(getattr(lkt, m.name).__init__).parameters.values())
        assert [(p.name, p.kind, p.default) for p in ours[: len(theirs)]] == [
            (p.name, p.kind, p.default) for p in theirs
        ], m.name
        assert all(p.kind is p.KEYWORD_ONLY for p in ours[len(theirs) :]), m.name


@pytest.mark.parametrize("loss", ["cross_entropy", "nll", "multi_margin", "softmax_focal", "dice"])
def test_class_axis_mismatch_suggests_the_axis(loss):
    """PyTorch's (N, C, L) logits given to a function with classes last: the error names the
    axis that fits (here 1), for NumPy arrays as for tensors."""
    import numpy as np

    import losskit as lk

    fn = getattr(lk, loss)
    x = np.random.default_rng(0).random((4, 5, 6))
    t = np.zeros((4, 6), dtype=np.int64)
    with pytest.raises(ValueError, match=r"got \(4, 6\).*did you mean axis=1\?"):
        fn(x, t)
    with pytest.raises(ValueError, match=r"did you mean axis=1\?"):
        fn(torch.from_numpy(x), torch.from_numpy(t))
    fn(x, t, axis=1)  # the suggestion works
    # no axis fits: no suggestion
    with pytest.raises(ValueError) as info:
        fn(x, np.zeros((4, 7), dtype=np.int64))
    assert "did you mean" not in str(info.value)
