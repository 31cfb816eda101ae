"""losskit.evaluate and ``losskit evaluate``: losses over .npy and Parquet files on Dask.

The values are compared with the in-memory losses; one test evaluates files several times
larger than the memory limit of a 2-worker ``dask.distributed`` LocalCluster; the command line
is exercised through the installed ``losskit`` console script.
"""

from __future__ import annotations

import json
import logging
import re
import socket
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


# -- small inputs ----------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path):
    """A regression pair (.npy and Parquet) and a classification set (Parquet list column)."""
    rng = np.random.default_rng(0)
    n = 1000
    pred = rng.normal(size=n)
    target = pred + rng.normal(scale=0.7, size=n)
    np.save(tmp_path / "pred.npy", pred)
    np.save(tmp_path / "target.npy", target)
    logits = rng.normal(size=(n, 5)).astype(np.float32)
    labels = rng.integers(0, 5, n)
    labels[::37] = -100
    table = pa.table(
        {
            "prediction": pred,
            "target": target,
            "logits": pa.FixedSizeListArray.from_arrays(pa.array(logits.ravel()), 5),
            "logit_list": pa.array([list(map(float, row)) for row in logits]),
            "label": labels,
        }
    )
    pq.write_table(table, tmp_path / "data.parquet", row_group_size=300)
    return {
        "dir": tmp_path,
        "pred": pred,
        "target": target,
        "logits": logits.astype(np.float64),
        "labels": labels,
    }


def test_several_losses_match_in_memory(files):
    d = files["dir"]
    result = losskit.evaluate(
        d / "pred.npy",
        d / "target.npy",
        loss=["mse", "mae", "huber:delta=0.5", "smooth_l1"],
        scheduler="synchronous",
        chunk_rows=128,
        progress=False,
    )
    p, t = files["pred"], files["target"]
    expected = {
        "mse": losskit.mse(p, t),
        "mae": losskit.mae(p, t),
        "huber(delta=0.5)": losskit.huber(p, t, 0.5),
        "smooth_l1": losskit.smooth_l1(p, t),
    }
    assert list(result) == list(expected)
    for name, value in expected.items():
        assert result[name] == pytest.approx(float(value), rel=1e-12), name


@pytest.mark.parametrize("column", ["logits", "logit_list"])
def test_cross_entropy_from_a_parquet_list_column(files, column):
    result = losskit.evaluate(
        files["dir"] / "data.parquet",
        loss={"cross_entropy": {"label_smoothing": 0.1}, "nll": {}},
        prediction_column=column,
        target_column="label",
        scheduler="threads",
        progress=False,
    )
    x, y = files["logits"], files["labels"]
    ce = losskit.cross_entropy(x, y, label_smoothing=0.1)  # mean over the non-ignored rows
    assert result["cross_entropy(label_smoothing=0.1)"] == pytest.approx(float(ce), rel=1e-12)
    assert result["nll"] == pytest.approx(float(losskit.nll(x, y)), rel=1e-12)


def test_parquet_against_npy_and_limit(files):
    d, p, t = files["dir"], files["pred"], files["target"]
    # targets from the same Parquet file (default column names), then a .npy on the other side
    assert losskit.evaluate(d / "data.parquet", loss="mse", scheduler="synchronous", progress=False)[
        "mse"
    ] == pytest.approx(float(losskit.mse(p, t)), rel=1e-12)
    result = losskit.evaluate(
        d / "data.parquet",
        d / "target.npy",
        loss="mae",
        prediction_column="prediction",
        limit=450,
        scheduler="synchronous",
        progress=False,
    )
    assert result["mae"] == pytest.approx(float(losskit.mae(p[:450], t[:450])), rel=1e-12)


def test_each_chunk_is_read_once_for_all_losses(files, monkeypatch):
    reads = []
    original = readers._NpyFile.__getitem__

    def counted(self, key):
        reads.append((Path(self.path).name, key[0].start))
        return original(self, key)

    monkeypatch.setattr(readers._NpyFile, "__getitem__", counted)
    d = files["dir"]
    losskit.evaluate(
        d / "pred.npy",
        d / "target.npy",
        loss=["mse", "mae", "huber", "smooth_l1"],
        scheduler="synchronous",
        chunk_rows=100,
        progress=False,
    )
    assert sorted(reads) == sorted(
        (name, start) for name in ("pred.npy", "target.npy") for start in range(0, 1000, 100)
    )


