"""Structured configuration schema (registered in Hydra's ConfigStore).

The data, model and train groups (``configs/``) are validated against the library's own option
dataclasses, defined next to what they configure (:class:`twinjax.data.options.DataConfig`,
:class:`twinjax.twins.options.ModelConfig`, :class:`twinjax.train.options.TrainConfig` and
:class:`~twinjax.train.options.DistributedConfig`); this module only nests them in the root
:class:`Config` and registers them (``from twinjax.config import TrainConfig`` still works). The
``experiment`` group's options are the dataclasses of ``experiments/config.py``, one per
experiment, registered by :func:`register_configs` from the table of experiments that module
holds (:func:`experiments`; imported by name: the drivers sit above the app). Installed, the
drivers are the package ``twinjax_experiments`` and the YAML is ``twinjax/configs``
(setup.py); in the repository, ``experiments/`` and ``configs/``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from twinjax.data.options import DataConfig
from twinjax.train.options import DistributedConfig, TrainConfig
from twinjax.twins.options import ModelConfig

DRIVERS = "twinjax_experiments"  # the package of the drivers (experiments/ in the repository)
# the module of the experiments' options and of REGISTRY (NAME -> options, driver module)
EXPERIMENTS = f"{DRIVERS}.config"

# The shipped Hydra configs, an absolute path (the `twinjax` command finds them from any
# directory; a relative one made Hydra look for an importable module 'configs'): inside the
# installed package, else (a checkout, or its editable install) the repository's configs/.
_PACKAGED = Path(__file__).resolve().parent / "configs"
CONFIG_DIR = str(_PACKAGED if _PACKAGED.is_dir() else _PACKAGED.parents[1] / "configs")


@dataclass
class Config:
    seed: int = 0  # every random key of the run is split from it
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    experiment: Any = MISSING  # an experiment's dataclass, chosen by experiment=NAME
    twin: str | None = None  # saved twins to use (a run directory): experiment=forecast
    # CPU-only hosts: how many CPU devices JAX makes (null: one per core; 1: JAX's single
    # device). Personal twins are split over them, each core training its share (README
    # "Scaling out"). An --xla_force_host_platform_device_count in XLA_FLAGS wins.
    cpu_devices: int | None = None
    # the host memory (GB) that phases chunked by memory (personal fits, forecasts, calibration
    # rollouts, validation NLL) size their chunks for on CPU devices, at most (null: the free
    # memory): a bigger cohort is then worked through in more chunks, not in more memory (the
    # same results). Accelerators use their own free memory either way
    host_memory_gb: float | None = 1.0
    distributed: DistributedConfig = field(default_factory=DistributedConfig)


def run_name(experiment: str, overrides: str, limit: int = 96) -> str:
    """A run directory's name after its time: the experiment and the settings that differ from
    the defaults (Hydra's ``override_dirname``, ``key=value`` joined by commas; paths excluded
    in ``configs/config.yaml``), with characters a folder name cannot hold replaced, cut at
    ``limit`` characters with a digest of the rest so that names stay distinct.

    >>> run_name("twins_synthetic", "model.hidden=16,train.lr=0.01")
    'twins_synthetic,model.hidden=16,train.lr=0.01'
    >>> len(run_name("forecast", "x=" + "9" * 300))
    96
    """
    text = ",".join(x for x in (str(experiment), str(overrides)) if x)
    text = re.sub(r"[^\w.,=+\-\[\]]", "_", text)
    if len(text) > limit:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        text = f"{text[: limit - 9]}~{digest}"
    return text


def sqlite_file(path: str) -> str:
    """An SQLite storage URL for ``path`` (made absolute, its folder created): what Optuna
    needs before the sweep's own directory exists."""
    file = Path(path).expanduser().resolve()
    file.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{file}"


def register_configs() -> None:
    """Stores the root schema, the group schemas and every experiment's dataclass, and the
    resolvers the configs use (``run_name``, ``sqlite_file``)."""
    OmegaConf.register_new_resolver("run_name", run_name, replace=True)
    OmegaConf.register_new_resolver("sqlite_file", sqlite_file, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="data", name="base_data", node=DataConfig)
    cs.store(group="model", name="base_model", node=ModelConfig)
    cs.store(group="train", name="base_train", node=TrainConfig)
    for name, entry in experiments().items():
        cs.store(group="experiment", name=name, node=entry.options)


def experiments() -> dict:
    """The table of experiments, NAME -> ``Experiment(options, driver)`` (its ``REGISTRY``)."""
    if DRIVERS not in sys.modules and importlib.util.find_spec(DRIVERS) is None:
        _drivers_of_the_checkout()
    return import_module(EXPERIMENTS).REGISTRY


def _drivers_of_the_checkout() -> None:
    """A checkout run without installing it (``PYTHONPATH=.``: scripts/gpu_check.sh on a bare
    image) imports its ``experiments/`` folder as :data:`DRIVERS`, as the install would."""
    init = Path(__file__).resolve().parents[1] / "experiments" / "__init__.py"
    if not init.is_file():
        return  # then the import names the missing package
    spec = importlib.util.spec_from_file_location(
        DRIVERS, init, submodule_search_locations=[str(init.parent)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[DRIVERS] = module
    spec.loader.exec_module(module)
