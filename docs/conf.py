"""Sphinx configuration of the losskit documentation site (`make docs`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# the API page of losskit.keras imports Keras, which needs a backend that is installed
os.environ.setdefault("KERAS_BACKEND", "jax")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import losskit  # noqa: E402

project = "losskit"
author = "The losskit authors"
copyright = "The losskit authors"
release = losskit.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_parser",
    "sphinxarg.ext",
    "catalog_pages",
    "site_figures",
    "offline_mathjax",
    "reexports",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "node_modules", "Thumbs.db", ".DS_Store"]

# the docstrings are reST with Google-style sections
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # a dataclass's Attributes: as fields, not a second description
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_inherit_docstrings = False  # not the docstrings of torch.nn.Module.forward and the like

# Markdown pages: $...$ and $$...$$ math, ::: fences, and anchors for their headings
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# MathJax 3 served from the site itself (docs/_ext/offline_mathjax.py), never from a CDN
mathjax_path = "mathjax/tex-chtml.js"

html_theme = "furo"
html_title = f"losskit {release}"
html_static_path: list[str] = []
html_show_sourcelink = False

# strict builds (-W -n): only third-party types that cannot be resolved offline are ignored
nitpicky = True
nitpick_ignore = [
    ("py:class", "Array"),
    # the Literal aliases of the reduction argument (losskit.core.reduction)
    ("py:class", "Reduction"),
    ("py:class", "BatchReduction"),
    ("py:class", "numpy.ndarray"),
    ("py:class", "torch.Tensor"),
    ("py:class", "collections.abc.Callable"),
    ("py:class", "collections.abc.Sequence"),
    ("py:class", "collections.abc.Mapping"),
    ("py:class", "os.PathLike"),
    ("py:class", "pathlib.Path"),
    # autodoc splits the string annotation dict[str, str] of a dataclass field at its comma
    ("py:class", "dict[str"),
]
