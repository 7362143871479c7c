"""Hydra entry point: ``python -m twinjax experiment=NAME [overrides]``."""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import shutil
import sys
from pathlib import Path

import hydra
import jax
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from twinjax.config import CONFIG_DIR, check_choices, experiments, register_configs
from twinjax.data import CohortError
from twinjax.pipeline import ConfigError
from twinjax.runtime import RunDirectoryError, interrupt
from twinjax.runtime.checkpoints import QuietWriteFailures, last_checkpoint
from twinjax.runtime.files import RunWriteError, atomic_write_text
from twinjax.runtime.lock import run_lock
from twinjax.runtime.manifest import DamagedModelError
from twinjax.runtime.scalars import ScalarWriter, flatten
from twinjax.train.devices import use_cpu_devices, use_host_memory
from twinjax.train.processes import initialize

log = logging.getLogger("twinjax")
logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every file it writes at INFO
# JAX logs at INFO that it found no TPU runtime (libtpu.so), on every CPU or GPU run
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
# arviz logs at INFO, on import, which of its optional preview packages are missing
logging.getLogger("arviz.preview").setLevel(logging.WARNING)
# (and a refused write as tracebacks from its threads: the run ends with one RunWriteError line)
logging.getLogger("absl").addFilter(QuietWriteFailures())
# a process saving its own checkpoint alone (several processes) has no other process's part to
# merge: orbax says so at WARNING on every save
logging.getLogger("absl").addFilter(
    lambda record: "No per-process OCDBT checkpoint subdirs" not in record.getMessage()
)
register_configs()

# Errors about the user's data or settings: their message says what to change, so the app prints
# it alone (exit status 1) instead of a traceback; HYDRA_FULL_ERROR=1 still shows everything.
USER_ERRORS = (
    CohortError, ConfigError, RunDirectoryError, RunWriteError, DamagedModelError,
    MissingMandatoryValue,
)  # fmt: skip


# The experiments that run on several processes (distributed.enabled=true): the main job's
# recurrent twins, each process holding a share, and the federated rounds over every device
SEVERAL_PROCESSES = ("twins_synthetic", "fedprox_synthetic", "federated_twins")

# The metrics.json key every experiment returns for sweeps: a VALIDATION metric to minimize (never
# a test one), e.g. the personalized twins' mean NLL on the validation periods; the app returns it.
OBJECTIVE = "objective"


def run_experiment(cfg: DictConfig, out_dir: Path) -> dict:
    """Imports the experiment's driver (:func:`twinjax.config.experiments`) and calls its ``run(config, out_dir)`` with the composed
    config as dataclasses (``config.experiment``: the experiment's own); writes metrics.json.

    Training curves go to ``out_dir/tensorboard`` (event files and scalars.csv: every loop writes
    to the writer opened here), with the run's settings and objective for the HParams dashboard.
    The run holds ``out_dir/run.lock`` throughout (:func:`twinjax.runtime.lock.run_lock`): a
    second run in the same directory is refused before it writes anything of its own.

    Raises:
      RunWriteError: a file could not be written (naming it, the reason and the run's last
        complete checkpoint); every file is written whole or not at all, so the earlier ones
        are intact.
    """
    config = OmegaConf.to_object(cfg)
    check_choices(config)
    name = config.experiment.name
    if jax.process_count() > 1 and name not in SEVERAL_PROCESSES:
        raise ConfigError(
            f"experiment={name} runs on one process; distributed.enabled=true works with "
            f"{', '.join(sorted(SEVERAL_PROCESSES))}"
        )
    module = importlib.import_module(experiments()[name].driver)
    # several processes share out_dir: process 0 writes the run's files, each other process
    # holds its own lock and training curves under process<k>/
    own = out_dir if jax.process_index() == 0 else out_dir / f"process{jax.process_index()}"
    try:
        with run_lock(own):
            with ScalarWriter(own / "tensorboard") as writer, writer.as_default():
                metrics = module.run(config, out_dir)
                objective = check_objective(metrics, name)
                writer.hparams(changed_settings(cfg), result_metrics(metrics, objective))
            if jax.process_index() == 0:
                atomic_write_text(out_dir / "metrics.json", metrics_json(metrics))
            else:  # this process's own phases (its share's work) beside its lock
                mine = {k: metrics.get(k) for k in ("timings", "memory")}
                atomic_write_text(own / "timings.json", metrics_json(mine))
    except RunWriteError as e:
        if e.checkpoint is not None:
            raise
        raise e.with_checkpoint(last_checkpoint(out_dir)) from e
    return metrics


