"""The losses' value checks run on every chunk of an out-of-core evaluation, in its one pass.

On lazy Dask arrays the losses skip their value checks (class indices in range, probabilities
in [0, 1], labels in {-1, 1}, ...); ``losskit.evaluate`` runs every loss on each concrete chunk
inside the same pass, so a bad value in any chunk, not only the first, stops the run with the
row that holds it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dask")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

import losskit  # noqa: E402
from losskit.evaluation import EvaluationError, readers  # noqa: E402

LOSSKIT = Path(sys.executable).with_name("losskit")
ROWS, CLASSES, CHUNK = 1000, 5, 128  # chunks start at rows 0, 128, ..., 896


def _classification(tmp_path, bad_row=None, bad_label=None):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(ROWS, CLASSES))
    labels = rng.integers(0, CLASSES, ROWS)
    if bad_row is not None:
        labels[bad_row] = bad_label
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", labels)
    table = pa.table(
        {
            "logits": pa.FixedSizeListArray.from_arrays(pa.array(logits.ravel()), CLASSES),
            "label": labels,
        }
    )
    pq.write_table(table, tmp_path / "data.parquet", row_group_size=300)
    return logits, labels


def _evaluate(*inputs, **kwargs):
    kwargs.setdefault("scheduler", "synchronous")
    return losskit.evaluate(*inputs, progress=False, **kwargs)


@pytest.mark.parametrize("bad_label", [-1, CLASSES], ids=["minus_one", "num_classes"])
@pytest.mark.parametrize("loss", ["cross_entropy", "nll", "softmax_focal"])
def test_class_index_out_of_range_in_a_later_npy_chunk(tmp_path, loss, bad_label):
    _classification(tmp_path, bad_row=700, bad_label=bad_label)
    with pytest.raises(
        EvaluationError,
        match=rf"loss {loss}: target holds class index {bad_label}.*outside \[0, 4\].*\(row 700\)",
    ):
        _evaluate(tmp_path / "logits.npy", tmp_path / "labels.npy", loss=loss, chunk_rows=CHUNK)


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_class_index_out_of_range_in_a_later_parquet_row_group(tmp_path, scheduler):
    _classification(tmp_path, bad_row=845, bad_label=-1)
    with pytest.raises(EvaluationError, match=r"class index -1.*\(row 845\)"):
        _evaluate(
            tmp_path / "data.parquet",
            loss="cross_entropy",
            prediction_column="logits",
            target_column="label",
            scheduler=scheduler,
        )
    # the in-memory loss refuses the same labels
    logits, labels = _classification(tmp_path, bad_row=845, bad_label=-1)
    with pytest.raises(ValueError, match="class index -1"):
        losskit.cross_entropy(logits, labels)


def test_the_first_bad_row_of_a_chunk_is_named_and_ignore_index_is_respected(tmp_path):
    # the pass stops at the first chunk found to hold a bad value (chunks run in any order),
    # naming that chunk's first bad row
    logits, labels = _classification(tmp_path)
    labels[[300, 310]] = -100  # ignored: not a bad value
    labels[[612, 620, 640, 700, 990]] = [7, -2, -3, 8, 9]  # chunks [512, 640), [640, 768), [896, 1000)
    np.save(tmp_path / "labels.npy", labels)
    with pytest.raises(EvaluationError) as caught:
        _evaluate(tmp_path / "logits.npy", tmp_path / "labels.npy", loss="cross_entropy", chunk_rows=CHUNK)
    first_of_chunk = {612: 7, 640: -3, 990: 9}
    row = int(re.search(r"\(row (\d+)\)$", str(caught.value)).group(1))
    assert row in first_of_chunk, str(caught.value)
    assert f"class index {first_of_chunk[row]} " in str(caught.value)
    # rows marked ignore_index pass
    labels[[612, 620, 640, 700]] = -100
    np.save(tmp_path / "labels.npy", labels)
    with pytest.raises(EvaluationError, match=r"class index 9 .*\(row 990\)"):
        _evaluate(tmp_path / "logits.npy", tmp_path / "labels.npy", loss="cross_entropy", chunk_rows=CHUNK)


def test_probabilities_outside_the_unit_interval_in_a_later_chunk(tmp_path):
    rng = np.random.default_rng(2)
    p = rng.uniform(0.05, 0.95, ROWS)
    y = (rng.random(ROWS) < 0.5).astype(np.float64)
    p[901] = 1.5
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    with pytest.raises(
        EvaluationError,
        match=r"loss binary_cross_entropy: input must hold probabilities in \[0, 1\].*\(row 901\)",
    ):
        _evaluate(tmp_path / "p.npy", tmp_path / "y.npy", loss="binary_cross_entropy", chunk_rows=CHUNK)
    # targets in Parquet, in the last row group, for a loss that takes probabilities as targets
    p[901] = 0.5
    y[999] = -0.25
    np.save(tmp_path / "p.npy", p)
    pq.write_table(pa.table({"target": y}), tmp_path / "y.parquet", row_group_size=250)
    with pytest.raises(
        EvaluationError,
        match=r"loss binary_cross_entropy_with_logits: target must hold probabilities.*\(row 999\)",
    ):
        _evaluate(tmp_path / "p.npy", tmp_path / "y.parquet", loss="binary_cross_entropy_with_logits")


def test_other_value_checks_in_a_later_chunk(tmp_path):
    rng = np.random.default_rng(3)
    scores = rng.normal(size=ROWS)
    signs = np.where(rng.random(ROWS) < 0.5, -1.0, 1.0)
    signs[555] = 2.0  # labels must be -1 or 1
    pq.write_table(
        pa.table({"prediction": scores, "target": signs}), tmp_path / "s.parquet", row_group_size=200
    )
    with pytest.raises(
        EvaluationError, match=r"loss squared_hinge: target must only hold the values .*\(row 555\)"
    ):
        _evaluate(tmp_path / "s.parquet", loss="squared_hinge")
    counts = rng.uniform(0.5, 3.0, ROWS)
    counts[432] = -1.0  # Poisson counts are >= 0
    np.save(tmp_path / "x.npy", rng.uniform(0.5, 3.0, ROWS))
    np.save(tmp_path / "c.npy", counts)
    with pytest.raises(EvaluationError, match=r"loss poisson_nll: target must be >= 0 .*\(row 432\)"):
        _evaluate(tmp_path / "x.npy", tmp_path / "c.npy", loss="poisson_nll", chunk_rows=CHUNK)


def test_valid_files_still_evaluate_once_per_chunk(tmp_path, monkeypatch):
    """The checks read no chunk a second time and accept good values of every chunk, including a
    last chunk of one row."""
    logits, labels = _classification(tmp_path)
    reads = []
    original = readers._NpyFile.__getitem__

    def counted(self, key):
        reads.append((Path(self.path).name, key[0].start))
        return original(self, key)

    monkeypatch.setattr(readers._NpyFile, "__getitem__", counted)
    result = _evaluate(
        tmp_path / "logits.npy", tmp_path / "labels.npy", loss=["cross_entropy", "nll"], chunk_rows=333
    )
    assert sorted(reads) == sorted((n, s) for n in ("logits.npy", "labels.npy") for s in (0, 333, 666, 999))
    assert result["cross_entropy"] == pytest.approx(float(losskit.cross_entropy(logits, labels)), rel=1e-12)


def test_arrays_in_memory_with_unequal_chunks(tmp_path):
    import dask.array as da

    logits, labels = _classification(tmp_path)
    labels[801] = CLASSES
    with pytest.raises(EvaluationError, match=r"class index 5 .*\(row 801\)"):
        _evaluate(da.from_array(logits, chunks=(250, 2)), da.from_array(labels, chunks=170), loss="nll")


def test_cli_exits_2_naming_the_row(tmp_path):
    _classification(tmp_path, bad_row=700, bad_label=-1)
    proc = subprocess.run(
        [str(LOSSKIT), "evaluate", tmp_path / "logits.npy", tmp_path / "labels.npy", "--loss",
         "cross_entropy", "--chunk-rows", str(CHUNK), "--scheduler", "synchronous", "--no-progress"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert re.search(r"^losskit evaluate: error: loss cross_entropy: .*class index -1.*\(row 700\)$", line), (
        line
    )
