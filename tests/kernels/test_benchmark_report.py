"""benchmarks/run.py's report logic on made-up measurements: the floors, the targets marked met
or missed with a cause, and --write-results replacing only its own section of RESULTS.md."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _gemm(run, numpy_s, torch_s, chunks=4.0):
    return {
        "chunk": 512,
        "chunks": chunks,
        "flop": 1e9,
        "numpy": {p: {"median": t, "min": t} for p, t in zip(run.PRODUCTS, numpy_s)},
        "torch": {p: {"median": t, "min": t} for p, t in zip(run.PRODUCTS, torch_s)},
    }


def test_matmul_floor_takes_the_faster_library_per_product(run):
    floor = run.matmul_floor(_gemm(run, [1.0, 2.0, 1.0], [1.5, 1.0, 1.5]))
    assert floor["time"] == pytest.approx(4 * 3.0)
    assert floor["numpy_only"] == pytest.approx(4 * 4.0)
    assert floor["best"] == dict(zip(run.PRODUCTS, ["numpy", "torch", "numpy"]))
    assert floor["gflops"]["torch"][run.PRODUCTS[1]] == pytest.approx(1.0)


def _res(t, peak=1 << 20):
    return {"time": t, "best": t, "peak": peak}


def test_targets_marked_with_causes(run):
    ce = {
        "CE 8x8": {
            "floor": 0.1,
            "kernel": "k",
            "logits": 1,
            "results": {
                "losskit numpy reused out": _res(0.25),  # 2.5x the floor: missed
                "losskit numpy inplace": _res(0.15),
                "F.cross_entropy + autograd": _res(1.0),
                "jax/optax jit value_and_grad": _res(0.4),
            },
        }
    }
    floor = run.matmul_floor(_gemm(run, [1.0, 2.0, 1.0], [1.5, 1.0, 1.5]))  # 12 s; NumPy only 16 s
    linear = {
        "lin": {
            "logits": 1,
            "floors": {"": floor},
            "results": {
                "losskit numpy": _res(16.0, 100 << 20),  # at the NumPy-only floor
                "losskit torch Function": _res(12.4, 100 << 20),
                "F.cross_entropy(F.linear) naive": _res(14.0, 3000 << 20),
                "F.linear_cross_entropy chunked": _res(13.5, 300 << 20),
            },
        }
    }
    rows = run.targets(ce, linear, {"cross_entropy": 3e-7, "linear_cross_entropy": 2e-5})
    marks = {(t, m.split(":")[0]): (met, cause) for t, case, m, met, cause in rows}
    met, cause = marks[("<= 2x bandwidth floor (reused buffer)", "losskit numpy reused out")]
    assert not met and "beyond reading the logits" in cause
    assert marks[("<= 2x bandwidth floor (reused buffer)", "losskit numpy inplace")] == (True, "")
    assert marks[("<= 0.25x PyTorch", "losskit numpy inplace")][0]
    assert marks[("<= 0.5x JAX", "losskit numpy inplace")][0]
    assert not marks[("<= 0.5x JAX", "losskit numpy reused out")][0]
    met, cause = marks[("<= 1.05x matmul floor", "losskit numpy")]
    assert not met and "NumPy's BLAS is slower than PyTorch's" in cause
    assert marks[("<= 1.05x matmul floor", "losskit torch Function")] == (True, "")
    assert marks[("<= 0.95x faster of PyTorch naive/chunked", "losskit torch Function")][0]
    assert marks[("peak <= 0.1x naive and <= chunked", "losskit numpy")][0]
    assert marks[("float32 within 1e-5 of float64", "3.0e-07")][0]
    assert not marks[("float32 within 1e-5 of float64", "2.0e-05")][0]


def test_write_results_replaces_only_the_generated_section(run, tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(f"head\n{run.BEGIN}\nold table\n{run.END}\ntail\n", encoding="utf-8")
    run.write_results("new table", path)
    assert path.read_text(encoding="utf-8") == f"head\n{run.BEGIN}\nnew table\n{run.END}\ntail\n"
    path.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="no generated section"):
        run.write_results("x", path)
