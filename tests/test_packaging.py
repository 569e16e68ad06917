"""Packaging: environment.yml agrees with pyproject.toml; CI pins what users get as a range."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name


def split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    assert m, req
    return m.group(1).lower(), m.group(2).replace(" ", "")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_matches_pyproject():
    deps = dict(split(r) for r in pyproject()["project"]["dependencies"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "conda-forge" in env["channels"]
    conda = {}
    for item in env["dependencies"]:
        if isinstance(item, str) and item not in ("pip",) and not item.startswith("python="):
            name, spec = split(item)
            conda[name] = spec
    want = {CONDA_NAMES.get(k, k): v for k, v in deps.items()}
    assert conda == want
    pip_part = next(i for i in env["dependencies"] if isinstance(i, dict))["pip"]
    assert "-e ." in pip_part


def test_environment_python_satisfies_requires_python():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    py = next(i for i in env["dependencies"] if isinstance(i, str) and i.startswith("python="))
    minimum = pyproject()["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, py.split("=")[1].split("."))) >= tuple(map(int, minimum.split(".")))


def test_ci_lock_pins_cpu_torch_inside_the_user_range():
    lock = dict(
        split(line) for line in (ROOT / "requirements/ci.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert lock["torch"] == "==2.13.0"
    deps = dict(split(r) for r in pyproject()["project"]["dependencies"])
    from packaging.specifiers import SpecifierSet

    for name, spec in deps.items():
        pinned = lock[name.replace("_", "-")].removeprefix("==")
        assert pinned in SpecifierSet(spec), (name, pinned, spec)


def test_no_bare_torch_requirement():
    for req in pyproject()["project"]["dependencies"]:
        name, spec = split(req)
        assert spec, f"{name} needs a version range"


def test_console_script_runs():
    exe = shutil.which("optimlab") or pytest.skip("optimlab console script not on PATH")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True)
    assert "verify" in out.stdout


def test_cli_verify_one_optimizer_and_bad_name():
    from optimlab.cli import main

    assert main(["verify", "-q", "--device", "cpu", "adamax"]) == 0
    assert main(["verify", "-q", "nosuch"]) == 2
    assert main([]) == 2


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci/run").read_text()
    assert "./run test" in readme and "./run test" in ci
    assert re.search(r"^\./run\s+# the main job", readme, re.M)


def test_python_is_supported():
    assert sys.version_info >= (3, 11)
