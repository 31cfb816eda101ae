"""The fast-path seam: the table is the registry, modules are imported on first use, and a
fast path that declines leaves the work to the portable code."""

from __future__ import annotations

import importlib
import subprocess
import sys

import array_api_strict as xps
import pytest

import losskit as lk
from losskit import fast_paths
from losskit.core import dispatch
from losskit.kernels import cross_entropy as numpy_kernel


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made by a test are forgotten after it."""
    monkeypatch.setattr(dispatch, "_TARGETS", dict(dispatch._TARGETS))
    monkeypatch.setattr(dispatch, "_LOADED", dict(dispatch._LOADED))


def test_the_table_is_the_registry_and_every_entry_resolves():
    assert dispatch.registered_fast_paths() == fast_paths.FAST_PATHS
    for target in fast_paths.FAST_PATHS.values():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), target


def test_import_losskit_loads_no_framework():
    code = (
        "import sys, numpy as np, losskit as lk; "
        "lk.value_and_grad(lk.cross_entropy)(np.zeros((2, 3)), np.array([0, 2])); "
        "lk.value_and_grad(lk.linear_cross_entropy, (0, 1))(np.ones((2, 4)), np.ones((3, 4)), "
        "np.array([0, 1])); "
        "loaded = {'torch', 'jax', 'dask', 'matplotlib', 'numba', 'pyarrow'} & set(sys.modules); "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_fast_path_module_is_imported_on_first_use(scratch_registry, tmp_path, monkeypatch):
    source = "calls = []\n\ndef run(*args):\n    calls.append(args)\n    return 'fast'\n"
    (tmp_path / "probe_fast_path.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    dispatch.register_fast_path("probe", "probe_library", "probe_fast_path:run")
    assert "probe_fast_path" not in sys.modules
    assert dispatch.fast_path("probe", "other_library") is None
    assert dispatch.run_fast_path("probe", "probe_library", 1, 2) == "fast"
    assert sys.modules["probe_fast_path"].calls == [(1, 2)]
    assert dispatch.run_fast_path("probe", "other_library", 1, 2) is None


def test_a_fast_path_that_declines_leaves_the_portable_result(scratch_registry, monkeypatch, rng):
    seen = []

    def declining(spec, arrays, wrt):
        seen.append((spec.num_classes, spec.label_smoothing, tuple(wrt)))
        return None

    module = type(sys)("declining_fast_path")
    module.run = declining
    monkeypatch.setitem(sys.modules, "declining_fast_path", module)
    dispatch.register_fast_path("cross_entropy", "array_api_strict", "declining_fast_path:run")
    x, t = rng.standard_normal((6, 5)), rng.integers(0, 5, 6)
    value = lk.cross_entropy(xps.asarray(x), xps.asarray(t), label_smoothing=0.2)
    assert seen == [(5, 0.2, ())]
    assert float(value) == pytest.approx(float(lk.cross_entropy(x, t, label_smoothing=0.2)), rel=1e-12)


def test_numpy_fast_path_takes_gradients_and_declines_a_value_alone(monkeypatch, rng):
    calls = []
    real = numpy_kernel.cross_entropy_rows
    monkeypatch.setattr(numpy_kernel, "cross_entropy_rows", lambda *a, **k: calls.append(1) or real(*a, **k))
    x, t = rng.standard_normal((7, 4)), rng.integers(0, 4, 7)
    lk.cross_entropy(x, t)
    assert not calls
    lk.value_and_grad(lk.cross_entropy)(x, t)
    assert calls == [1]


def test_a_malformed_registration_is_refused(scratch_registry):
    with pytest.raises(ValueError, match="module:function"):
        dispatch.register_fast_path("cross_entropy", "numpy", "losskit.kernels.cross_entropy.fast")
