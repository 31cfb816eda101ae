"""The documentation site: it builds strictly, its math renders offline, and it loads nothing
from the network.

The site is built once per session (``sphinx-build -W -n``: any warning fails) into a temporary
folder.  The cross-entropy's page is opened in headless Chromium from ``file://``; the rendered
DOM must hold MathJax's output and no raw TeX, and the screenshot (kept in
``build/docs-screenshot-cross-entropy.png``) must be a real picture.  Without Chromium the
browser tests skip, unless ``LOSSKIT_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.browser import browse as _browse
from tests.support.browser import chromium as _chromium
from tests.support.browser import colours

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SCREENSHOT = ROOT / "build" / "docs-screenshot-cross-entropy.png"

pytest.importorskip("sphinx", reason="the site needs the docs extra: pip install -e '.[docs]'")


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    if not (DOCS / "node_modules" / "mathjax" / "es5" / "tex-chtml.js").is_file():
        pytest.fail("MathJax is not installed: run `npm ci --prefix docs` (make test does it)")
    out = tmp_path_factory.mktemp("site") / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def _page_of(site: Path, function: str) -> Path:
    for page in sorted((site / "generated" / "losses").glob("*.html")):
        if f'id="losskit.{function}"' in page.read_text(encoding="utf-8"):
            return page
    raise AssertionError(f"no loss family page documents losskit.{function}")


@pytest.fixture(scope="session")
def rendered(site) -> tuple[str, Path]:
    chromium = _chromium()
    url = _page_of(site, "cross_entropy").as_uri()
    dom = _browse(chromium, "--dump-dom", url)
    assert dom.returncode == 0 and "<html" in dom.stdout, dom.stderr[-2000:]
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    shot = _browse(chromium, f"--screenshot={SCREENSHOT}", url)
    assert shot.returncode == 0 and SCREENSHOT.is_file(), shot.stderr[-2000:]
    return dom.stdout, SCREENSHOT


def test_every_family_has_a_page(site):
    import losskit

    pages = {p.stem for p in (site / "generated" / "losses").glob("*.html")}
    assert {info.family for info in losskit.catalog()} <= pages
    text = (site / "generated" / "losses" / "classification.html").read_text(encoding="utf-8")
    assert "Worked example" in text and "F.cross_entropy" in text


def test_math_renders_offline(rendered):
    dom, _ = rendered
    assert dom.count("<mjx-container") >= 50, "MathJax did not typeset the page"
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    body = re.sub(r"<mjx-assistive-mml\b.*?</mjx-assistive-mml>", " ", body, flags=re.S)
    body = re.sub(r"<mjx-container\b.*?</mjx-container>", " ", body, flags=re.S)
    visible = html.unescape(re.sub(r"<[^>]+>", " ", body))
    for raw in (r"\frac", r"\log", ":math:"):
        assert raw not in visible, f"raw TeX {raw!r} left on the page"


def test_screenshot_is_a_real_picture(rendered):
    _, path = rendered
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    image = imread(path)
    assert image.shape[0] >= 1000 and image.shape[1] >= 1000
    n = colours(path)
    assert n > 50, f"the screenshot looks blank: {n} colours"


def test_site_loads_nothing_from_the_network(site):
    external = re.compile(
        r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.I
    )
    offenders = []
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        offenders += [f"{page.relative_to(site)}: {m.group(0)}" for m in external.finditer(text)]
    for sheet in site.rglob("*.css"):
        text = sheet.read_text(encoding="utf-8", errors="replace")
        imports = re.findall(r"@import\s+url\(\s*[\"']?https?://[^)]*", text)
        offenders += [f"{sheet.relative_to(site)}: {m}" for m in imports]
    assert not offenders, "external resources:\n" + "\n".join(offenders[:20])
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()