def mark_failed(out_dir: Path, message: str) -> None:
    """A run stopped by a user error: ``failed.txt`` holds the message (``twinjax compare``
    lists the run as failed), and a TensorBoard folder without a finished run is removed so that
    TensorBoard does not list it as a run. Checkpoints stay: a fixed setting resumes them."""
    from twinjax.runtime.compare import FAILED_FILE

    try:
        if not (out_dir / "metrics.json").exists():
            shutil.rmtree(out_dir / "tensorboard", ignore_errors=True)
        atomic_write_text(out_dir / FAILED_FILE, message + "\n")
    except (OSError, RunWriteError):  # the error itself is what the user must see
        pass


def changed_settings(cfg: DictConfig) -> dict:
    """What TensorBoard's HParams view lists for a run: the experiment and the settings given
    on the command line (a sweep trial's sampled values included) with their resolved values;
    every setting when the run was not started by Hydra's command line."""
    container = OmegaConf.to_container(cfg, resolve=True)
    if not HydraConfig.initialized():
        return container
    flat = flatten(container)
    out = {"experiment.name": cfg.experiment.name}
    for override in HydraConfig.get().overrides.task:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        out[key] = flat.get(key, value)
    return out


def result_metrics(metrics: dict, objective: float | None) -> dict[str, float]:
    """The numbers of ``metrics.json`` HParams shows: the objective, then every finite number
    at the top level and one level down (``personalized.rmse_mean``)."""
    from twinjax.runtime.compare import RUN_TO_RUN, numbers_of

    out = {} if objective is None else {OBJECTIVE: objective}
    # not the seconds or memory per phase: they differ between any two runs and compare nothing
    keep = lambda k: k != OBJECTIVE and not k.startswith(RUN_TO_RUN)
    return {**out, **{k.replace(" ", "_"): v for k, v in numbers_of(metrics).items() if keep(k)}}


def release_compiled_programs() -> None:
    """Drops every program this process compiled (``jax.clear_caches``). A ``--multirun`` sweep
    runs its jobs in one process, and each run compiles its own programs, which JAX keeps for
    the process's life: on Linux every CPU program holds memory mappings (about 4,000 for a tiny
    twins run), and at the kernel's limit (``vm.max_map_count``, 65,530 by default) the next
    compile aborts the process. Programs worth keeping are in the persistent compilation cache."""
    jax.clear_caches()


