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

import dataclasses
import hashlib
import importlib.util
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any, Literal

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from twinjax.data.options import DataConfig
from twinjax.runtime.errors import ConfigError
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


# Choices are typed as Literals in the option dataclasses. OmegaConf 2.3 (which hydra-core 1.3
# requires) takes no Literal annotation, so Hydra is given a schema of each: a subclass whose
# Literal fields are typed by their values' type (:func:`hydra_schema`); the app then checks
# every choice (:func:`check_choices`).
_SCHEMAS: dict[type, type] = {}
_ORIGINALS: dict[type, type] = {}


def _plain(hint):
    """``hint`` with each ``Literal[...]`` replaced by its values' type, and each option
    dataclass by its schema."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        return type(typing.get_args(hint)[0])
    if dataclasses.is_dataclass(hint):
        return hydra_schema(hint)
    given = typing.get_args(hint)
    args = tuple(_plain(a) for a in given)
    if origin is None or args == given:
        return hint
    if origin in (typing.Union, types.UnionType):
        return typing.Union[args]  # noqa: UP007 (built from a tuple of types)
    return origin[args]


def _as_schema(value):
    """An option dataclass instance as an instance of its schema (nested ones too)."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return value
    kind = hydra_schema(type(value))
    if kind is type(value):
        return value
    return kind(**{f.name: _as_schema(getattr(value, f.name))
                   for f in dataclasses.fields(value) if f.init})  # fmt: skip


def hydra_schema(cls: type) -> type:
    """The dataclass ``cls`` as Hydra's ConfigStore takes it: ``cls`` itself when no field (at
    any depth) is a ``Literal``, else a subclass whose Literal fields are typed by their values'
    type (``Literal["lstm", "gru"]`` -> ``str``), registered in this module as
    ``<Name>Schema`` so that configs holding it pickle. Its instances are ``cls`` instances:
    the library takes them as they are."""
    if cls in _SCHEMAS:
        return _SCHEMAS[cls]
    hints = typing.get_type_hints(cls)
    changed = []
    for f in dataclasses.fields(cls):
        plain = _plain(hints[f.name])
        if plain == hints[f.name]:
            continue
        if f.default_factory is not dataclasses.MISSING:
            spec = field(default_factory=lambda make=f.default_factory: _as_schema(make()))
        else:
            spec = field(default=f.default)
        changed.append((f.name, plain, spec))
    if not changed:
        _SCHEMAS[cls] = cls
        return cls
    name = f"{cls.__name__}Schema"
    schema = dataclasses.make_dataclass(name, changed, bases=(cls,))
    schema.__module__, schema.__doc__ = __name__, cls.__doc__
    setattr(sys.modules[__name__], name, schema)
    _SCHEMAS[cls], _ORIGINALS[schema] = schema, cls
    return schema


def __getattr__(name: str):
    """A schema of :func:`hydra_schema` (``<Name>Schema``), made on first use, so that a
    config pickled in one process (a sweep's job under a launcher) unpickles in another."""
    if name.endswith("Schema"):
        for options in (Config, *(e.options for e in experiments().values())):
            hydra_schema(options)  # each schema it makes, nested ones too, joins this module
        if name in globals():
            return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_choices(options, prefix: str = "") -> None:
    """Every ``Literal`` field of the option dataclass ``options`` (nested ones too) holds one
    of its choices.

    Raises:
      ConfigError: naming the first entry that does not, e.g. ``model.cell='lsmt': use lstm
        or gru``."""
    kind = _ORIGINALS.get(type(options), type(options))
    hints = typing.get_type_hints(kind)
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        if dataclasses.is_dataclass(value):
            check_choices(value, f"{prefix}{f.name}.")
            continue
        choices = literal_choices(hints.get(f.name))
        if choices is None or value is None:
            continue
        for item in value if isinstance(value, list | tuple) else [value]:
            if item not in choices:
                names = [str(c) for c in choices] + ["null"] * is_optional(hints[f.name])
                raise ConfigError(f"{prefix}{f.name}={item!r}: use "
                                  f"{', '.join(names[:-1])} or {names[-1]}")  # fmt: skip


def is_optional(hint) -> bool:
    """Whether the hint allows None (``X | None``)."""
    return type(None) in typing.get_args(hint)


def literal_choices(hint) -> tuple | None:
    """The values a (possibly optional, or listed) ``Literal`` hint allows, else None."""
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    for arg in typing.get_args(hint):
        found = literal_choices(arg)
        if found is not None:
            return found
    return None


def register_configs() -> None:
    """Stores the root schema, the group schemas and every experiment's dataclass, and the
    resolvers the configs use (``run_name``, ``sqlite_file``)."""
    OmegaConf.register_new_resolver("run_name", run_name, replace=True)
    OmegaConf.register_new_resolver("sqlite_file", sqlite_file, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=hydra_schema(Config))
    cs.store(group="data", name="base_data", node=hydra_schema(DataConfig))
    cs.store(group="model", name="base_model", node=hydra_schema(ModelConfig))
    cs.store(group="train", name="base_train", node=hydra_schema(TrainConfig))
    for name, entry in experiments().items():
        cs.store(group="experiment", name=name, node=hydra_schema(entry.options))


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
