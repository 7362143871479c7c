"""Hydra entry point: ``python -m twinjax experiment=NAME [overrides]``."""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from twinjax.config import EXPERIMENTS, register_configs

log = logging.getLogger("twinjax")
logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every file it writes at INFO
register_configs()


def run_experiment(cfg: DictConfig, out_dir: Path) -> dict:
    """Imports ``experiments.<name>`` and calls its ``run(config, out_dir)`` with the composed
    config as dataclasses (``config.experiment``: the experiment's own); writes metrics.json."""
    config = OmegaConf.to_object(cfg)
    name = config.experiment.name
    module = importlib.import_module(f"{EXPERIMENTS}.{name}")
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = module.run(config, out_dir)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    return metrics


@hydra.main(version_base="1.3", config_path="../configs", config_name="config")
def main(cfg: DictConfig) -> None:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    log.info("config:\n%s", OmegaConf.to_yaml(cfg))
    metrics = run_experiment(cfg, out_dir)
    log.info("metrics written to %s", out_dir / "metrics.json")
    summary = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
    log.info("summary: %s", json.dumps(summary, indent=1)[:2000])


if __name__ == "__main__":
    main()
