"""Sphinx extension: serve MathJax from the site itself, so that math renders offline.

MathJax 3 comes from npm (``docs/package.json``, installed by ``npm ci --prefix docs``); its
``es5`` folder is copied to ``_static/mathjax`` of the HTML output, and ``conf.py`` points
``mathjax_path`` at it.  Nothing is fetched when a page is viewed, also from ``file://``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.errors import ExtensionError


def _source(app) -> Path:
    return Path(app.srcdir) / "node_modules" / "mathjax" / "es5"


def check(app) -> None:
    if app.builder.format == "html" and not (_source(app) / "tex-chtml.js").is_file():
        raise ExtensionError(
            f"MathJax is not installed in {_source(app)}: run `npm ci --prefix docs` "
            "(make docs does it)"
        )


def copy(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        shutil.copytree(_source(app), Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True)


def setup(app):
    app.connect("builder-inited", check)
    app.connect("build-finished", copy)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
