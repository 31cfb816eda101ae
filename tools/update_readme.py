"""Regenerate the README's loss table from ``losskit.catalog()`` (``make readme``)."""

from __future__ import annotations

import pathlib
import re

from losskit.core.catalog import markdown_table

BEGIN, END = "<!-- catalog:begin -->", "<!-- catalog:end -->"
README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def main() -> None:
    text = README.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    README.write_text(pattern.sub(f"{BEGIN}\n{markdown_table()}\n{END}", text))


if __name__ == "__main__":
    main()
