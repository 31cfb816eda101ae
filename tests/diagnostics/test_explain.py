"""explain: every catalogued loss explained from the catalog, the described ones completely;
aliases and errors."""

from __future__ import annotations

import pytest

import losskit
from losskit.diagnostics import explain


@pytest.mark.parametrize("info", losskit.catalog(), ids=lambda i: i.name)
def test_explain_every_catalogued_loss(info):
    e = explain(info.name)
    assert e.name == info.name and e.formula == info.formula and e.family == info.family
    assert set(e.properties) == {"non_negative", "zero_at_perfection", "convex", "robust_to_outliers"}
    assert e.equivalents == {"torch": info.torch, "optax": info.optax, "keras": info.keras}
    assert e.summary


@pytest.mark.parametrize(
    "name",
    [
        "mse",
        "mae",
        "huber",
        "smooth_l1",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "cross_entropy",
        "nll",
        "kl_div",
    ],
)
def test_explain_described_losses_are_complete(name):
    e = explain(name)
    assert e.derivative and all(v for v in e.properties.values()) and e.notes and e.baseline


def test_explain_aliases_and_errors():
    assert explain("bce").name == "binary_cross_entropy"
    assert explain("l1").name == "mae"
    assert explain(losskit.mse).name == "mse"
    assert "batchmean" in explain("kl_div").notes
    with pytest.raises(ValueError, match="known losses"):
        explain("nope")
