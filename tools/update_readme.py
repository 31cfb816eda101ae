"""Regenerate the README's loss table from ``losskit.catalog()``, and losskit.torch's module
classes with ``tools/generate_torch_modules.py`` (``make readme``)."""

from __future__ import annotations

import importlib.util
import pathlib
import re
import subprocess
import sys
from pathlib import Path

from losskit.core.catalog import markdown_table

BEGIN, END = "<!-- catalog:begin -->", "<!-- catalog:end -->"
README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def main() -> None:
    text = README.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    README.write_text(pattern.sub(f"{BEGIN}\n{markdown_table()}\n{END}", text))
    # the other file written from the catalog: losskit.torch's module classes (needs torch)
    if importlib.util.find_spec("torch") is not None:
        generator = Path(__file__).with_name("generate_torch_modules.py")
        subprocess.run([sys.executable, str(generator)], check=True)


if __name__ == "__main__":
    main()
