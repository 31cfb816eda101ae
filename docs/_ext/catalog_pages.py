"""Sphinx extension: one page per loss family, generated from :func:`losskit.catalog`.

At ``builder-inited`` it writes ``generated/losses/<family>.rst`` (and an index with the whole
catalogue) under the source directory.  Each loss gets its docstring through autodoc, the
catalogue's plain-text formula, the names of its PyTorch, Optax and Keras equivalents and a worked
example from :mod:`loss_examples` that is executed here, during the build, with its printed
output shown under the code.
"""

from __future__ import annotations

import contextlib
import io
import textwrap
from pathlib import Path

from loss_examples import EXAMPLES, example

import losskit

FAMILY_TITLES = {
    "regression": "Regression losses",
    "classification": "Classification losses",
    "divergence": "Divergences",
    "contrastive": "Contrastive and metric-learning losses",
    "ranking": "Ranking losses",
    "segmentation": "Segmentation losses",
    "sequence": "Sequence losses",
    "penalty": "Penalties",
    "metric": "Metric-learning losses",
    "boxes": "Bounding-box regression losses",
    "images": "Image and signal losses",
    "transport": "Optimal-transport losses",
    "preference": "Preference-optimisation losses",
    "policy": "Policy-gradient losses",
}

FAMILY_INTROS = {
    "regression": "Losses between real-valued predictions and targets, element by element.",
    "classification": (
        "Losses between class scores (logits, probabilities, log-probabilities or raw scores) "
        "and class labels. The input space of each loss says which of them it takes: give "
        "logits to a loss that takes logits, and let it apply the output layer itself, "
        "stably (see :doc:`/output-layers`)."
    ),
    "divergence": "Distances between probability distributions along the class axis.",
    "contrastive": "Losses over embeddings: pairs, triplets and batches of positives and negatives.",
    "ranking": "Losses that order items by their scores.",
    "segmentation": "Overlap losses over masks, per sample and class.",
    "sequence": "Losses over sequences of unknown alignment.",
    "penalty": "Weight penalties over any number of parameter arrays.",
    "metric": (
        "Losses that shape an embedding space: angular-margin softmax over normalised "
        "embeddings and class weights, proxies, pairs and triplets with their miners."
    ),
    "boxes": "Losses between predicted and target bounding boxes, from their overlap and geometry.",
    "images": "Losses between images or signals: structure, smoothness and robust penalties.",
    "transport": "Entropic optimal transport between point clouds or histograms.",
    "preference": (
        "Losses that align a language model with preferences between completions (DPO and its "
        "variants, SimPO, ORPO, CPO, KTO), computed from each completion's log-probability under "
        "the policy and, where the method uses one, a frozen reference model."
    ),
    "policy": (
        "Reinforcement-learning objectives on per-token log-probabilities: the clipped "
        "importance-ratio surrogate of PPO and GRPO with a KL penalty to a reference model."
    ),
}

_INPUT_SPACES = {
    "values": "real values",
    "probabilities": "probabilities",
    "logits": "logits (unnormalised log-probabilities)",
    "log-probabilities": "log-probabilities",
    "scores": "unbounded scores",
    "embeddings": "embedding vectors",
    "parameters": "model parameters",
    "boxes": "bounding boxes",
    "points": "point clouds or histograms",
}


def run_example(name: str) -> str:
    """Execute ``name``'s example and return what it printed."""
    out = io.StringIO()
    namespace = {"__name__": f"losskit_example_{name}"}
    with contextlib.redirect_stdout(out):
        exec(compile(example(name), f"<example {name}>", "exec"), namespace)
    return out.getvalue()


def _code(language: str, text: str) -> str:
    return f".. code-block:: {language}\n\n" + textwrap.indent(text.rstrip("\n"), "   ") + "\n"


def _literal(text: str | None) -> str:
    return f"``{text}``" if text else "—"


