"""The module classes of losskit.torch are real classes written out from the catalog: the file
is in step with the catalog; every module pickles, is saved and loaded with a model holding it
(torch.save / torch.load and state_dict) and crosses a process boundary; the loaded module
computes what the original did; type checkers see each class (a misspelt name is an error)."""

from __future__ import annotations

import ast
import difflib
import importlib.util
import inspect
import io
import multiprocessing
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import losskit.torch as lkt
from losskit.torch import loss_modules
from tests.support.backends import BY_NAME
from tests.torch.test_modules import TORCH_CASES, module_call

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "tools" / "generate_torch_modules.py"

# values for the constructor arguments that have no default
REQUIRED = {"temperature": 2.0, "power": 1.5}


@pytest.fixture(autouse=True)
def _no_numba(monkeypatch):
    monkeypatch.setenv("LOSSKIT_DISABLE_NUMBA", "1")


def _generator():
    spec = importlib.util.spec_from_file_location("generate_torch_modules", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(
    torch.__version__.split("+")[0] != "2.13.0",
    reason="the file copies the torch.nn signatures of torch 2.13, the development version",
)
def test_generated_file_is_in_step_with_the_catalog():
    generator = _generator()
    want = generator.render()
    have = generator.TARGET.read_text()
    if have != want:
        diff = "".join(
            list(difflib.unified_diff(have.splitlines(True), want.splitlines(True), "file", "catalog"))[:60]
        )
        pytest.fail(
            f"{generator.TARGET.name} is out of date: run python tools/generate_torch_modules.py\n{diff}"
        )
    assert generator.main(["--check"]) == 0


def test_every_catalogued_loss_has_a_class_in_the_file():
    generated = set(loss_modules.LOSS_MODULES) | {"linear_cross_entropy"}
    assert set(lkt.modules_by_loss()) <= generated | set(lkt.modules._BUILT)
    for name, cls in loss_modules.LOSS_MODULES.items():
        assert cls.__module__ == "losskit.torch.loss_modules" and cls.loss_name == name
        assert getattr(lkt, cls.__name__) is cls


class Model(nn.Module):
    """A small model holding a loss, as training code does."""

    def __init__(self, criterion: nn.Module) -> None:
        super().__init__()
        self.head = nn.Linear(3, 3)
        self.criterion = criterion


def _default_instance(cls):
    if cls is lkt.LinearCrossEntropyLoss:
        return cls(4, 6, bias=True, label_smoothing=0.1)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    required = [
        p for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    return cls(**{p.name: REQUIRED[p.name] for p in required})


def _options(module):
    if isinstance(module, lkt.LinearCrossEntropyLoss):
        return module.extra_repr()
    opts = module.options() if callable(module.options) else dict(module.options)
    return {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in opts.items()}


def _same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("name", sorted(lkt.modules_by_loss()))
def test_every_module_pickles_and_saves_with_a_model(name):
    cls = lkt.modules_by_loss()[name]
    criterion = _default_instance(cls)

    again = pickle.loads(pickle.dumps(criterion))
    assert type(again) is cls and _options(again) == _options(criterion)

    model = Model(criterion)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert type(loaded.criterion) is cls and _options(loaded.criterion) == _options(criterion)
    _same_state(loaded, model)

    # the weights alone: state_dict saved, loaded into a fresh model
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh = Model(_default_instance(cls))
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    _same_state(fresh, model)


FIRST_CASES = {}
for _case in TORCH_CASES:
    FIRST_CASES.setdefault(_case.fn.__name__, _case)


@pytest.mark.parametrize("case", list(FIRST_CASES.values()), ids=lambda c: c.id)
def test_a_loaded_module_computes_what_the_saved_one_did(case, rng):
    """Options (tensor buffers among them) survive pickle and torch.save: the loaded module
    gives the same loss on the same arrays."""
    cls = lkt.modules_by_loss()[case.fn.__name__]
    if cls is lkt.LinearCrossEntropyLoss:
        torch.manual_seed(0)
        model = Model(cls(4, 6, bias=True, label_smoothing=0.1))
        x, t = torch.randn(5, 4), torch.randint(0, 6, (5,))
        args, per_call = [x, t], {}
    else:
        args, kwargs = BY_NAME["torch"].args(*case.make_args(rng))
        options, args, per_call = module_call(cls, case, args, kwargs)
        model = Model(cls(**options))
    want = model.criterion(*args, **per_call)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    torch.testing.assert_close(loaded.criterion(*args, **per_call), want, rtol=0, atol=0)
    unpickled = pickle.loads(pickle.dumps(model.criterion))
    torch.testing.assert_close(unpickled(*args, **per_call), want, rtol=0, atol=0)


def _evaluate(criterion, x, y):
    return criterion(x, y)


def test_a_module_crosses_a_spawned_process():
    """multiprocessing with the spawn start method (as mp.spawn and DataLoader workers use)
    pickles the module to the child."""
    x = torch.linspace(-2, 2, 12, dtype=torch.float64).reshape(3, 4)
    y = torch.zeros(3, 4, dtype=torch.float64)
    criterion = lkt.HuberLoss("sum", 0.5)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        got = pool.apply(_evaluate, (criterion, x, y))
    torch.testing.assert_close(got, criterion(x, y), rtol=0, atol=0)


def test_classes_are_static_for_type_checkers():
    """No module-level ``__getattr__`` (through which a checker sees ``Any``): every class is a
    ``class`` statement of the generated file, and a misspelt name is an AttributeError."""
    for module in (lkt, lkt.modules, loss_modules):
        assert "__getattr__" not in vars(module), module.__name__
    tree = ast.parse(Path(loss_modules.__file__).read_text())
    classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    assert classes == set(loss_modules.__all__)
    with pytest.raises(AttributeError):
        lkt.HubberLoss  # noqa: B018


@pytest.mark.slow
def test_mypy_sees_the_signatures(tmp_path):
    pytest.importorskip("mypy")
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import losskit.torch as lkt\n"
        'huber = lkt.HuberLoss("sum", 0.5)\n'
        "ce = lkt.CrossEntropyLoss(None, label_smoothing=0.1, z_loss=1e-4)\n"
        "typo = lkt.HubberLoss()\n"
        "wrong = lkt.MSELoss(delta=1.0)\n"
    )
    config = tmp_path / "mypy.ini"
    # torch and NumPy are not followed: the check is of losskit's own classes (and fast)
    config.write_text(
        "[mypy]\nignore_missing_imports = True\nfollow_imports = silent\n"
        "[mypy-torch.*,numpy.*,jax.*,scipy.*]\nfollow_imports = skip\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
            str(sample),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 2, result.stdout
    assert 'sample.py:4: error: Module has no attribute "HubberLoss"' in errors[0]
    assert 'sample.py:5: error: Unexpected keyword argument "delta" for "MSELoss"' in errors[1]
