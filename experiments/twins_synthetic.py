"""Default experiment: population vs personalized recurrent twins (synthetic cohort by default)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import jax
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from twinjax import pipeline
from twinjax.config import Config as RootConfig
from twinjax.config import experiment_config
from twinjax.eval import plots


@dataclass
class Config:
    n_plot_individuals: int = 4


def run(cfg: DictConfig, out_dir: Path) -> dict:
    exp = experiment_config(Config, cfg.experiment)
    root: RootConfig = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RootConfig), cfg))
    k_data, k_fit, k_plot = jax.random.split(jax.random.key(root.seed), 3)
    cohort = pipeline.load_cohort(k_data, root.data)
    fit = pipeline.fit_twins(k_fit, cohort, root, out_dir)
    pipeline.save_model(fit, out_dir / "model")
    per_individual = pipeline.evaluate_twins(fit, cohort, root.data)
    metrics = pipeline.summary_metrics(per_individual)
    metrics["n_individuals"] = cohort.n_individuals
    metrics["target"] = cohort.variables[pipeline.target_index(cohort, root.data)]
    if "dropped_rows" in cohort.meta:
        metrics["dropped_rows"] = cohort.meta["dropped_rows"]["count"]

    table = pd.DataFrame(
        {f"{name}_{k}": v for name, m in per_individual.items() for k, v in m.items()}
    )
    table.insert(0, "subject_id", list(cohort.subject_ids))
    table.to_csv(out_dir / "per_individual.csv", index=False)
    figures = plots.twin_report_figures(
        fit,
        cohort,
        root.data,
        per_individual,
        out_dir,
        key=k_plot,
        n_individuals=exp.n_plot_individuals,
    )
    (out_dir / "report.md").write_text(_report(metrics, figures, root))
    return metrics


def _report(metrics: dict, figures: list[str], cfg: RootConfig) -> str:
    pop, per = metrics["population"], metrics["personalized"]
    rows = "\n".join(
        f"| {k} | {pop[k]:.4f} | {per[k]:.4f} |"
        for k in (
            "rmse_mean",
            "rmse_median",
            "mae_mean",
            "nll_mean",
            "coverage50_pooled",
            "coverage90_pooled",
        )
    )
    return "\n".join(
        [
            "# Population vs personalized twins",
            "",
            f"{metrics['n_individuals']} individuals; target stream `{metrics['target']}`; "
            f"{cfg.model.cell.upper()} with {cfg.model.hidden} hidden units"
            f"{' and temporal attention' if cfg.model.attention else ''}. One-step-ahead forecasts on each "
            "individual's held-out test period (the last "
            f"{cfg.data.test_fraction:.0%} of their timeline), from the previous "
            f"{cfg.data.context + cfg.data.horizon - 1} steps.",
            "",
            "| metric | population | personalized |",
            "|---|---|---|",
            rows,
            "",
            f"Personalized / population RMSE: **{metrics['rmse_ratio_personalized_over_population']:.3f}**; "
            f"individuals improved: {metrics['fraction_individuals_improved']:.0%}.",
            "",
            *[f"![{Path(f).stem}]({f})" for f in figures],
            "",
            "Configuration:",
            "",
            "```json",
            json.dumps(OmegaConf.to_container(OmegaConf.structured(cfg)), indent=1, default=str),
            "```",
        ]
    )
