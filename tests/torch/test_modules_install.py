"""The framework extras install beside the user's framework: ranges, not pins, in pyproject and
in the built wheel's metadata; pip, given the wheel with ``[torch]``, keeps a torch already
installed anywhere in the range; development pins its versions in constraints-dev.txt, which
make installs with.  Without its framework, ``losskit.torch`` / ``losskit.jax`` name the extra.

How pip's choice is checked offline: the wheel is built from a copy of the sources without
build isolation; a virtual environment without pip gets stand-in distributions (metadata only:
``<name>-<version>.dist-info/METADATA``) of a chosen torch and of losskit's dependencies, and
``pip --python <env> install --dry-run --no-index --report`` says what it would install there.
With no index and no wheel directory, pip can only keep what is installed: the report lists
losskit alone when the torch there satisfies the extra, and pip fails when it does not."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import venv
from email.parser import Parser
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
# inside the torch extra's range, and outside it
KEPT = ["2.7.0", "2.8.0", "2.13.0", "2.13.0+cpu", "2.14.1"]
REFUSED = ["2.4.0", "2.6.0"]


def _extra(name: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["optional-dependencies"][name]]


def test_torch_and_jax_extras_are_ranges():
    (torch_req,) = [r for r in _extra("torch") if r.name == "torch"]
    for v in KEPT:
        assert torch_req.specifier.contains(Version(v), prereleases=False), v
    for v in REFUSED:
        assert not torch_req.specifier.contains(Version(v)), v
    assert not any(s.operator in ("==", "===", "~=") for s in torch_req.specifier)
    (jax_req,) = [r for r in _extra("jax") if r.name == "jax"]
    assert jax_req.specifier.contains("0.4.32") and jax_req.specifier.contains("0.10.2")
    assert not any(s.operator in ("==", "===", "~=") for s in jax_req.specifier)


def test_development_pins_torch_in_the_constraints_make_uses():
    lines = [line.strip() for line in (ROOT / "constraints-dev.txt").read_text().splitlines()]
    pins = [Requirement(line) for line in lines if line and not line.startswith("#")]
    assert [str(r) for r in pins if r.name == "torch"] == ["torch==2.13.0"]
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -c constraints-dev.txt -e '.[dev]'" in makefile
    # the pin lies inside the extra's range, and this environment was installed with it
    (torch_req,) = _extra("torch")
    assert torch_req.specifier.contains("2.13.0")
    assert Version(importlib.metadata.version("torch")).base_version == "2.13.0"


@pytest.mark.parametrize(("module", "extra"), [("torch", "torch"), ("jax", "jax")])
def test_a_missing_framework_names_the_extra(module, extra):
    code = (
        "import sys\n"
        "class Hide:  # a finder before the others that finds no such module\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.partition('.')[0] == {module!r}:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "import losskit\n"
        "import numpy as np\n"
        "assert float(losskit.mse(np.array([1.0, 2.0]), np.zeros(2))) == 2.5  # losskit itself works\n"
        "try:\n"
        f"    import losskit.{module}\n"
        "except ModuleNotFoundError as error:\n"
        "    print(error.name)\n"
        "    print(error)\n"
        "else:\n"
        "    raise SystemExit('imported')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    name, message = out.stdout.splitlines()[:2]
    assert name == module
    assert f"pip install 'losskit[{extra}]'" in message


def _pip_env() -> dict[str, str]:
    """pip with no index, no wheel directory, no configuration and no global constraint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """losskit's wheel, built from a copy of the sources (no build isolation, no network)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "losskit"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp),
            str(source),
        ],
        check=True,
        env=_pip_env(),
        timeout=600,
        capture_output=True,
    )
    (built,) = tmp.glob("losskit-*.whl")
    return built


def _metadata(wheel: Path):
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(z.read(name).decode())


@pytest.mark.slow
def test_the_wheels_torch_extra_is_a_range(wheel):
    requires = [Requirement(r) for r in _metadata(wheel).get_all("Requires-Dist")]
    torch_reqs = [
        r for r in requires if r.name == "torch" and r.marker and r.marker.evaluate({"extra": "torch"})
    ]
    assert len(torch_reqs) == 1
    for v in KEPT:
        assert torch_reqs[0].specifier.contains(Version(v)), v
    for v in REFUSED:
        assert not torch_reqs[0].specifier.contains(Version(v)), v
    # nothing installed without the extra pulls torch in
    assert not any(
        r.name == "torch" and (r.marker is None or r.marker.evaluate({"extra": ""})) for r in requires
    )


def _env_with(tmp: Path, wheel: Path, torch_version: str) -> Path:
    """A virtual environment holding stand-ins of torch ``torch_version`` and of losskit's
    dependencies at the versions installed here."""
    venv.create(tmp, with_pip=False)
    python = tmp / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    installed = {"torch": torch_version}
    for r in _metadata(wheel).get_all("Requires-Dist"):
        req = Requirement(r)
        if req.marker is None:
            installed[req.name] = importlib.metadata.version(req.name)
    for name, version in installed.items():
        info = Path(purelib) / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "INSTALLER").write_text("pip\n")
        (info / "RECORD").write_text("")
    return python


def _dry_run(python: Path, wheel: Path, report: Path):
    return subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--dry-run", "--no-index"]
        + ["--report", str(report), f"{wheel}[torch]"],
        capture_output=True,
        text=True,
        env=_pip_env(),
        timeout=600,
    )


@pytest.mark.slow
@pytest.mark.parametrize("torch_version", ["2.7.0", "2.8.0", "2.13.0"])
def test_pip_keeps_a_torch_in_range(wheel, tmp_path, torch_version):
    python = _env_with(tmp_path / "env", wheel, torch_version)
    result = _dry_run(python, wheel, tmp_path / "report.json")
    assert result.returncode == 0, result.stdout + result.stderr
    installs = json.loads((tmp_path / "report.json").read_text())["install"]
    assert [item["metadata"]["name"] for item in installs] == ["losskit"]
    assert "torch>=" in result.stdout and f"({torch_version})" in result.stdout  # kept, as pip says


@pytest.mark.slow
def test_pip_refuses_a_torch_below_the_range(wheel, tmp_path):
    """The stand-in method can fail: below the range, with nothing to install from, pip stops."""
    python = _env_with(tmp_path / "env", wheel, "2.6.0")
    result = _dry_run(python, wheel, tmp_path / "report.json")
    assert result.returncode != 0
    assert "torch>=" in result.stderr


@pytest.mark.slow
def test_pip_keeps_this_environments_torch(wheel, tmp_path):
    """Into this very environment (torch 2.13.0+cpu, the development pin): nothing but losskit."""
    result = _dry_run(Path(sys.executable), wheel, tmp_path / "report.json")
    assert result.returncode == 0, result.stdout + result.stderr
    installs = json.loads((tmp_path / "report.json").read_text())["install"]
    assert [item["metadata"]["name"] for item in installs] == ["losskit"]
