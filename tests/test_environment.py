"""environment.yml (conda) and pyproject.toml pin exactly the same versions."""
import re
import tomllib

import yaml


def _pins(lines):
    pins = {}
    for line in lines:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]+\])?==([^\s;]+)", line.strip())
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(3)
    return pins


def test_environment_yml_matches_pyproject(repo):
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((repo / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert _pins(pip_section) == wanted
    assert "torch" in wanted and wanted["torch"] == "2.14.1" and wanted["torchvision"] == "0.29.1"


def test_every_dependency_is_pinned(repo):
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    unpinned = [d for d in project["dependencies"] if "==" not in d]
    assert not unpinned


def test_ci_runs_the_readme_test_command(repo):
    readme = (repo / "README.md").read_text()
    assert "make test" in readme and "make reproduce" in readme
    assert "make test" in (repo / ".ci" / "run").read_text()
