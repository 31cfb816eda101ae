"""``where=`` masks and other array options of ``losskit.evaluate``, and empty (null) Parquet
values counted over every row group."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dask")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

import losskit  # noqa: E402
from losskit.evaluation import EvaluationError  # noqa: E402

ROWS, CLASSES = 600, 4


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(ROWS, CLASSES))
    labels = rng.integers(0, CLASSES, ROWS)
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", labels)
    mask = rng.random(ROWS) < 0.7
    return tmp_path, logits, labels, mask


def _evaluate(tmp_path, loss, **kwargs):
    return losskit.evaluate(
        tmp_path / "logits.npy",
        tmp_path / "labels.npy",
        loss=loss,
        scheduler="synchronous",
        progress=False,
        chunk_rows=128,
        **kwargs,
    )


@pytest.mark.parametrize("kind", ["numpy", "dask"])
def test_a_where_mask_per_row_is_split_like_the_rows(data, kind):
    import dask.array as da

    tmp_path, logits, labels, mask = data
    where = mask if kind == "numpy" else da.from_array(mask, chunks=97)
    result = _evaluate(tmp_path, {"nll": {"where": where}, "cross_entropy": {"where": where}})
    assert list(result) == [
        "nll(where=<numpy array (600,) bool>)" if kind == "numpy" else "nll(where=<dask array (600,) bool>)",
        "cross_entropy(where=<numpy array (600,) bool>)"
        if kind == "numpy"
        else "cross_entropy(where=<dask array (600,) bool>)",
    ]
    nll, ce = result.values()
    assert nll == pytest.approx(float(losskit.nll(logits, labels, where=mask)), rel=1e-12)
    assert ce == pytest.approx(float(losskit.cross_entropy(logits, labels, where=mask)), rel=1e-12)


def test_per_class_weights_go_whole_to_every_chunk(data):
    tmp_path, logits, labels, _ = data
    weight = np.array([1.0, 2.0, 0.5, 3.0])
    result = _evaluate(tmp_path, {"cross_entropy": {"weight": weight}})
    expected = float(losskit.cross_entropy(logits, labels, weight=weight))
    assert result["cross_entropy(weight=<numpy array (4,) float64>)"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("loss", ["nll", "softmax_focal", "poly1_cross_entropy"])
@pytest.mark.parametrize(
    "where",
    [np.ones(ROWS), np.ones((ROWS, 7), bool), np.ones(ROWS + 1, bool)],
    ids=["float_mask", "two_axes", "one_row_too_many"],
)
def test_a_bad_where_mask_is_named(data, loss, where):
    tmp_path = data[0]
    with pytest.raises(EvaluationError) as caught:
        _evaluate(tmp_path, {loss: {"where": where}})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"loss {loss}(where=<numpy array {where.shape} {where.dtype}>): ")
    assert "where" in message.split("): ", 1)[1], message


def _nulls_in_several_row_groups(path, column_type=None):
    values = [float(i) for i in range(1000)]
    for row in (310, 333, 720, 721, 999):  # row groups [300, 600), [600, 900) and [900, 1000)
        values[row] = None
    pq.write_table(
        pa.table({"prediction": pa.array(values, type=column_type), "target": np.zeros(1000)}),
        path,
        row_group_size=300,
    )


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_the_null_count_covers_every_row_group(tmp_path, scheduler):
    _nulls_in_several_row_groups(tmp_path / "n.parquet")
    with pytest.raises(EvaluationError, match=r"has 5 empty \(null\) rows, the first at row 310"):
        losskit.evaluate(tmp_path / "n.parquet", loss="mse", scheduler=scheduler, progress=False)


def test_the_null_count_covers_every_file_of_a_directory(tmp_path):
    (tmp_path / "parts").mkdir()
    _nulls_in_several_row_groups(tmp_path / "parts" / "a.parquet")
    _nulls_in_several_row_groups(tmp_path / "parts" / "b.parquet")
    with pytest.raises(EvaluationError, match=r"has 10 empty \(null\) rows, the first at row 310"):
        losskit.evaluate(tmp_path / "parts", loss="mse", scheduler="synchronous", progress=False)


def test_without_statistics_the_count_says_which_rows_it_covers(tmp_path):
    values = [float(i) for i in range(1000)]
    for row in (310, 333, 720):
        values[row] = None
    table = pa.table({"prediction": values, "target": np.zeros(1000)})
    pq.write_table(table, tmp_path / "n.parquet", row_group_size=300, write_statistics=False)
    with pytest.raises(
        EvaluationError, match=r"has (2|1) empty \(null\) rows among rows (300 to 599|600 to 899), the first"
    ):
        losskit.evaluate(tmp_path / "n.parquet", loss="mse", scheduler="synchronous", progress=False)
