"""The layers of losskit and the one direction of their imports, read from the source.

Every import statement of every module counts, including the ones inside functions (a lazy
import is still a dependency).  The rules:

1. no import cycle between losskit's modules;
2. the core imports nothing of losskit outside itself, and of other libraries only NumPy and
   array-api-compat (it never names a framework);
3. a loss module imports only the core: kernels and framework adapters are reached through the
   fast-path seam (:mod:`losskit.core.dispatch`, table in :mod:`losskit.fast_paths`);
4. each layer imports only the layers below it (core < losses < kernels, adapters < applications
   < the package root), see ``ALLOWED``;
5. each framework is imported in its own package only: torch in ``losskit.torch``, jax in
   ``losskit.jax``, dask (and distributed, pyarrow) in ``losskit.evaluation``, matplotlib in
   ``losskit.plotting``, numba in ``losskit.kernels``, triton in ``losskit.torch.triton``,
   tensorboard in ``losskit.diagnostics``; each trainer in its own callback module: lightning in
   ``losskit.callbacks.lightning``, transformers (and accelerate) in
   ``losskit.callbacks.huggingface``, keras in ``losskit.keras`` (the losses) and
   ``losskit.callbacks.keras``.

``test_each_rule_catches_a_bad_import`` plants one bad import per rule in a copy of the tree and
checks that it is reported, so the checker itself cannot silently pass everything.
"""

from __future__ import annotations

import ast
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "losskit"

# layer of a module: the longest matching prefix wins
LAYERS = {
    "losskit.core": "core",
    "losskit.losses": "losses",
    "losskit.fast_paths": "seam",
    "losskit.kernels": "kernels",
    "losskit.torch": "torch",
    "losskit.jax": "jax",
    "losskit.keras": "keras",
    "losskit.evaluation": "evaluation",
    "losskit.diagnostics": "diagnostics",
    "losskit.callbacks": "callbacks",
    "losskit.plotting": "plotting",
    "losskit.cli": "cli",
    "losskit.demo": "demo",
    "losskit": "root",
}
_BELOW_APPLICATIONS = {"core", "losses", "kernels", "torch", "jax", "evaluation"}
_APPLICATIONS = {"diagnostics", "plotting", "callbacks", "cli", "demo"}
# the layers each layer may import (its own always included)
ALLOWED = {
    "core": {"core"},
    "losses": {"core"},
    "seam": {"core"},
    "kernels": {"core"},
    "torch": {"core", "losses", "kernels"},
    "jax": {"core", "losses", "kernels"},
    # the Keras losses call the array-API losses on the backend's arrays
    "keras": {"core", "losses"},
    "evaluation": {"core", "losses"},
    "diagnostics": {"core", "losses"},
    "plotting": {"core", "losses", "diagnostics"},
    # the training callbacks: diagnostics inside a trainer (each trainer in its own module)
    "callbacks": {"core", "losses", "diagnostics"},
    # the command line and the demo are programs written against the public package
    "cli": _BELOW_APPLICATIONS | _APPLICATIONS | {"root"},
    "demo": _BELOW_APPLICATIONS | _APPLICATIONS | {"root"},
    "root": set(LAYERS.values()),
}
# third-party libraries the core may import; everything else it imports is the standard library
CORE_LIBRARIES = {"numpy", "array_api_compat"}
# a framework may be imported only inside its own package
FRAMEWORK_HOMES = {
    "torch": "losskit.torch",
    "jax": "losskit.jax",
    "jaxlib": "losskit.jax",
    "dask": "losskit.evaluation",
    "distributed": "losskit.evaluation",
    "pyarrow": "losskit.evaluation",
    "matplotlib": "losskit.plotting",
    "numba": "losskit.kernels",
    "triton": "losskit.torch.triton",
    "tensorboard": "losskit.diagnostics",
    "lightning": "losskit.callbacks.lightning",
    "pytorch_lightning": "losskit.callbacks.lightning",
    "transformers": "losskit.callbacks.huggingface",
    "accelerate": "losskit.callbacks.huggingface",
    "keras": ("losskit.keras", "losskit.callbacks.keras"),
}


@dataclass(frozen=True)
class Import:
    importer: str  # module doing the import
    imported: str  # module imported (a losskit module, or a top-level third-party name)
    line: int

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.imported}"


