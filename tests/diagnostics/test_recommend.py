"""recommend: an output layer, a loss that exists and the classic mistakes for every task."""

from __future__ import annotations

import pytest

import losskit
from losskit.diagnostics import TASKS, recommend


@pytest.mark.parametrize("task", TASKS)
def test_recommend_every_task(task):
    r = recommend(task)
    assert r.task == task and r.output_layer and r.loss.startswith("losskit.") and r.why and r.mistakes
    name = r.loss.split("(")[0].removeprefix("losskit.")
    assert callable(getattr(losskit, name))  # the recommended call exists
    assert set(r.to_dict()) >= {"output_layer", "loss", "why", "baseline", "mistakes"}


def test_recommend_mentions_the_classic_traps():
    assert any("softmax" in m.lower() and "logits" in m for m in recommend("multiclass").mistakes)
    assert any("batchmean" in m for m in recommend("distribution").mistakes)
    assert "with_logits" in recommend("binary").loss
    with pytest.raises(ValueError, match="known tasks"):
        recommend("astrology")
