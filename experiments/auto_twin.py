"""The default twin of a user's files (``data=files``; ``model.family=auto``): the family that
forecasts this cohort best, chosen on its own visits, judged against the baselines.

1. The target's observed visits form a panel; each subject's last ``model.holdout`` visits (1 for
   series shorter than 5) are held out and every candidate (LOCF, drift, seasonal naive, a
   mixed model, ETS, ARIMA; :mod:`twinjax.eval.panel`) and ``auto`` forecast them from the
   visits before, calibrated per horizon by rolling origins: the skill table, in words where a
   baseline wins.
2. The final twin is chosen again and calibrated on all the visits (``model/auto.json``) and
   forecasts the next ``data.horizon`` visits of every subject (``forecasts.csv``, a figure).
   ``experiment=forecast twin=RUN`` and ``twinjax.eval.auto.load_auto`` use it afterwards.
"""

from __future__ import annotations

import logging
from pathlib import Path

from twinjax import pipeline
from twinjax.config import Config
from twinjax.eval.auto import bias_warning, fit_auto, save_auto, skill_table
from twinjax.eval.plots import panel_forecasts
from twinjax_experiments.report import images, save_figure, table, write_csv, write_markdown

log = logging.getLogger(__name__)


def compute(root: Config, out_dir: Path) -> dict:
    """The skill table on held-out visits, the final twin and its forecasts."""
    families, extra = pipeline.auto_candidates(root, out_dir)
    timings = pipeline.Timings()
    with timings.phase("data"):
        cohort, target, panel, excluded = pipeline.load_auto_panel(root)
    with timings.phase("skill table"):
        skill, held, choice = skill_table(
            panel, h=root.model.holdout, families=families, extra=extra
        )
    with timings.phase("final fit"):
        twin, final = fit_auto(panel, horizon=root.data.horizon, variable=target,
                               families=families, extra=extra,
                               origins=root.model.origins)  # fmt: skip
        forecast = twin.forecast(panel, extra=extra)
    return dict(cohort=cohort, target=target, panel=panel, excluded=excluded, skill=skill,
                held=held, choice=choice, twin=twin, final=final, forecast=forecast,
                timings=timings)  # fmt: skip


def verdict(skill) -> list[str]:
    """The skill table in words: how auto compares with the best baseline, plainly."""
    best = skill.attrs["best_baseline"]
    auto = skill.loc["auto"]
    ratio = float(auto.crps_vs_best_baseline)
    if ratio <= 1.0:
        return [f"On the held-out visits the auto twin's CRPS is {ratio:.3f}x that of the best "
                f"baseline ({best}); its RMSE {float(auto.rmse_vs_best_baseline):.3f}x the "
                "best baseline's."]  # fmt: skip
    return [f"**A baseline wins:** on the held-out visits {best} has a lower CRPS than the auto "
            f"twin ({ratio:.3f}x {best}'s): the rolling origins on earlier visits chose "
            f"differently than these last visits reward."]  # fmt: skip


def run(root: Config, out_dir: Path) -> dict:
    r = compute(root, out_dir)
    skill, choice, twin = r["skill"], r["choice"], r["twin"]
    with r["timings"].phase("save"):
        save_auto(twin, out_dir / "model")
        frame = r["forecast"].frame()
        frame["time"] = pipeline.data_times(frame["time"], r["cohort"])
        frame.insert(3, "variable", r["target"])
        write_csv(frame.drop(columns=["y", "observed"]), out_dir / "forecasts.csv", index=False)
        write_csv(skill, out_dir / "skill.csv")
    metrics = {
        "family": "auto",
        "target": r["target"],
        "n_subjects": int(len(r["panel"].n)),
        "subjects_excluded": r["excluded"],
        "held_out_points": int(r["held"]["auto"].mask.sum()),
        "held_out_choice": choice.name,
        "skill": {m: row for m, row in skill.to_dict(orient="index").items()},
        "best_baseline": skill.attrs["best_baseline"],
        "auto_crps_vs_best_baseline": float(skill.loc["auto", "crps_vs_best_baseline"]),
        "final_choice": twin.choice["name"],
        "final_validation_crps": twin.choice["validation_crps"],
        "final_origin_bias": twin.choice.get("origin_bias"),
        # sweeps: the final twin's rolling-origin CRPS on the training visits (never the
        # held-out visits of the skill table)
        "objective": float(twin.choice["validation_crps"][twin.choice["name"]]),
    }
    with r["timings"].phase("report"):
        fig = panel_forecasts(
            r["forecast"], r["panel"], r["held"]["auto"], root.experiment.n_plot_individuals
        )
        name = save_figure(fig, out_dir, "forecasts.png")
        cols = ["rmse", "mae", "crps", "coverage_90", "width_90", "crps_vs_best_baseline",
                "rmse_vs_best_baseline"]  # fmt: skip
        rows = [[m, *(f"{float(skill.loc[m, c]):.4g}" for c in cols)] for m in skill.index]
        crps = twin.choice["validation_crps"]
        lean = bias_warning(twin.choice.get("origin_bias"))
        write_markdown(out_dir, [
            f"# Auto twin of `{r['target']}`", "",
            f"{metrics['n_subjects']} subjects; each subject's last {root.model.holdout} visits "
            f"(1 for series shorter than 5) held out: {metrics['held_out_points']} points.", "",
            "## Skill on the held-out visits", "",
            *table(["method", *cols], rows), "", *verdict(skill), "",
            "## The twin", "",
            f"Chosen on all the visits by rolling-origin CRPS (the last 1-{root.model.origins} "
            f"visits of each subject forecast from those before): **{twin.choice['name']}** "
            "(one choice for the cohort; every subject's forecast is that combination, its "
            "interval scaled by the subject's own visit-to-visit variability).", "",
            *table(["candidate", "rolling-origin CRPS"],
                   [[k, f"{v:.4g}"] for k, v in sorted(crps.items(), key=lambda kv: kv[1])[:8]]),
            *(["", f"The best 8 of {len(crps)} candidates (each family, and the average of every "
               "pair and triple); all in `metrics.json` (`final_validation_crps`)."]
              if len(crps) > 8 else []),
            *(["", *lean] if lean else []),
            "", f"Forecasts of the next {root.data.horizon} visits: `forecasts.csv`.", "",
            *images([name]),
        ])  # fmt: skip
    metrics["timings"] = r["timings"].seconds
    return metrics
