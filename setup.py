"""What the wheel holds; the project's metadata and options are in pyproject.toml.

The repository keeps its top-level folders; the wheel installs them under names of their own:
``twinjax/`` as ``twinjax``, ``experiments/`` (the drivers) as ``twinjax_experiments`` (a
top-level ``experiments`` could clash with any other project's) and ``configs/`` (the Hydra
YAML) as ``twinjax/configs``, where the app finds it (:data:`twinjax.config.CONFIG_DIR`). The
editable install (``pip install -e .``) maps the same names onto the repository's folders.
A ``package_dir`` that renames a folder needs the package list computed here: pyproject's
``packages.find`` cannot rename what it finds.
"""

from setuptools import find_namespace_packages, find_packages, setup

CONFIGS = ["twinjax.configs", *(f"twinjax.configs.{p}" for p in find_namespace_packages("configs"))]

setup(
    packages=[*find_packages(include=["twinjax", "twinjax.*"]), "twinjax_experiments", *CONFIGS],
    package_dir={"twinjax_experiments": "experiments", "twinjax.configs": "configs"},
)
