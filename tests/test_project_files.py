"""The project's own files: one version everywhere, the changelog's form, the licence, the
core dependencies."""

from __future__ import annotations

import datetime
import importlib.metadata
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import losskit

ROOT = Path(__file__).resolve().parents[1]
SEMVER = r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?"
HEADING = re.compile(r"^## \[(?P<name>[^\]]+)\](?: - (?P<date>\S+))?\s*$")


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _changelog_sections() -> list[tuple[str, str | None]]:
    sections = []
    for line in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            m = HEADING.match(line)
            assert m, f"CHANGELOG.md: a section heading that is not '## [X.Y.Z] - YYYY-MM-DD': {line!r}"
            sections.append((m["name"], m["date"]))
    return sections


def _version_key(v: str) -> tuple[int, int, int]:
    major, minor, patch = re.match(SEMVER, v).groups()
    return int(major), int(minor), int(patch)


def test_version_is_a_semantic_version():
    assert re.fullmatch(SEMVER, losskit.__version__)


def test_version_matches_the_installed_metadata():
    assert losskit.__version__ == importlib.metadata.version("losskit")


def test_version_has_one_source():
    project = _pyproject()
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "losskit.__version__"}
    init = (ROOT / "src" / "losskit" / "__init__.py").read_text(encoding="utf-8")
    # a plain literal: setuptools reads it without importing losskit
    assert re.findall(r'^__version__ = "([^"]+)"$', init, flags=re.M) == [losskit.__version__]


def test_command_line_reports_the_version():
    r = subprocess.run(
        [sys.executable, "-m", "losskit", "--version"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0 and r.stdout.strip() == f"losskit {losskit.__version__}"


def test_changelog_form():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    assert "Keep a Changelog" in text and "Semantic Versioning" in text
    sections = _changelog_sections()
    assert sections[0] == ("Unreleased", None), "the first section is '## [Unreleased]', without a date"
    released = sections[1:]
    assert released, "no released version in CHANGELOG.md"
    for name, date in released:
        assert re.fullmatch(SEMVER, name), f"not a version: {name}"
        assert date is not None, f"{name} has no date"
        datetime.date.fromisoformat(date)  # YYYY-MM-DD
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", date)
    versions = [_version_key(name) for name, _ in released]
    assert versions == sorted(versions, reverse=True) and len(set(versions)) == len(versions)
    dates = [date for _, date in released]
    assert dates == sorted(dates, reverse=True)
    kinds = set(re.findall(r"^### (.+)$", text, flags=re.M))
    assert kinds <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}, kinds


def test_changelog_newest_release_is_the_version():
    newest = _changelog_sections()[1][0]
    assert newest == losskit.__version__


LICENSE_START = """
                                 Apache License
                           Version 2.0, January 2004
                        http://www.apache.org/licenses/
"""


def test_license_is_the_apache_2_text():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith(LICENSE_START)
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert "APPENDIX: How to apply the Apache License to your work." in text
    assert 'Licensed under the Apache License, Version 2.0 (the "License");' in text
    assert len(text.splitlines()) == 202  # the standard text, unmodified


def test_license_in_the_metadata():
    project = _pyproject()["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    meta = importlib.metadata.metadata("losskit")
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]


def test_core_dependencies_cover_the_demo():
    # the demo's speed needs threadpoolctl: a core dependency, not an extra
    requires = importlib.metadata.requires("losskit") or []
    core = [r for r in requires if "extra ==" not in r]
    names = {re.match(r"[A-Za-z0-9_.-]+", r)[0].lower() for r in core}
    assert {"numpy", "array-api-compat", "threadpoolctl"} <= names
    assert not {"matplotlib", "tqdm"} & names


def test_wheel_ships_the_licence(tmp_path):
    pytest.importorskip("build")
    pytest.importorskip("setuptools")
    # a copy of what the build reads, so nothing is written into the source tree
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE"):
        shutil.copy2(ROOT / name, tree / name)
    r = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check"]
        + ["--outdir", str(tmp_path / "dist"), str(tree)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import check_wheel
    finally:
        sys.path.remove(str(ROOT / "tools"))
    (wheel,) = (tmp_path / "dist").glob("losskit-*.whl")
    assert check_wheel.check_contents(wheel) == []
    # the changelog travels in the metadata, after the README, as the long description
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        description = archive.read(name).decode().split("\n\n", 1)[1]
    assert description.index("# losskit") < description.index("# Changelog")
    assert f"## [{losskit.__version__}]" in description