def test_arrays_in_memory_and_lazy_results(files):
    import dask.array as da

    p, t = files["pred"], files["target"]
    result = losskit.evaluate(
        da.from_array(p, chunks=250), t, loss="mse", scheduler="synchronous", progress=False
    )
    assert result["mse"] == pytest.approx(float(losskit.mse(p, t)), rel=1e-12)


def test_python_errors(files, tmp_path):
    d = files["dir"]
    with pytest.raises(EvaluationError, match="does not exist"):
        losskit.evaluate(d / "missing.npy", d / "target.npy", loss="mse", scheduler="synchronous")
    with pytest.raises(EvaluationError, match="unknown loss 'msee'"):
        losskit.evaluate(d / "pred.npy", d / "target.npy", loss="msee", scheduler="synchronous")
    with pytest.raises(EvaluationError, match=r"not called as loss\(predictions, targets\)"):
        losskit.evaluate(
            d / "pred.npy", d / "target.npy", loss="linear_cross_entropy", scheduler="synchronous"
        )
    with pytest.raises(EvaluationError, match="targets are missing"):
        losskit.evaluate(d / "pred.npy", loss="mse", scheduler="synchronous")
    with pytest.raises(EvaluationError, match=r"loss mse: target must have the same shape as input"):
        losskit.evaluate(
            d / "data.parquet",
            loss="mse",
            prediction_column="logits",
            target_column="target",
            scheduler="synchronous",
        )
    with pytest.raises(
        EvaluationError, match=r"loss huber\(delt=0.5\): .*unexpected keyword argument 'delt'"
    ):
        losskit.evaluate(d / "pred.npy", d / "target.npy", loss="huber:delt=0.5", scheduler="synchronous")
    with pytest.raises(TypeError, match="loss must be a name"):
        losskit.evaluate(d / "pred.npy", d / "target.npy", loss=3, scheduler="synchronous")
    with pytest.raises(ValueError, match="chunk_rows must be a positive int"):
        losskit.evaluate(d / "pred.npy", d / "target.npy", loss="mse", chunk_rows=0)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(EvaluationError, match=r"unsupported type '.txt'"):
        losskit.evaluate(tmp_path / "notes.txt", d / "target.npy", loss="mse")
    (tmp_path / "broken.npy").write_bytes(b"not an array")
    with pytest.raises(EvaluationError, match="is not a readable .npy array"):
        losskit.evaluate(tmp_path / "broken.npy", d / "target.npy", loss="mse")
    # nulls in a Parquet column are reported with the first row, at read time
    pq.write_table(
        pa.table({"prediction": pa.array([1.0, None, 3.0, None]), "target": [1.0] * 4}),
        tmp_path / "n.parquet",
    )
    with pytest.raises(EvaluationError, match=r"2 empty \(null\) rows, the first at row 1"):
        losskit.evaluate(tmp_path / "n.parquet", loss="mse", scheduler="synchronous", progress=False)
    ragged = pa.table({"prediction": pa.array([[1.0, 2.0], [1.0]]), "target": pa.array([0, 1])})
    pq.write_table(ragged, tmp_path / "ragged.parquet")
    with pytest.raises(EvaluationError, match="row 1 holds 1 values, the first row 2"):
        losskit.evaluate(
            tmp_path / "ragged.parquet", loss="cross_entropy", scheduler="synchronous", progress=False
        )


def test_value_checks_run_on_the_chunks(files, tmp_path):
    # lazy arrays skip the losses' value checks; the chunks, concrete in their tasks, do not
    with pytest.raises(EvaluationError, match=r"target must hold probabilities in \[0, 1\].*\(row \d+\)"):
        losskit.evaluate(
            files["dir"] / "data.parquet",
            loss="cross_entropy",
            prediction_column="prediction",
            scheduler="synchronous",
            progress=False,
        )
    labels = files["labels"].copy()
    labels[3] = 7
    np.save(tmp_path / "labels.npy", labels)
    np.save(tmp_path / "logits.npy", files["logits"])
    with pytest.raises(EvaluationError, match=r"class index 7 .*outside \[0, 4\]"):
        losskit.evaluate(
            tmp_path / "logits.npy", tmp_path / "labels.npy", loss="nll", scheduler="threads", progress=False
        )


def test_import_losskit_does_not_import_dask():
    code = "import sys, losskit; losskit.evaluate; assert not {'dask', 'pyarrow'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- larger than memory ------------------------------------------------------------------------

