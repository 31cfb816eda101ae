"""losskit.keras on Keras 3's JAX and PyTorch backends (each in its own process: the backend
is fixed when Keras is imported), the generated classes in step with the catalog, and the
message of a missing Keras."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import losskit as lk

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "LOSSKIT_DISABLE_NUMBA": "1"}
    return {**env, **extra}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend(backend):
    run = subprocess.run(
        [sys.executable, "-m", "tests.keras.backend_checks", backend],
        cwd=ROOT,
        env=_env(KERAS_BACKEND=backend),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    lines = run.stdout.splitlines()
    assert lines[-1] == "ok"
    assert any("Tversky, weighted" in line for line in lines)
    assert any("saved and loaded" in line for line in lines)


def test_generated_classes_match_the_catalog():
    run = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "generate_keras_losses.py"), "--check"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]


def test_one_class_per_catalogued_loss():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    lkk = pytest.importorskip("losskit.keras")
    assert set(lkk.KERAS_LOSSES) == {info.name for info in lk.catalog()}
    for name, cls in lkk.KERAS_LOSSES.items():
        assert cls.function is lk.lookup(name).function
        assert cls.__module__ == "losskit.keras.losses"
        assert cls.__doc__


def test_missing_keras_names_the_extra(tmp_path):
    # a stand-in package that fails to import, ahead of the real Keras on the path
    (tmp_path / "keras").mkdir()
    (tmp_path / "keras" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'keras'\", name='keras')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", "import losskit.keras"],
        env=_env(PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT / 'src'}"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode != 0
    assert "pip install 'losskit[keras]'" in run.stderr


def test_a_missing_keras_backend_is_named():
    run = subprocess.run(
        [sys.executable, "-c", "import losskit.keras"],
        env=_env(KERAS_BACKEND="tensorflow"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if run.returncode == 0:
        pytest.skip("TensorFlow is installed here")
    assert "set KERAS_BACKEND" in run.stderr, run.stderr[-2000:]
