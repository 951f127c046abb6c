"""environment.yml and pyproject.toml name the same dependencies with the same floors."""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _floor(req: str) -> str | None:
    m = re.search(r">=\s*([\w.]+)", req)
    return m.group(1) if m else None


def test_environment_yml_matches_pyproject():
    import yaml

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [r for r in project["dependencies"] if "python_version" not in r]
    wanted += project["optional-dependencies"]["dev"] + project["optional-dependencies"]["lab"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {_name(d): _floor(d) for d in deps + pip if not d.startswith("-")}
    assert "conda-forge" in env["channels"]
    for req in wanted:
        assert _name(req) in listed, f"{req} is in pyproject.toml but not in environment.yml"
        assert listed[_name(req)] == _floor(req), f"{req}: floors differ ({listed[_name(req)]})"
    extra = set(listed) - {_name(r) for r in wanted} - {"python", "pip"}
    assert not extra, f"environment.yml lists packages pyproject.toml does not: {extra}"


def test_import_is_cheap():
    import subprocess

    heavy = "('openai', 'dashscope', 'ipywidgets', 'starlette')"
    code = f"import qwen_nb, sys; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_functions_survive_submodule_imports():
    import qwen_nb
    import qwen_nb._compare  # noqa: F401 - the modules behind these functions are private
    import qwen_nb._probe  # noqa: F401
    import qwen_nb._profiles  # noqa: F401
    import qwen_nb._regions  # noqa: F401

    for name in ("profiles", "regions", "compare", "probe"):
        assert callable(getattr(qwen_nb, name)), name
    assert next(iter(qwen_nb.regions().values())).id == "ap-southeast-1"