# per worker: one that has read Parquet idles at ~150 MiB and peaks at ~230 MiB here; the
# nanny kills a worker at 95% of its limit, so the limit leaves room for a machine that differs
MEMORY_LIMIT = 320 * 2**20
CLASSES = 8
ROWS = 16 * 2**20  # logits: 16 Mi rows x 8 classes in float64 = 1 GiB, over 3x a worker's limit
CHUNK = 2**16  # rows per generated chunk and per Parquet row group: 4 MiB of logits


def _chunk(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of rows [start, stop), the same every time they are asked for."""
    rng = np.random.default_rng([7, start])
    labels = rng.integers(0, CLASSES, stop - start)
    logits = 4.0 * rng.random((stop - start, CLASSES)) - 2.0
    logits[np.arange(stop - start), labels] += 1.5
    labels[rng.random(stop - start) < 0.05] = -100  # ignored rows
    return logits, labels


def _write_big_files(directory: Path) -> tuple[Path, Path]:
    """Logits as .npy, labels as Parquet, written chunk by chunk (never whole in memory)."""
    npy, parquet = directory / "logits.npy", directory / "labels.parquet"
    header = {"descr": "<f8", "fortran_order": False, "shape": (ROWS, CLASSES)}
    schema = pa.schema([("label", pa.int32())])
    with open(npy, "wb") as f, pq.ParquetWriter(parquet, schema) as writer:
        np.lib.format.write_array_header_1_0(f, header)
        for start in range(0, ROWS, CHUNK):
            logits, labels = _chunk(start, min(ROWS, start + CHUNK))
            f.write(logits.tobytes())
            writer.write_table(pa.table({"label": labels.astype(np.int32)}), row_group_size=CHUNK)
    return npy, parquet


def _peak_rss() -> int:
    """High-water mark of this process's resident memory, in bytes (Linux)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak memory read from /proc")
def test_larger_than_worker_memory_on_a_local_cluster(tmp_path):
    import dask

    distributed = pytest.importorskip("distributed")
    npy, parquet = _write_big_files(tmp_path)
    assert npy.stat().st_size > 3 * MEMORY_LIMIT
    # no pausing or spilling: a paused worker with nothing to spill would wait forever, and the
    # test wants a worker that overshoots its limit to be killed (and the test to fail) instead
    no_pause = {f"distributed.worker.memory.{k}": False for k in ("target", "spill", "pause")}
    with (
        dask.config.set(no_pause),
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            memory_limit=MEMORY_LIMIT,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        workers = set(client.scheduler_info()["workers"])
        assert len(workers) == 2
        result = losskit.evaluate(
            npy,
            parquet,
            loss=["cross_entropy", "nll"],
            scheduler=cluster.scheduler_address,
            progress=False,
        )
        # memory stayed bounded: the same two workers (none killed and restarted), each of
        # which stayed under its limit all along
        assert set(client.scheduler_info()["workers"]) == workers
        peaks = client.run(_peak_rss)
        assert all(peak < MEMORY_LIMIT for peak in peaks.values()), peaks
        # the in-memory value on a subsample: the first rows, loaded whole
        head = 3 * CHUNK + 12345
        sub = losskit.evaluate(
            npy, parquet, loss="cross_entropy", limit=head, scheduler=client, progress=False
        )
    logits = np.load(npy, mmap_mode="r")[:head].copy()
    labels = next(pq.ParquetFile(parquet).iter_batches(batch_size=head))["label"].to_numpy()
    assert sub["cross_entropy"] == pytest.approx(float(losskit.cross_entropy(logits, labels)), rel=1e-12)
    # and the whole: the in-memory sums of every chunk, regenerated from the seed
    ce, nll, counted = 0.0, 0.0, 0
    for start in range(0, ROWS, CHUNK):
        x, y = _chunk(start, min(ROWS, start + CHUNK))
        ce += float(losskit.cross_entropy(x, y, reduction="sum"))
        nll += float(losskit.nll(x, y, reduction="sum"))
        counted += int(np.count_nonzero(y != -100))
    assert result["cross_entropy"] == pytest.approx(ce / counted, rel=1e-12)
    assert result["nll"] == pytest.approx(nll / counted, rel=1e-12)


# -- command line ----------------------------------------------------------------------------


def _cli(*args, cwd=None):
    assert LOSSKIT.exists(), f"console script not installed next to {sys.executable}"
    return subprocess.run(
        [str(LOSSKIT), "evaluate", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def _one_line_error(proc, pattern):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("losskit evaluate: error: "), lines[0]
    assert re.search(pattern, lines[0]), lines[0]
    assert proc.stdout == ""


def test_cli_prints_and_writes_json(files):
    d = files["dir"]
    out = d / "result.json"
    proc = _cli(
        d / "pred.npy", d / "target.npy", "--loss", "mse", "--loss", "huber:delta=0.5",
        "--scheduler", "synchronous", "--json", "--output", out,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert json.loads(out.read_text()) == report
    assert report["rows"] == 1000
    p, t = files["pred"], files["target"]
    assert report["losses"]["mse"] == pytest.approx(float(losskit.mse(p, t)), rel=1e-12)
    assert report["losses"]["huber(delta=0.5)"] == pytest.approx(float(losskit.huber(p, t, 0.5)), rel=1e-12)
    assert "100% Completed" in proc.stderr  # the progress bar goes to stderr


def test_cli_on_a_default_local_cluster(files, tmp_path):
    d = files["dir"]
    proc = _cli(d / "data.parquet", "--loss", "mae", "--workers", "1", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    name, value = proc.stdout.split()
    assert name == "mae"
    assert float(value) == pytest.approx(float(losskit.mae(files["pred"], files["target"])), rel=1e-12)
    # an error raised inside a worker's task still reaches the user as one line
    table = pa.table({"prediction": [0.5, 1.0, None, 2.0], "target": [1.0, 1.0, 1.0, 1.0]})
    pq.write_table(table, tmp_path / "nulls.parquet")
    proc = _cli(tmp_path / "nulls.parquet", "--loss", "mse", "--workers", "1", "--no-progress")
    _one_line_error(
        proc,
        r"predictions column 'prediction' of .*nulls.parquet has 1 empty \(null\) rows, the first at row 2",
    )


def test_cli_errors_are_one_line_with_nothing_written(files, tmp_path):
    d = files["dir"]
    out = tmp_path / "out" / "result.json"
    out.parent.mkdir()
    common = ["--scheduler", "synchronous", "--no-progress", "--output", out]
    _one_line_error(
        _cli(d / "nope.npy", d / "target.npy", "--loss", "mse", *common),
        r"predictions file .*nope\.npy does not exist",
    )
    np.save(tmp_path / "short.npy", files["target"][:999])
    _one_line_error(
        _cli(d / "pred.npy", tmp_path / "short.npy", "--loss", "mse", *common),
        r"predictions have 1000 rows but targets have 999",
    )
    _one_line_error(
        _cli(d / "data.parquet", "--loss", "mse", "--prediction-column", "yhat", *common),
        r"has no column 'yhat'; its columns are \['prediction', 'target', 'logits', 'logit_list', 'label'\]",
    )
    with_nan = files["pred"].copy()
    with_nan[[7, 500]] = np.nan
    np.save(tmp_path / "nan.npy", with_nan)
    _one_line_error(
        _cli(tmp_path / "nan.npy", d / "target.npy", "--loss", "mse", "--loss", "mae", *common),
        r"predictions .*nan\.npy hold NaN in 2 of 1000 rows \(the first is row 7\)",
    )
    _one_line_error(
        _cli(d / "pred.npy", d / "target.npy", "--loss", "msee", *common),
        r"unknown loss 'msee'; did you mean 'mse'",
    )
    _one_line_error(
        _cli(
            d / "pred.npy",
            d / "target.npy",
            "--loss",
            "mse",
            "--scheduler",
            "synchronous",
            "--output",
            tmp_path / "no" / "r.json",
        ),
        r"--output directory .*no does not exist",
    )
    _one_line_error(
        _cli(d / "pred.npy", d / "target.npy", "--loss", "mse", "--limit", "0"),
        r"--limit must be a positive integer",
    )
    assert list(out.parent.iterdir()) == []  # no result and no temporary file left behind


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def test_cli_unreachable_scheduler(files):
    d = files["dir"]
    address = f"tcp://127.0.0.1:{_closed_port()}"
    proc = _cli(
        d / "pred.npy", d / "target.npy", "--loss", "mse", "--scheduler", address, "--connect-timeout", "1"
    )
    _one_line_error(proc, rf"cannot reach the Dask scheduler at {address}")


def test_cli_help_lists_evaluate():
    proc = subprocess.run([str(LOSSKIT), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "evaluate" in proc.stdout
    proc = subprocess.run([str(LOSSKIT), "evaluate", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--scheduler" in proc.stdout and "--loss" in proc.stdout
