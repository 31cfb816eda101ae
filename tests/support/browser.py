"""Headless Chromium for the tests that look at rendered pages (the documentation site, the
HTML report of ``losskit diagnose``).

Without Chromium those tests skip, unless ``LOSSKIT_REQUIRE_BROWSER=1`` (CI sets it), where they
fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

__all__ = ["chromium", "browse", "colours"]


def chromium() -> str:
    """The Chromium executable; skips the test (or fails it under LOSSKIT_REQUIRE_BROWSER=1)
    when there is none."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("LOSSKIT_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed, and LOSSKIT_REQUIRE_BROWSER=1 requires it")
        pytest.skip(
            "chromium is not installed (apt-get install chromium); set LOSSKIT_REQUIRE_BROWSER=1 to fail"
        )
    return found


def browse(executable: str, *args: str, window: str = "1280,2000") -> subprocess.CompletedProcess:
    """Run headless Chromium with ``args`` (e.g. ``--dump-dom URL`` or ``--screenshot=PNG URL``),
    giving the page's scripts ten seconds of virtual time."""
    return subprocess.run(
        [executable, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={window}",
         "--virtual-time-budget=10000", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


def colours(png_path, stride: int = 7) -> int:
    """How many different colours a screenshot has (sampled every ``stride`` pixels): a blank
    page has a handful, a page with text and pictures hundreds."""
    from matplotlib.image import imread

    image = imread(png_path)
    return len({tuple(px) for px in (image[::stride, ::stride, :3] * 255).astype(int).reshape(-1, 3)})
