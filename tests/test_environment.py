"""environment.yml (conda) and pyproject.toml (pip) list the same packages and lower bounds."""

import importlib.metadata
import re
from pathlib import Path

import yaml

try:
    import tomllib
except ImportError:  # Python 3.10: read the installed package's metadata instead
    tomllib = None

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from the PyPI names
CONDA_NAMES = {"pyyaml": "pyyaml", "pillow": "pillow"}


def parse(requirement: str) -> tuple[str, str]:
    """'numpy>=1.26' -> ('numpy', '>=1.26'); names lower-cased, '_' and '.' as '-'."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    name = re.sub(r"[_.]+", "-", match.group(1).lower())
    return CONDA_NAMES.get(name, name), match.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject():
    if tomllib is not None:
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        extras = project["optional-dependencies"]
        pip_requirements = project["dependencies"] + extras["dev"] + extras["export"]
        requires_python = project["requires-python"]
    else:
        metadata = importlib.metadata.metadata("ssd-tutorial")
        pip_requirements = [r.split(";")[0] for r in metadata.get_all("Requires-Dist")]
        requires_python = metadata["Requires-Python"]
    expected = dict(parse(r) for r in pip_requirements)

    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in environment["dependencies"] if isinstance(d, str)]
    for item in environment["dependencies"]:
        if isinstance(item, dict):  # a pip: section counts as well
            conda += item.get("pip", [])
    listed = dict(parse(d) for d in conda if parse(d)[0] not in ("python", "pip"))
    assert listed == expected

    python = next(d for d in conda if d.startswith("python"))
    assert parse(python)[1] == requires_python
