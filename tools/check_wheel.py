"""The checks of ``make build-check``: what the built wheel holds, and the demo on the core install.

    python tools/check_wheel.py contents dist/losskit-X.Y.Z-py3-none-any.whl
    build/wheel-venv/bin/python tools/check_wheel.py demo --out build/demo-out

``contents`` checks that the wheel ships ``py.typed`` and the licence (``LICENSE`` in its
dist-info, named by ``License-File`` and ``License-Expression: Apache-2.0`` in its metadata).
``demo`` runs ``losskit demo`` with the ``losskit`` command next to the Python that runs this
script (the clean virtual environment's, where the wheel was installed without extras), prints
its report and how long it took, and fails if it exits non-zero, does not finish its report or,
without matplotlib, does not say so or writes a file anyway.
"""

from __future__ import annotations

import argparse
import email.parser
import importlib.util
import subprocess
import sys
import time
import zipfile
from pathlib import Path

PLOT_NOTE = "pip install 'losskit[plot]'"


def check_contents(wheel: Path) -> list[str]:
    problems = []
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        if "losskit/py.typed" not in names:
            problems.append("losskit/py.typed is missing")
        dist_info = sorted({n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")})
        if len(dist_info) != 1:
            return problems + [f"expected one .dist-info folder, found {dist_info}"]
        licence = f"{dist_info[0]}/licenses/LICENSE"
        if licence not in names:
            problems.append(f"{licence} is missing")
        elif b"Apache License" not in zf.read(licence)[:200]:
            problems.append(f"{licence} is not the Apache License")
        meta = email.parser.Parser().parsestr(zf.read(f"{dist_info[0]}/METADATA").decode("utf-8"))
    expression = meta.get("License-Expression")
    if expression != "Apache-2.0":
        problems.append(f"METADATA: License-Expression is {expression!r}, not 'Apache-2.0'")
    if "LICENSE" not in (meta.get_all("License-File") or []):
        problems.append("METADATA: no License-File: LICENSE")
    return problems


def check_demo(out: Path) -> list[str]:
    command = [str(Path(sys.executable).with_name("losskit")), "demo", "--no-progress", "--out", str(out)]
    start = time.perf_counter()
    r = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    print(r.stdout, end="")
    print(r.stderr, end="", file=sys.stderr)
    print(f"core-install demo: {seconds:.1f} s, exit status {r.returncode}", flush=True)
    if r.returncode != 0:
        return [f"losskit demo exited with status {r.returncode}"]
    problems = []
    if "Done in" not in r.stdout:
        problems.append("the demo's report did not reach its end")
    if importlib.util.find_spec("matplotlib") is None:
        if r.stdout.count(PLOT_NOTE) != 1:
            problems.append(f"without matplotlib the report should say once: {PLOT_NOTE}")
        if out.exists() and any(out.iterdir()):
            problems.append(f"without matplotlib the demo wrote into {out}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="check", required=True)
    sub.add_parser("contents").add_argument("wheel", type=Path)
    sub.add_parser("demo").add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    problems = check_contents(args.wheel) if args.check == "contents" else check_demo(args.out)
    for p in problems:
        print(f"build-check: {p}", file=sys.stderr)
    if not problems and args.check == "contents":
        print(f"wheel contents ok: {args.wheel.name} has py.typed and its LICENSE (Apache-2.0)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
