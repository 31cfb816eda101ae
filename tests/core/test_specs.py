"""The validated options of cross-entropy and linear cross-entropy: one definition, checked
once, with the same messages whichever implementation runs."""

from __future__ import annotations

import dataclasses
import inspect

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import losskit as lk
import losskit.torch as lt
from losskit.core.backend import namespace
from losskit.core.specs import (
    CrossEntropyArrays,
    CrossEntropyOptions,
    CrossEntropySpec,
    LinearCrossEntropyOptions,
    auto_chunk_size,
)
from losskit.kernels import fused_cross_entropy
from losskit.torch.distributed import vocab_parallel_linear_cross_entropy


@pytest.mark.parametrize(
    "options, loss",
    [(CrossEntropyOptions, lk.cross_entropy), (LinearCrossEntropyOptions, lk.linear_cross_entropy)],
)
def test_options_follow_the_public_signature(options, loss):
    # the losses build their options positionally from their own parameters
    fields = [f.name for f in dataclasses.fields(options)]
    parameters = inspect.signature(loss).parameters
    assert [p for p in parameters if p in fields] == fields
    assert {f.name: f.default for f in dataclasses.fields(options)} == {
        name: parameters[name].default for name in fields
    }


@pytest.mark.parametrize(
    "bad, error, message",
    [
        ({"label_smoothing": 1.5}, ValueError, r"label_smoothing must be in \[0, 1\]"),
        ({"ignore_index": 1.0}, TypeError, "ignore_index must be an int"),
        ({"axis": "1"}, TypeError, "axis must be an int"),
        ({"temperature": 0.0}, ValueError, "temperature must be in"),
        ({"z_loss": -1.0}, ValueError, "z_loss must be in"),
        ({"reduction": "avg"}, ValueError, "reduction must be one of"),
    ],
)
def test_every_cross_entropy_implementation_checks_alike(rng, bad, error, message):
    x, t = rng.standard_normal((4, 3)), rng.integers(0, 3, 4)
    calls = [
        lambda: lk.cross_entropy(x, t, **bad),
        lambda: lk.value_and_grad(lk.cross_entropy)(x, t, **bad),  # the NumPy kernel's path
        lambda: fused_cross_entropy(x, t, **bad),
        lambda: lt.cross_entropy(torch.tensor(x, requires_grad=True), torch.tensor(t), **bad),
        lambda: lk.cross_entropy(torch.tensor(x, requires_grad=True), torch.tensor(t), **bad),
        lambda: lk.cross_entropy(jnp.asarray(x), jnp.asarray(t), **bad),
    ]
    for call in calls:
        with pytest.raises(error, match=message):
            call()


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"chunk_size": 0}, "chunk_size must be a positive int or 'auto'"),
        ({"softcap": -1.0}, "softcap must be in"),
        ({"label_smoothing": -0.1}, "label_smoothing must be in"),
    ],
)
def test_every_linear_cross_entropy_implementation_checks_alike(rng, bad, message):
    x, w, t = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.integers(0, 3, 5)
    tensors = [torch.tensor(a) for a in (x, w, t)]
    calls = [
        lambda: lk.linear_cross_entropy(x, w, t, **bad),
        lambda: lt.linear_cross_entropy(*tensors, **bad),
        lambda: lt.LinearCrossEntropyLoss(4, 3, **bad),
        lambda: lk.linear_cross_entropy(*(jnp.asarray(a) for a in (x, w, t)), **bad),
        lambda: vocab_parallel_linear_cross_entropy(*tensors, **bad),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=message):
            call()


def test_unknown_options_name_the_caller_and_its_options(rng):
    x, t = torch.zeros(2, 3), torch.zeros(2, dtype=torch.long)
    with pytest.raises(TypeError, match=r"losskit.torch.cross_entropy got unknown option\(s\) 'smoothing'"):
        lt.cross_entropy(x, t, smoothing=0.1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'dim'"):
        lt.LinearCrossEntropyLoss(4, 3, dim=1)


def test_adapters_show_the_options_in_their_signatures():
    for function in (lt.cross_entropy, fused_cross_entropy):
        parameters = inspect.signature(function).parameters
        assert parameters["label_smoothing"].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters["ignore_index"].default == -100
        assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    assert inspect.signature(lt.linear_cross_entropy).parameters["chunk_size"].default == "auto"


def test_a_spec_is_small_immutable_and_hashable(rng):
    x, t = rng.standard_normal((2, 5, 3)), rng.integers(0, 5, (2, 3))
    xp = namespace(x=x)
    arrays = CrossEntropyArrays(x, t)
    a = CrossEntropySpec.of(xp, CrossEntropyOptions(axis=1, label_smoothing=0.1), arrays)
    b = CrossEntropySpec.of(xp, CrossEntropyOptions(axis=-2, label_smoothing=0.1), arrays)
    assert a == b and hash(a) == hash(b)
    assert (a.axis, a.num_classes, a.sample_shape, a.class_indices, a.weighted) == (1, 5, (2, 3), True, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.label_smoothing = 0.5


def test_auto_chunk_size():
    assert auto_chunk_size(8192, 32000) == 512
    assert auto_chunk_size(8192, 128256) == 256
    assert auto_chunk_size(100, 32000) == 100
    assert np.log2(auto_chunk_size(10**6, 1000)) % 1 == 0