def module_names(root: Path) -> dict[str, Path]:
    """``losskit.x.y`` -> path, for every ``.py`` file under the package folder ``root``."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _resolve(importer: str, is_package: bool, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imports(root: Path) -> list[Import]:
    """Every import of every module under ``root``, at any depth of the code."""
    modules = module_names(root)
    found = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node.module, node.level)
                if base == "__future__":
                    continue
                # ``from package import module`` depends on that module, not on the package
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in targets:
                if not target.startswith("losskit"):
                    target = target.split(".")[0]
                elif target not in modules:  # ``import losskit.x.y``: the deepest existing module
                    while target not in modules and "." in target:
                        target = target.rsplit(".", 1)[0]
                found.append(Import(name, target, node.lineno))
    return found


def layer_of(module: str) -> str:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def cycles(found: list[Import]) -> list[list[str]]:
    """The import cycles among losskit's modules (strongly connected components of size > 1,
    or a module importing itself), each as a sorted list of modules."""
    graph: dict[str, set[str]] = {}
    for imp in found:
        if imp.imported.startswith("losskit"):
            graph.setdefault(imp.importer, set()).add(imp.imported)
            graph.setdefault(imp.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def violations(root: Path) -> list[str]:
    """Every broken rule in the package at ``root``, one line each."""
    found = imports(root)
    problems = [f"import cycle: {' -> '.join(c)}" for c in cycles(found)]
    stdlib = set(sys.stdlib_module_names)
    for imp in found:
        layer = layer_of(imp.importer)
        if imp.imported.startswith("losskit"):
            target = layer_of(imp.imported)
            if target != layer and target not in ALLOWED[layer]:
                problems.append(f"{imp}: the {layer} layer may not import the {target} layer")
            continue
        home = FRAMEWORK_HOMES.get(imp.imported)
        homes = (home,) if isinstance(home, str) else home or ()
        if homes and not any(imp.importer == h or imp.importer.startswith(h + ".") for h in homes):
            problems.append(f"{imp}: {imp.imported} may be imported only in {' or '.join(homes)}")
        if layer == "core" and imp.imported not in stdlib and imp.imported not in CORE_LIBRARIES:
            problems.append(f"{imp}: the core may import only the standard library, {CORE_LIBRARIES}")
    return problems


# -- the rules hold for losskit ----------------------------------------------------------------


def test_the_source_keeps_its_layers():
    assert violations(SOURCE) == []


def test_every_module_has_a_layer_and_lazy_imports_are_seen():
    found = {(imp.importer, imp.imported) for imp in imports(SOURCE)}
    assert {layer_of(m) for m in module_names(SOURCE)} <= set(ALLOWED)
    # imports inside functions count: these two are lazy
    assert ("losskit.cli.demo", "losskit.demo") in found
    assert ("losskit.kernels.cross_entropy", "losskit.kernels.cross_entropy_numba") in found


def test_the_core_and_losses_never_name_a_framework_module_path():
    # the fast paths are named in one table outside the core, as strings
    for path in list((SOURCE / "core").rglob("*.py")) + list((SOURCE / "losses").rglob("*.py")):
        text = path.read_text()
        for package in ("losskit.torch", "losskit.jax", "losskit.kernels"):
            assert f'"{package}' not in text, f"{path.name} names {package}"


# -- the checker catches each kind of bad import -----------------------------------------------

# (module file to change, line to add inside a function, expected words of the violation)
BAD_IMPORTS = {
    "cycle": ("core/validation.py", "from .reduction import make_reducer", "import cycle"),
    "core imports a loss": (
        "core/numerics.py",
        "from ..losses.regression import mse",
        "the core layer may not import the losses layer",
    ),
    "core imports a framework": (
        "core/backend.py",
        "import torch",
        "torch may be imported only in losskit.torch",
    ),
    "core imports a third-party library": ("core/catalog.py", "import scipy", "the core may import only"),
    "loss imports a kernel": (
        "losses/classification.py",
        "from ..kernels.cross_entropy import cross_entropy_rows",
        "the losses layer may not import the kernels layer",
    ),
    "loss imports an adapter": (
        "losses/linear_cross_entropy.py",
        "from ..torch.functional import LinearCrossEntropyFunction",
        "the losses layer may not import the torch layer",
    ),
    "kernel imports an adapter": (
        "kernels/threads.py",
        "from ..torch import ops",
        "the kernels layer may not import the torch layer",
    ),
    "torch outside torch/": (
        "losses/regression.py",
        "import torch.nn",
        "torch may be imported only in losskit.torch",
    ),
    "jax outside jax/": (
        "kernels/cross_entropy.py",
        "import jax.numpy as jnp",
        "jax may be imported only in losskit.jax",
    ),
    "dask outside evaluation/": (
        "diagnostics/history.py",
        "import dask.array",
        "dask may be imported only in losskit.evaluation",
    ),
    "matplotlib outside plotting": (
        "cli/explain.py",
        "from matplotlib import pyplot",
        "matplotlib may be imported only in losskit.plotting",
    ),
    "lightning outside its callback": (
        "callbacks/_tracker.py",
        "import lightning.pytorch",
        "lightning may be imported only in losskit.callbacks.lightning",
    ),
    "keras in another callback": (
        "callbacks/huggingface.py",
        "import keras",
        "keras may be imported only in losskit.keras or losskit.callbacks.keras",
    ),
    "transformers outside its callback": (
        "diagnostics/history.py",
        "from transformers import TrainerState",
        "transformers may be imported only in losskit.callbacks.huggingface",
    ),
    "a callback imports an adapter": (
        "callbacks/lightning.py",
        "from ..torch import ops",
        "the callbacks layer may not import the torch layer",
    ),
    "diagnostics imports the callbacks": (
        "diagnostics/history.py",
        "from ..callbacks import LossTracker",
        "the diagnostics layer may not import the callbacks layer",
    ),
    "an adapter imports an application": (
        "jax/functional.py",
        "from ..diagnostics import diagnose",
        "the jax layer may not import the diagnostics layer",
    ),
}


@pytest.fixture
def copied_tree(tmp_path):
    shutil.copytree(SOURCE, tmp_path / "losskit", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "losskit"


@pytest.mark.parametrize("rule", sorted(BAD_IMPORTS))
def test_each_rule_catches_a_bad_import(copied_tree, rule):
    assert violations(copied_tree) == []
    relative, statement, expected = BAD_IMPORTS[rule]
    path = copied_tree / relative
    # planted inside a function, where a lazy import would hide from a module-level check
    path.write_text(path.read_text() + f"\n\ndef _planted():\n    {statement}\n")
    problems = violations(copied_tree)
    assert any(expected in p for p in problems), problems
    planted_in = "losskit." + relative.replace("/", ".").removesuffix(".py")
    assert all(planted_in in p for p in problems), problems
