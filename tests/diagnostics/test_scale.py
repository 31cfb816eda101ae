"""Long logs: the running medians are exact and O(n log w), and reading and diagnosing a million
points stays within a memory bound (speed is measured by benchmarks/diagnostics.py, never here)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from losskit.diagnostics import diagnose, read_log
from losskit.diagnostics.history import History, Series, _rolling_median
from losskit.diagnostics.rolling import centred_median, trailing_median


def _old_rolling_median(y: np.ndarray, window: int) -> np.ndarray:
    """The former formula, a median of each window of an (n, w) copy: the reference."""
    window = max(1, int(window)) | 1
    if window == 1 or y.size < 3:
        return y.copy()
    h = min(window // 2, (y.size - 1) // 2)
    padded = np.concatenate([np.full(h, np.nan), y, np.full(h, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * h + 1)
    return np.nanmedian(windows, axis=1)


def _random_curve(rng: np.random.Generator, n: int) -> np.ndarray:
    y = rng.standard_normal(n) * 10.0 ** rng.uniform(-6, 6)
    if rng.random() < 0.3:
        y = np.round(y, 1)  # ties
    if rng.random() < 0.2:
        y = np.abs(y) + np.linspace(3.0, 1.0, n)  # a loss-like trend
    return y


@pytest.mark.parametrize("window", [1, 2, 3, 4, 8, 9, 10, 25, 100, 101, 1001])
def test_centred_median_equals_the_former_formula(window):
    rng = np.random.default_rng(window)
    for n in [1, 2, 3, 4, 5, 7, 10, 50, window - 1, window, window + 1, 2 * window + 3, 3000]:
        if n < 1:
            continue
        y = _random_curve(rng, n)
        expected = _old_rolling_median(y, window)
        assert np.array_equal(centred_median(y, window), expected), (n, window)
        assert np.array_equal(_rolling_median(y, window), expected), (n, window)


def test_centred_median_random_sizes_and_nan():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n, window = int(rng.integers(1, 500)), int(rng.integers(1, 300))
        y = _random_curve(rng, n)
        assert np.array_equal(centred_median(y, window), _old_rolling_median(y, window)), (n, window)
    # NaN are left out, as np.nanmedian leaves them out
    y = _random_curve(rng, 200)
    y[rng.choice(200, 30, replace=False)] = np.nan
    with np.errstate(all="ignore"):
        expected = _old_rolling_median(y, 15)
    assert np.array_equal(centred_median(y, 15), expected, equal_nan=True)


def test_trailing_median_equals_window_medians():
    rng = np.random.default_rng(1)
    for _ in range(300):
        n = int(rng.integers(1, 400))
        m = int(rng.integers(1, n + 1))
        y = _random_curve(rng, n)
        expected = np.median(np.lib.stride_tricks.sliding_window_view(y, m), axis=1)
        assert np.array_equal(trailing_median(y, m), expected), (n, m)
    y = np.arange(10.0)
    y[4] = np.nan
    expected = np.median(np.lib.stride_tricks.sliding_window_view(y, 3), axis=1)
    assert np.array_equal(trailing_median(y, 3), expected, equal_nan=True)
    with pytest.raises(ValueError):
        trailing_median(y, 11)


def _long_curve(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = (0.3 + 2.0 * np.exp(-t / (n / 8))) * np.exp(0.05 * rng.standard_normal(n))
    y[rng.choice(np.arange(10, n - 10), 12, replace=False)] *= 4.0
    return y


N = 1_000_000


def test_diagnose_a_million_points_in_bounded_memory():
    y = _long_curve(N)
    vstep = np.arange(999, N, 1000)
    v = 0.4 + 2.0 * np.exp(-vstep / (N / 8))
    history = History(Series(y, np.arange(N), name="train_loss"), Series(v, vstep, name="val_loss"))
    tracemalloc.start()
    try:
        findings = diagnose(history, num_classes=10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # about 95 MiB measured (a dozen arrays of n floats); the former (n, w) copies needed tens
    # of GiB at this size
    assert peak < 300 * 2**20, peak / 2**20
    kinds = [f.kind for f in findings]
    assert "spike" in kinds and "converged" in kinds and "init_ok" in kinds


def _write_csv(path, y: np.ndarray, val: np.ndarray) -> None:
    ys, vals = y.tolist(), val.tolist()  # repr of a Python float reads back exactly
    with open(path, "w") as fh:
        fh.write("step,train_loss,val_loss\n")
        fh.write(
            "".join(
                f"{i},{ys[i]!r},{vals[i]!r}\n" if i % 1000 == 999 else f"{i},{ys[i]!r},\n"
                for i in range(len(ys))
            )
        )


def test_read_a_million_row_csv(tmp_path):
    y = _long_curve(N, seed=1)
    val = y * 1.1
    path = tmp_path / "log.csv"
    _write_csv(path, y, val)
    history = read_log(path)
    assert history.format == "csv"
    assert history.columns == {"train": "train_loss", "val": "val_loss"}
    assert np.array_equal(history.train.value, y)
    assert np.array_equal(history.train.step, np.arange(N, dtype=np.float64))
    assert history.train.epoch is None
    assert np.array_equal(history.val.value, val[999::1000])
    assert np.array_equal(history.val.step, np.arange(999, N, 1000, dtype=np.float64))


def test_read_csv_in_bounded_memory(tmp_path):
    # tracemalloc slows the row-by-row reader tenfold: 200,000 rows keep this test short
    n = 200_000
    y = _long_curve(n, seed=3)
    path = tmp_path / "log.csv"
    _write_csv(path, y, y * 1.1)
    tracemalloc.start()
    try:
        history = read_log(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # about 13 MiB measured (9 bytes a cell while reading, then the series); holding the rows
    # as lists of strings, as the reader once did, took about 75 MiB
    assert peak < 40 * 2**20, peak / 2**20
    assert np.array_equal(history.train.value, y)


def test_read_a_long_lightning_csv(tmp_path):
    n, per = 100_000, 1000
    y = _long_curve(n, seed=2)
    ys = y.tolist()
    path = tmp_path / "metrics.csv"
    with open(path, "w") as fh:
        fh.write("epoch,step,train_loss_step,val_loss\n")
        for i in range(n):
            fh.write(f"{i // per},{i},{ys[i]!r},\n")
            if i % per == per - 1:
                fh.write(f"{i // per},{i},,{ys[i] * 1.1!r}\n")
    history = read_log(path)
    assert history.format == "lightning_csv"
    assert np.array_equal(history.train.value, y)
    assert np.array_equal(history.train.step, np.arange(n, dtype=np.float64))
    assert np.array_equal(history.train.epoch, np.arange(n, dtype=np.float64) // per)
    assert np.array_equal(history.val.value, y[per - 1 :: per] * 1.1)
    assert np.array_equal(history.val.step, np.arange(per - 1, n, per, dtype=np.float64))