def check_objective(metrics: dict, name: str) -> float | None:
    """The run's ``objective``: a number, or None where there is nothing to optimise (e.g.
    forecasting with saved twins, or no validation period); an experiment without the key, or
    with another value, is a programming error."""
    if OBJECTIVE in metrics and metrics[OBJECTIVE] is None:
        return None
    value = metrics.get(OBJECTIVE)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"experiments/{name}.py: run() must return metrics[{OBJECTIVE!r}], a validation "
            f"metric to minimize (a number, or None for nothing to optimise), got {value!r}"
        )
    if not math.isfinite(value):
        log.warning("the objective of this run is %s", value)
    return float(value)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float:
    """One run; returns its validation objective (what ``hydra/sweeper=optuna`` minimizes; NaN
    where the run has none, which Optuna records as a failed trial)."""
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    log.debug("config:\n%s", OmegaConf.to_yaml(cfg))  # also in .hydra/config.yaml
    try:
        with interrupt.handled():  # Ctrl-C/SIGTERM: a checkpoint at the next step, one line
            cpu_devices = cfg.get("cpu_devices")
            if cpu_devices is not None and cpu_devices < 1:
                raise ConfigError(
                    f"cpu_devices={cpu_devices}: use a count >= 1, or null (one per core)"
                )
            use_cpu_devices(cpu_devices)  # before JAX's first operation
            if cfg.distributed.enabled:
                d = cfg.distributed
                initialize(d.coordinator_address, d.num_processes, d.process_id,
                           heartbeat_timeout_seconds=d.heartbeat_timeout_seconds)  # fmt: skip
            try:
                use_host_memory(cfg.get("host_memory_gb"))
            except ValueError as e:
                raise ConfigError(f"host_memory_gb: {e}") from None
            try:
                metrics = run_experiment(cfg, out_dir)
            finally:
                release_compiled_programs()
    except USER_ERRORS as e:
        mark_failed(out_dir, f"{type(e).__name__}: {e}")
        if jax.process_count() > 1:
            leave_processes(f"{type(e).__name__}: {e}")
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        log.error("%s: %s", type(e).__name__, e)
        sys.exit(1)
    except interrupt.Interrupted as e:
        if e.checkpoint is None:  # between loops: the run resumes from its last checkpoint
            last = last_checkpoint(out_dir / "checkpoints")
            e = interrupt.Interrupted(e.signum, e.where, str(last) if last else None)
        log.error("%s", e)
        sys.exit(e.exit_status)
    except Exception as e:  # a bug: its traceback, then (several processes) end them all
        if jax.process_count() > 1:
            log.exception("process %d failed", jax.process_index())
            leave_processes(f"{type(e).__name__}: {e}")
        raise
    if jax.process_index() == 0:  # (several processes: process 0 writes the run's files)
        log.info("metrics written to %s", out_dir / "metrics.json")
    summary = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
    log.info("summary: %s", json.dumps(summary, indent=1)[:2000])
    objective = metrics[OBJECTIVE]  # None (nothing to optimise): NaN, a failed sweep trial
    return float("nan") if objective is None else float(objective)


def leave_processes(message: str) -> None:
    """Ends this process of a multi-process job at once, after its error line: a normal exit
    waits in JAX's shutdown barrier (5 minutes) for processes that are themselves waiting in a
    collective for this one; gone, it ends them within the heartbeat timeout
    (``distributed.heartbeat_timeout_seconds``), each saying that another task died."""
    log.error("%s", message)
    lost = any(x in message for x in ("closed by peer", "reset by peer", "Gloo"))
    why = ("another process ended first (a collective lost its peer): see every process's log"
           if lost else "JAX's distributed service ends the others")  # fmt: skip
    log.error("process %d of %d stops; %s. Rerun every process with the same settings: "
              "training resumes from the last checkpoint", jax.process_index(),
              jax.process_count(), why)  # fmt: skip
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def finite(x):
    """``x`` with every non-finite float (NaN, inf; numpy scalars too) as None, numpy scalars and
    arrays as Python numbers and lists, recursively through dicts, lists and tuples.

    >>> finite({"a": float("nan"), "b": [1.5, float("inf")]})
    {'a': None, 'b': [1.5, None]}
    """
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [finite(v) for v in x]
    if isinstance(x, np.ndarray | np.generic):
        return finite(x.tolist())
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    return x


def metrics_json(metrics: dict) -> str:
    """metrics.json's text: NaN and inf written as null (strict JSON, never a bare NaN)."""
    return json.dumps(finite(metrics), indent=2, sort_keys=True, allow_nan=False)


def cli() -> None:
    """The ``twinjax`` command (and ``python -m twinjax``); ``--help`` lists the experiments;
    ``twinjax compare DIR...`` tabulates runs (:mod:`twinjax.runtime.compare`)."""
    if sys.argv[1:2] == ["compare"]:
        from twinjax.runtime.compare import main as compare

        sys.exit(compare(sys.argv[2:]))
    if "--help" in sys.argv[1:] or "-h" in sys.argv[1:]:
        from twinjax.cli_help import help_text

        print(help_text(sys.argv[1:]))
        return
    main()


if __name__ == "__main__":
    cli()
