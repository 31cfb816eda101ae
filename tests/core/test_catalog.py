"""The catalog lists every public loss, and the README's table is the catalog's."""

from __future__ import annotations

import inspect
import pathlib
import re

import losskit as lk
from losskit.core.catalog import FAMILIES, INPUT_SPACES, markdown_table
from losskit.core.gradients import has_gradient

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_is_the_catalog():
    text = README.read_text()
    match = re.search(r"<!-- catalog:begin -->\n(.*?)\n<!-- catalog:end -->", text, re.S)
    assert match, "README lacks the catalog markers"
    assert match.group(1) == markdown_table(), "README table is stale: run `make readme`"


def test_every_catalogued_loss_is_exported_documented_and_differentiable():
    for info in lk.catalog():
        assert info.family in FAMILIES and info.input_space in INPUT_SPACES
        assert getattr(lk, info.name) is info.function, info.name
        assert info.name in lk.__all__
        doc = inspect.getdoc(info.function) or ""
        assert len(doc) > 80, f"{info.name} needs a docstring with formula, shapes and options"
        assert has_gradient(info.function), f"{info.name} has no analytic gradient"
        assert "wrt" not in inspect.signature(info.function).parameters


def test_lookup():
    assert lk.lookup("cross_entropy").function is lk.cross_entropy
    try:
        lk.lookup("crossentropy")
    except KeyError as exc:
        assert "known losses" in str(exc)
    else:
        raise AssertionError("lookup of an unknown name must fail")


def test_core_losses_are_catalogued():
    names = {info.name for info in lk.catalog()}
    for name in [
        "mse",
        "mae",
        "huber",
        "smooth_l1",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "cross_entropy",
        "nll",
        "kl_div",
    ]:
        assert name in names


def test_public_api_is_fully_annotated():
    import typing

    for name in lk.__all__:
        obj = getattr(lk, name)
        if not inspect.isfunction(obj):
            continue
        signature = inspect.signature(obj)
        missing = [
            p
            for p in signature.parameters.values()
            if p.annotation is inspect.Parameter.empty and p.kind not in (p.VAR_KEYWORD,)
        ]
        assert not missing, f"{name}: parameters without type hints: {[p.name for p in missing]}"
        assert signature.return_annotation is not inspect.Signature.empty, f"{name} lacks a return annotation"
        assert typing.get_type_hints(obj) is not None