def loss_section(info: losskit.LossInfo) -> str:
    name = info.name
    if name not in EXAMPLES:
        raise RuntimeError(f"docs/_ext/loss_examples.py has no worked example for {name!r}")
    printed = run_example(name)
    if not printed.strip():
        raise RuntimeError(f"the worked example of {name!r} prints nothing")
    lines = [
        f".. _loss-{name}:",
        "",
        name,
        "-" * len(name),
        "",
        f".. autofunction:: losskit.{name}",
        "",
        f"**Input**: {_INPUT_SPACES.get(info.input_space, info.input_space)}.  "
        f"**Catalogue formula** (plain text): ``{info.formula}``",
        "",
        ".. rubric:: Worked example",
        "",
        "Run while this page was built; the number below is what the code printed.",
        "",
        _code("python", example(name)),
        _code("text", printed),
        ".. rubric:: Equivalents",
        "",
        ".. list-table::",
        "   :widths: 20 80",
        "",
        "   * - PyTorch",
        f"     - {_literal(info.torch)}",
        "   * - Optax",
        f"     - {_literal(info.optax)}",
        "   * - Keras",
        f"     - {_literal(info.keras)}",
        "",
    ]
    return "\n".join(lines) + "\n"


def family_page(family: str, infos: list[losskit.LossInfo]) -> str:
    title = FAMILY_TITLES.get(family, family.capitalize())
    head = [
        ".. This page is generated from losskit.catalog() by docs/_ext/catalog_pages.py.",
        "",
        f".. _family-{family}:",
        "",
        title,
        "=" * len(title),
        "",
        FAMILY_INTROS.get(family, ""),
        "",
        "In this family: " + ", ".join(f":func:`~losskit.{i.name}`" for i in infos) + ".",
        "",
    ]
    return "\n".join(head) + "\n" + "\n".join(loss_section(i) for i in infos)


def index_page(families: dict[str, list[losskit.LossInfo]]) -> str:
    rows = []
    for family, infos in families.items():
        for i in infos:
            rows += [
                f"   * - :func:`~losskit.{i.name}`",
                f"     - :ref:`{family} <family-{family}>`",
                f"     - {i.input_space}",
                f"     - {_literal(i.torch)}",
                f"     - {_literal(i.optax)}",
                f"     - {_literal(i.keras)}",
            ]
    toctree = "\n".join(f"   {family}" for family in families)
    count = sum(len(v) for v in families.values())
    return (
        ".. This page is generated from losskit.catalog() by docs/_ext/catalog_pages.py.\n\n"
        "Losses\n======\n\n"
        f"Every loss in :func:`losskit.catalog`, {count} of them, one page per family.  Each "
        "loss is shown with its formula and gradient, its options, a worked example computed "
        "when this site was built and its equivalents in PyTorch, Optax and Keras.\n\n"
        f".. toctree::\n   :maxdepth: 1\n\n{toctree}\n\n"
        ".. list-table:: The catalogue\n   :header-rows: 1\n   :widths: 22 14 14 16 17 17\n\n"
        "   * - loss\n     - family\n     - input\n     - PyTorch\n     - Optax\n     - Keras\n"
        + "\n".join(rows)
        + "\n"
    )


def _write(path: Path, text: str) -> None:
    """Write only when the text changed, so that Sphinx does not rebuild unchanged pages."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def generate(app) -> None:
    out = Path(app.srcdir) / "generated" / "losses"
    families: dict[str, list[losskit.LossInfo]] = {}
    for info in losskit.catalog():
        families.setdefault(info.family, []).append(info)
    wanted = {"index.rst"} | {f"{family}.rst" for family in families}
    for stale in out.glob("*.rst") if out.exists() else ():
        if stale.name not in wanted:
            stale.unlink()
    for family, infos in families.items():
        _write(out / f"{family}.rst", family_page(family, infos))
    _write(out / "index.rst", index_page(families))


def setup(app):
    app.connect("builder-inited", generate)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
