"""pyproject.toml and environment.yml install the same dependencies."""

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {"pytorch": "torch"}


def _name(requirement: str) -> str:
    name = re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0]
    return CONDA_TO_PYPI.get(name.lower(), name.lower()).replace("_", "-")


def _spec(requirement: str) -> str:
    name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
    return re.sub(r"\s+", "", requirement[len(name):])


def test_environment_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_deps = {_name(r): _spec(r) for r in project["dependencies"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_deps = {}
    installs_package = False
    for item in env["dependencies"]:
        if isinstance(item, dict):
            for r in item.get("pip", []):
                if r.startswith("-e") or r == ".":
                    installs_package = True
                else:
                    conda_deps[_name(r)] = _spec(r)
        elif _name(item) not in ("python", "pip"):
            conda_deps[_name(item)] = _spec(item)
    assert installs_package, "environment.yml must install the package itself (pip: -e .)"
    assert pip_deps.keys() == conda_deps.keys(), (
        f"only in pyproject: {sorted(pip_deps.keys() - conda_deps.keys())}; "
        f"only in environment.yml: {sorted(conda_deps.keys() - pip_deps.keys())}"
    )
    assert pip_deps == conda_deps, "version bounds differ"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"```(?:bash|sh)?\n(.*?)```", readme, flags=re.S)
    test_cmd = [c.strip() for c in commands if "pytest" in c]
    assert test_cmd, "README must give the test command"
    assert test_cmd[0] in ci
