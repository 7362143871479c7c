"""GP twins on the synthetic cohort: one jitted, vmapped fit per stream; held-out calibration."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from twinjax.bayes.gp_cohort import fit_cohort_gp, gp_calibration
from twinjax.bayes.plots import plot_individual_fits, plot_pit_histogram
from twinjax.config import Config
from twinjax.data import synthetic_cohort
from twinjax_experiments.config import BayesSynthetic
from twinjax_experiments.report import images, table, write_markdown

SEGMENTS = ("interpolation", "test_period")  # held-out training-period points, test period


def run(cfg: Config, out_dir: Path) -> dict:
    c: BayesSynthetic = cfg.experiment
    k_data, k_hold, k_plot = jax.random.split(jax.random.key(cfg.seed), 3)
    cohort = synthetic_cohort(k_data, n_individuals=c.n_individuals, n_steps=c.n_steps)
    streams = tuple(cohort.variables.index(v) for v in c.streams) if c.streams else None
    fit = fit_cohort_gp(
        cohort, key=k_hold, holdout=c.holdout, method=c.method, m=c.m, steps=c.steps, lr=c.lr,
        streams=streams,
    )  # fmt: skip
    cal = gp_calibration(fit, cohort)
    pit = cal.pop("held_out_pit")
    metrics = {
        "gp_method": c.method,
        "n_individuals": cohort.n_individuals,
        "individuals_per_jitted_vmapped_fit": cohort.n_individuals,
        "gp_fit_seconds_per_stream": fit.fit_seconds,
        "gp_prior_loc_log_amp_length_noise": {
            cohort.variables[k]: np.asarray(tw.prior_loc).tolist()
            for k, tw in zip(streams or range(cohort.n_features), fit.twins, strict=True)
        },
        **{f"gp_{k}": v for k, v in cal.items()},
    }
    metrics["objective"] = metrics["gp_interpolation_crps"]  # sweeps: held-out points, not test
    metrics["gp_held_out_coverage_90_within_85_95"] = 0.85 <= cal["held_out_coverage_90"] <= 0.95
    write_report(out_dir, c, metrics, fit, cohort, 0 if streams is None else streams[0], pit,
                 key=k_plot)  # fmt: skip
    return metrics


def write_report(out_dir: Path, c: BayesSynthetic, m: dict, fit, cohort, s0: int, pit, *, key):
    """The held-out PIT histogram, the first individuals' fits of stream ``s0`` with 90% bands
    (``key``: the band's draws) and report.md."""
    plot_pit_histogram(out_dir / "gp_pit_histogram.png", pit, title="GP twins: held-out PIT")
    k = min(c.n_plot_individuals, cohort.n_individuals)
    eps = np.asarray(jax.random.normal(key, (200, k, cohort.n_steps)))
    draws = fit.mean[None, :k, :, s0] + fit.sd[None, :k, :, s0] * eps
    grid = np.tile(np.arange(cohort.n_steps, dtype=float), (k, 1))
    plot_individual_fits(
        out_dir / "gp_individual_fits.png", grid, draws, grid, cohort.values[:k, :, s0],
        fit.fit_mask[:k, :, s0], names=cohort.subject_ids[:k], ylabel=cohort.variables[s0],
        title="GP twins: fit points and 90% predictive band",
    )  # fmt: skip
    per_stream = [
        [k.removeprefix("gp_"), f"{v:.3f}"]
        for k, v in m.items()
        if "_coverage_90_" in k and not k.endswith("85_95")
    ]
    write_markdown(out_dir, [
        "# GP twins on the synthetic cohort",
        "",
        f"{m['n_individuals']} individuals, one GP per individual and stream "
        f"({c.method}, {c.m} basis functions), hyperparameters fitted by type-II MAP "
        "under a Normal hyperprior whose location is shared by the cohort; one jitted, "
        "vmapped call per stream (fit seconds per stream: "
        + ", ".join(f"{s:.1f}" for s in m["gp_fit_seconds_per_stream"])
        + ").",
        "",
        *table(["held-out points", "90% coverage", "mean CRPS", "points"],
               [[seg, f"{m[f'gp_{seg}_coverage_90']:.3f}", f"{m[f'gp_{seg}_crps']:.4f}",
                 m[f"gp_{seg}_n_points"]] for seg in SEGMENTS]),
        "",
        f"Pooled held-out 90% coverage: **{m['gp_held_out_coverage_90']:.3f}** "
        f"(target 0.85-0.95: {m['gp_held_out_coverage_90_within_85_95']}).",
        "",
        *table(["segment and stream", "90% coverage"], per_stream),
        "",
        *images(["gp_individual_fits.png", "gp_pit_histogram.png"]),
    ])  # fmt: skip
