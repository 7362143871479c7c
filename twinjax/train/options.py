"""The training options (the app's ``train`` group) and the multi-process runtime's
(``distributed``). Plain dataclasses; the app registers them with Hydra (``twinjax.config``).
A :class:`TrainConfig` builds the options of the population fit and of personalization
(:meth:`TrainConfig.population`, :meth:`TrainConfig.personalize`); its calibration settings
are read by the pipeline. :class:`DistributedConfig` holds the keywords of
:func:`twinjax.train.processes.initialize`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from twinjax.train.personalize import PersonalizeOptions
from twinjax.train.population import PopulationOptions


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
    # keep each personal twin's params best on validation: per individual, for the cohort, or none
    selection: Literal["individual", "cohort", "none"] = "none"
    # the parts of a twin that become personal: mean (the mean head; the predictive scale, the
    # recurrent cell and attention stay the population's), heads (mean and scale) or all
    personal_adapt: Literal["mean", "heads", "all"] = "mean"
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

    def population(self, window: int) -> PopulationOptions:
        """The population fit's options, on training windows of ``window`` steps (the data's
        context + horizon)."""
        return PopulationOptions(
            steps=self.steps,
            lr=self.lr,
            window=window,
            batch_windows=self.batch_windows,
            batch=self.population_batch,
            block=self.population_block,
            rollout_steps=self.rollout_steps,
            checkpoint_every=self.checkpoint_every,
            keep_checkpoints=self.keep_checkpoints,
            progress=self.progress,
        )

    def personalize(self, window: int) -> PersonalizeOptions:
        """Personalization's options, on training windows of ``window`` steps."""
        return PersonalizeOptions(
            steps=self.personal_steps,
            lr=self.personal_lr,
            window=window,
            batch_windows=self.batch_windows,
            prior_strength=self.prior_strength,
            rollout_steps=self.rollout_steps,
            chunk_size=self.chunk_size,
            eval_every=self.eval_every,
            selection=self.selection,
            adapt=self.personal_adapt,
            checkpoint_every=self.checkpoint_every,
            keep_checkpoints=self.keep_checkpoints,
            progress=self.progress,
        )


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
