"""The version and the package metadata agree in every place that states them."""

import tomllib
from importlib import metadata, resources
from pathlib import Path

import yaml

import twinjax

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_version_is_the_installed_distributions():
    """``twinjax.__version__`` is the installed metadata's version, and that is pyproject's (an
    install older than a version bump fails here: reinstall)."""
    assert twinjax.__version__ == metadata.version("twinjax")
    assert twinjax.__version__ == PYPROJECT["version"]


def test_citation_and_changelog_state_the_version():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["version"] == PYPROJECT["version"]
    assert citation["license"] == PYPROJECT["license"] == "Apache-2.0"
    headings = [
        line for line in (ROOT / "CHANGELOG.md").read_text().splitlines() if line.startswith("## ")
    ]
    assert headings[:2] == ["## Unreleased", f"## {PYPROJECT['version']}"]


def test_license_file_is_apache_2():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert PYPROJECT["license-files"] == ["LICENSE"]


def test_py_typed_is_package_data():
    """PEP 561's marker sits in the package and is listed for the wheel."""
    assert resources.files("twinjax").joinpath("py.typed").is_file()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in package_data["package-data"]["twinjax"]
