"""Structured configuration schema (registered in Hydra's ConfigStore).

The data, model and train groups (``configs/``) are validated against the dataclasses here. The
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

DRIVERS = "twinjax_experiments"  # the package of the drivers (experiments/ in the repository)
# the module of the experiments' options and of REGISTRY (NAME -> options, driver module)
EXPERIMENTS = f"{DRIVERS}.config"

# The shipped Hydra configs, an absolute path (the `twinjax` command finds them from any
# directory; a relative one made Hydra look for an importable module 'configs'): inside the
# installed package, else (a checkout, or its editable install) the repository's configs/.
_PACKAGED = Path(__file__).resolve().parent / "configs"
CONFIG_DIR = str(_PACKAGED if _PACKAGED.is_dir() else _PACKAGED.parents[1] / "configs")


@dataclass
class DataConfig:
    source: str = "synthetic"  # "synthetic" or "files"
    # synthetic cohort
    n_individuals: int = 64  # how many individuals
    n_steps: int = 1440  # hourly grid: 60 days per individual
    obs_prob: float = 0.7  # probability that a stream is measured at a grid step
    dropout_prob: float = 0.02  # per-step probability of a missing block starting
    noise: float = 0.1  # observation noise SD of the synthetic cohort
    # files (long format)
    observations: str | None = None  # the observations: subject, time, variable, value
    interventions: str | None = None  # long-format table of interventions (doses, meals...)
    static: str | None = None  # one row per subject: covariates that do not change
    subject_col: str = "subject_id"  # column names of the long-format files
    time_col: str = "time"  # ... the time of each row
    variable_col: str = "variable"  # ... the stream (variable) name
    value_col: str = "value"  # ... the measured value
    kind_col: str = "kind"  # ... an intervention's kind (e.g. a dose route)
    amount_col: str = "amount"  # ... an intervention's amount
    # grid step: a number in the unit of numeric times, or a duration (15min, 1h, 1D) for
    # ISO-8601 / timestamp times (Any: OmegaConf 2.3 has no float | str)
    step: Any = 1.0
    # where each subject's grid starts: "subject" (its first time) or "absolute" (one grid for
    # all, from the cohort's first time rounded down to a multiple of the step)
    origin: str = "subject"
    sep: str | None = None  # delimiter of text files; None: found in the header (, ; TAB |)
    encoding: str | None = None  # text encoding; None: UTF-8, else Latin-1 (noted in the summary)
    drop_bad_rows: bool = False  # drop malformed rows (reported) instead of stopping
    # validate and align this many subjects at a time (a Parquet file or directory is held once,
    # as Arrow columns; the cohort is the same); None: all at once
    chunk_subjects: int | None = None
    target: str | None = None  # variable to forecast; default: the first
    # preprocessing
    normalization: str = "population"  # "population", "individual" or "none"
    context: int = 12  # steps of history a training window starts with
    horizon: int = 6  # steps a training window forecasts after its context
    val_fraction: float = 0.15  # each subject's last fraction before the test period: validation
    test_fraction: float = 0.15  # each subject's last fraction of its timeline: held-out test


@dataclass
class ModelConfig:
    # which twin the default experiment fits: "recurrent" (LSTM/GRU twins), "auto" (the family
    # that forecasts the cohort best on its own visits, judged against the baselines:
    # experiments/auto_twin.py) or null: auto for data=files without data.interventions,
    # recurrent for files with interventions and for the synthetic cohort
    family: str | None = None
    # auto: the candidate forecasters (twinjax.eval.panel.KNOWN: BASELINES, the default, and
    # "pooled", a linear AR of the changes learnt across subjects), the seasonal period in
    # visits (0: none), the visits per subject held out for the skill table and the rolling
    # origins (last visits of each subject) the choice and the calibration are measured on
    candidates: list[str] = field(
        default_factory=lambda: ["last", "drift", "seasonal", "mixed", "ets", "arima"]
    )
    period: int = 0  # seasonal period in visits (0: none)
    holdout: int = 2  # visits per subject held out for the skill table
    origins: int = 3  # rolling origins the choice and the calibration are measured at
    cell: str = "lstm"  # "lstm" or "gru"
    hidden: int = 32  # width of the recurrent cell
    attention: bool = True  # causal temporal attention over the cell's past states
    attention_dim: int = 16  # width of the attention's queries and keys
    min_scale: float = 1e-3  # floor of the predictive SD (normalized units)
    # >0: recompute the recurrent cell's activations in chunks of this many steps in the backward
    # pass (jax.checkpoint): memory for compute; the same values. 0: keep them all.
    remat_chunk: int = 0
    # training windows through the cell: "scan" (one lax.scan per window, autodiff),
    # "sequence" (an individual's windows together, time-major, hand-written backward pass;
    # LSTM only; the same function, faster and smaller: README "Scaling out") or "auto":
    # sequence for an LSTM without remat_chunk, else scan
    layout: str = "auto"
    # dtype of the LSTM carries the sequence layout keeps for the backward pass: "bfloat16"
    # halves their memory; the forward pass, the state and the gradients' arithmetic stay
    # float32, the gradient is approximate (its measured error: README "Scaling out")
    residuals: str = "float32"
    # the network before the Gaussian head: "cells" (the cell and attention above) or "flax",
    # a flax module (linen or nnx) mapping an individual's window [time, d_in] to features
    # [time, width] causally: model.module names its class, "package.module:ClassName", built
    # with model.module_kwargs (model.module_kwargs={features:16}); README "A flax module as
    # a twin's network"
    network: str = "cells"
    module: str | None = None  # network=flax: the module's class, "package.module:ClassName"
    module_kwargs: Any = None  # a mapping (null: none); Any, so that an override replaces it


@dataclass
class TrainConfig:
    steps: int = 1000  # optimizer steps of the population twin
    personal_steps: int = 1000  # optimizer steps of the personal twins
    batch_windows: int = 8  # training windows per individual per step
    lr: float = 3e-3  # Adam learning rate of the population twin
    personal_lr: float = 3e-3  # Adam learning rate of the personal twins
    prior_strength: float = 30.0  # Gaussian prior precision pulling personal params to population
    population_batch: int = 0  # individuals per population step; 0: all
    # a device's individuals in a population step are taken so many at a time, their gradients
    # summed (0: all at once): the step's memory is bounded by the block, not the cohort
    population_block: int = 256
    chunk_size: int = 0  # individuals per chunk in personalization; 0: as many as fit in memory
    eval_every: int = 25  # personalization: validation NLL checked every so many steps
    selection: str = "none"  # keep personal params best on validation: individual|cohort|none
    # the parts of a twin that become personal: mean (the mean head; the predictive scale, the
    # recurrent cell and attention stay the population's), heads (mean and scale) or all
    personal_adapt: str = "mean"
    checkpoint_every: int = 50  # steps between orbax checkpoints (a run resumes from them)
    keep_checkpoints: int = 3  # checkpoints kept per loop
    calibration_strength: float = 20.0  # pseudo-observations shrinking personal variance scaling
    # interval calibration per forecast horizon h = 1..H on validation rollouts (0: H =
    # data.horizon; a forecast beyond H uses the factor of H), from so many sampled paths each
    calibration_horizon: int = 0
    calibration_samples: int = 32  # sampled rollout paths per origin
    # ... from at most so many origins per individual, evenly spaced through its validation
    # period (0: every step; each origin costs calibration_samples rollouts, so every step of a
    # long validation period is slow: README "Scaling out")
    calibration_origins: int = 32
    # k > 0: the training loss adds the NLL of each window's last k values forecast by a
    # rollout feeding back the predicted mean (the twin learns the horizons it forecasts); 0
    # by measurement (README "Forecast skill": what k = 3 and 6 gave, and their cost)
    rollout_steps: int = 0
    progress: bool = True  # a progress bar on a terminal, log lines otherwise
    # false: delete this run directory's checkpoints and start over (true resumes them, and only
    # if they were written by the same settings and data: see twinjax.runtime.claim_run_dir)
    resume: bool = True


@dataclass
class DistributedConfig:
    # the main job on several processes, each holding a share of the subjects (JAX's
    # multi-process runtime; README "Several processes"). Every process runs the same command
    # with its process_id and the same hydra.run.dir
    enabled: bool = False
    coordinator_address: str | None = None  # "host:port" of process 0 (null: from SLURM)
    num_processes: int | None = None  # processes in all (null: from SLURM)
    process_id: int | None = None  # this process, 0 .. num_processes - 1 (null: from SLURM)
    # a process silent this long ends the others (JAX's distributed service)
    heartbeat_timeout_seconds: int = 100


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
