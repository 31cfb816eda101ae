"""Shared fixtures: the array backends every loss must run on."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Triton chooses its interpreter (kernels run on CPU tensors through NumPy) when it is first
# imported, so it is chosen here, before anything imports it, on a machine without an NVIDIA GPU
# (where no Triton kernel could run otherwise): tests/kernels/test_triton*.py run the kernels so
if not os.path.exists("/dev/nvidiactl"):
    os.environ.setdefault("TRITON_INTERPRET", "1")
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

from hypothesis import settings  # noqa: E402

from tests.support.backends import BACKENDS  # noqa: E402

# CI runs the property tests on the same examples every time (LOSSKIT_HYPOTHESIS_PROFILE=ci in
# .ci/run), so a landing depends on the code, not on the draw; `make test` elsewhere keeps
# drawing new examples, and `make fuzz` runs long random searches
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("LOSSKIT_HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(params=BACKENDS, ids=lambda b: b.name)
def backend(request):
    return request.param
