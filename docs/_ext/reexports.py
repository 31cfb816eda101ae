"""Sphinx extension: resolve references to names that losskit re-exports or keeps internal.

- A docstring of :mod:`losskit.diagnostics.history` says ``:class:`History```; documented as
  ``losskit.diagnose`` (the same function, re-exported by the package), Sphinx looks for
  ``losskit.History`` and finds nothing.  When a ``py`` reference is not found, this looks for a
  documented ``losskit`` object whose full name ends with the target's name, preferring the one
  closest to the module the reference was written in, and links there.
- A reference to an internal module or object of losskit (``losskit.core.dispatch``, a
  module's private helper), which the site does not document, is shown as code without a link,
  provided that it exists: the target is imported to check, so a misspelt name still fails the
  strict build.
"""

from __future__ import annotations

import importlib
import sys

from sphinx.util.nodes import make_refnode


def _shared_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a.split("."), b.split(".")):
        if x != y:
            break
        n += 1
    return n


def _exists(path: str) -> bool:
    """Whether ``path`` (``package.module.attr...``) names a module or an object that exists."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def _internal(target: str, module: str) -> bool:
    if target.startswith("losskit."):
        return _exists(target)
    if module.startswith("losskit") and _exists(f"{module}.{target}"):
        return True
    # an unqualified name from a module's own namespace, e.g. a constant of the module
    # that defines the documented function
    return any(
        name.startswith("losskit") and _exists(f"{name}.{target}")
        for name in list(sys.modules)
        if "." not in target
    )


def resolve(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "").lstrip(".~")
    if not target:
        return None
    domain = env.get_domain("py")
    here = node.get("py:module") or "losskit"
    suffix = "." + target.rsplit(".", 1)[-1] if target.startswith("losskit.") else "." + target
    names = [n for n in domain.objects if n.startswith("losskit.") and n.endswith(suffix)]
    if names:
        near = target if "." in target else here
        best = max(names, key=lambda name: (_shared_prefix(name, near), -len(name)))
        obj = domain.objects[best]
        return make_refnode(app.builder, node["refdoc"], obj.docname, obj.node_id, contnode, best)
    if _internal(target, here):
        return contnode
    return None


def setup(app):
    app.connect("missing-reference", resolve)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
