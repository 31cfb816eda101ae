"""Units of a loss: nats, bits, perplexity and bits per character, their worked numbers and
round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from losskit.diagnostics import bits_per_character, convert, from_perplexity, perplexity, to_bits, to_nats


def test_units_worked_numbers():
    assert to_bits(math.log(27)) == pytest.approx(4.754887502163468, rel=1e-12)
    assert perplexity(math.log(27)) == pytest.approx(27.0, rel=1e-12)
    assert perplexity(1.0, unit="bits") == pytest.approx(2.0)
    assert to_nats(1.0) == pytest.approx(math.log(2))
    assert from_perplexity(27) == pytest.approx(math.log(27))
    c = convert(27, "perplexity")
    assert c["nats"] == pytest.approx(math.log(27)) and c["bits"] == pytest.approx(math.log2(27))
    assert convert(1.0, "bits")["perplexity"] == pytest.approx(2.0)


def test_units_round_trip_and_arrays():
    x = np.linspace(0.01, 10, 50)
    np.testing.assert_allclose(to_nats(to_bits(x)), x, rtol=1e-14)
    np.testing.assert_allclose(from_perplexity(perplexity(x)), x, rtol=1e-12)
    assert perplexity(1e6) == math.inf


def test_bits_per_character():
    # 1000 tokens at 2 nats each spread over 4000 characters
    assert bits_per_character(2.0, tokens=1000, characters=4000) == pytest.approx(2.0 / math.log(2) / 4)
    with pytest.raises(ValueError, match="characters must be a positive number"):
        bits_per_character(2.0, tokens=10, characters=0)
    with pytest.raises(ValueError, match="from_unit"):
        convert(1.0, "decibans")
    with pytest.raises(ValueError, match="perplexity must be > 0"):
        from_perplexity(0.0)
