"""Bayesian recurrent twins on the synthetic cohort: parameter uncertainty in the forecasts.

The core pipeline fits the population twin and the personal MAP twins; SVI then fits a posterior
over every individual's twin parameters around its MAP (prior centred on the population twin,
prior SDs learned from the cohort). Held-out one-step forecasts are the posterior predictive
mixtures; their 90% intervals are scored on each individual's test period, raw and after the same
validation-segment variance recalibration the point twins get, next to the point twins.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from twinjax import pipeline
from twinjax.bayes import mixture as mx
from twinjax.bayes.idata import loo_summary, recurrent_inference_data
from twinjax.bayes.plots import plot_coverage, plot_individual_fits, plot_pit_histogram
from twinjax.bayes.recurrent import fit_bayesian_twins, predictive_mixture
from twinjax.config import Config
from twinjax.data.normalize import denormalize, denormalize_scale
from twinjax.eval.score import Forecast, pit, pit_coverage, score, select
from twinjax.runtime.files import replacing
from twinjax_experiments.config import BayesTwins
from twinjax_experiments.report import images, table, write_markdown

LEVELS = np.array([0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95])
# the point (MAP) twins' calibrated scores in metrics.json
POINT = {k: k for k in ("coverage_90", "coverage_50", "crps")}
FIGURES = ("forecast_bands.png", "coverage_levels.png", "pit_bayesian.png")


def _data_units(fit, mix):
    stats = fit.scalers.values
    mean = np.stack([np.asarray(denormalize(stats, m)) for m in mix.mean])
    scale = np.stack([np.asarray(denormalize_scale(stats, s)) for s in mix.scale])
    return mean, scale


def _targets(cohort, mix):
    rows = np.arange(cohort.n_individuals)[:, None]
    return cohort.values[rows, mix.t], cohort.mask[rows, mix.t] & mix.inside[..., None]


def _point_forecast(point, y, observed, j: int) -> Forecast:
    """The point (MAP) twins' Gaussian one-step forecasts of stream ``j``."""
    as64 = lambda x: np.asarray(x[..., j], np.float64)
    return Forecast(mean=as64(point.mean), scale=as64(point.scale), y=as64(y),
                    mask=np.asarray(observed[..., j], bool))  # fmt: skip


def run(root: Config, out_dir: Path) -> dict:
    exp: BayesTwins = root.experiment
    k_data, k_fit, k_svi, k_draw, k_eval = jax.random.split(jax.random.key(root.seed), 5)
    cohort = pipeline.check_cohort(pipeline.load_cohort(k_data, root.data), root.data)
    fit = pipeline.fit_twins(k_fit, cohort, root, out_dir)
    length = root.data.context + root.data.horizon
    bayes = fit_bayesian_twins(
        k_svi, fit.spec, fit.arrays, fit.population, fit.personal,
        prior_sd=1.0 / np.sqrt(root.train.prior_strength), length=length,
        n_windows=root.train.batch_windows, steps=exp.steps, lr=exp.lr, scale_lr=exp.scale_lr,
        init_scale=exp.init_scale, layers=tuple(exp.layers), checkpoint_dir=out_dir / "checkpoints" / "bayesian",
        checkpoint_every=exp.checkpoint_every, progress=root.train.progress,
    )  # fmt: skip
    predict = lambda seg: predictive_mixture(
        bayes, fit.spec, fit.arrays, seg, key=k_draw, num_samples=exp.num_draws, history=length - 1
    )
    val, test = predict(fit.arrays.val), predict(fit.arrays.test)
    (v_mean, v_scale), (mean, scale) = _data_units(fit, val), _data_units(fit, test)
    v_y, v_obs = _targets(cohort, val)
    y, obs = _targets(cohort, test)
    factor = mx.spread_factor(v_mean, v_scale, v_y, v_obs)  # validation only
    c_mean, c_scale = mx.rescale_spread(mean, scale, factor)
    point = fit.forecasts(cohort, fit.arrays.test, personal=True, history=length - 1)

    f = pipeline.target_index(cohort, root.data)
    metrics = _metrics(k_eval, cohort, f, (mean, scale), (c_mean, c_scale), factor, point, y, obs)
    metrics["svi_final_loss_per_individual"] = float(np.mean(bayes.losses[-50:]))
    metrics["learned_prior_sd"] = {
        k.removeprefix("theta/").removesuffix("_prior_scale"): float(v)
        for k, v in bayes.params.items()
        if k.endswith("_prior_scale")
    }
    metrics["objective"] = mx.mixture_calibration(k_eval, v_mean[..., f], v_scale[..., f],
                                                  v_y[..., f], v_obs[..., f])["crps"]  # fmt: skip
    metrics["posterior"] = write_posterior(
        out_dir, bayes, fit, cohort, key=k_draw, num_samples=exp.num_draws, history=length - 1
    )
    _figures(out_dir, cohort, f, test, (mean, scale), (c_mean, c_scale), point, y, obs, exp)
    _report(out_dir, metrics, root)
    return metrics


def _metrics(key, cohort, f: int, raw, calibrated, factor, point, y, obs) -> dict:
    """Each stream's 90%/50% coverage, CRPS and PIT of the Bayesian twins (raw and
    recalibrated) and of the point twins; the target stream's headline numbers."""
    metrics: dict = {"n_individuals": cohort.n_individuals, "target": cohort.variables[f]}
    streams = {}
    for j, name in enumerate(cohort.variables):
        o = obs[..., j]
        by = lambda mean, scale, j=j, o=o: mx.mixture_calibration(
            key, mean[..., j], scale[..., j], y[..., j], o
        )
        p = score(_point_forecast(point, y, obs, j))
        streams[name] = {
            "bayesian_raw": by(*raw),
            "bayesian_calibrated": by(*calibrated),
            "validation_spread_factor": float(factor[j]),
            "point_map_calibrated": select(p["pooled"], POINT) | {"pit_ks": p["pit"]["ks"]},
        }
    metrics["streams"] = streams
    headline = streams[metrics["target"]]
    metrics["bayesian_twin_test_coverage_90"] = headline["bayesian_calibrated"]["coverage_90"]
    metrics["bayesian_twin_test_coverage_90_raw"] = headline["bayesian_raw"]["coverage_90"]
    metrics["bayesian_twin_test_coverage_90_within_85_95"] = (
        0.85 <= metrics["bayesian_twin_test_coverage_90"] <= 0.95
    )
    metrics["point_twin_test_coverage_90"] = headline["point_map_calibrated"]["coverage_90"]
    metrics["figures"] = list(FIGURES)
    return metrics


def write_posterior(out_dir: Path, bayes, fit, cohort, *, key, num_samples, history) -> dict:
    """The posterior as ArviZ InferenceData in posterior.nc (SVI: one chain, no sample_stats;
    the draws of the forecasts' mixtures) and its PSIS-LOO over the training points, with the
    problems ArviZ finds."""
    idata = recurrent_inference_data(
        bayes, fit.spec, fit.arrays, fit.scalers.values, cohort, key=key,
        num_samples=num_samples, history=history,
    )  # fmt: skip
    with replacing(out_dir / "posterior.nc") as tmp:
        idata.to_netcdf(str(tmp))
    loo, problems = loo_summary(idata)
    return {"file": "posterior.nc", "loo": loo, "problems": problems}


def _figures(out_dir, cohort, f, test, raw, calibrated, point, y, obs, exp: BayesTwins) -> None:
    c_mean, c_scale = (x[..., f] for x in calibrated)
    mix_pit = mx.mixture_pit(c_mean, c_scale, y[..., f])
    plot_pit_histogram(out_dir / "pit_bayesian.png", mix_pit[obs[..., f]],
                       title="Bayesian twins: test PIT (target stream)")  # fmt: skip
    p_pit = pit(_point_forecast(point, y, obs, f))
    plot_coverage(out_dir / "coverage_levels.png", LEVELS,
                  {"Bayesian twin": pit_coverage(mix_pit[obs[..., f]], LEVELS),
                   "Bayesian twin, raw": pit_coverage(mx.mixture_pit(
                       raw[0][..., f], raw[1][..., f], y[..., f])[obs[..., f]], LEVELS),
                   "point (MAP) twin": pit_coverage(p_pit[obs[..., f]], LEVELS)},
                  title="test coverage of central intervals")  # fmt: skip
    k = min(exp.n_plot_individuals, cohort.n_individuals)
    samples = mx.mixture_samples(jax.random.key(1), c_mean[:, :k], c_scale[:, :k], 8)
    plot_individual_fits(out_dir / "forecast_bands.png", test.t[:k], samples, test.t[:k],
                         y[:k, :, f], obs[:k, :, f], names=cohort.subject_ids[:k],
                         ylabel=cohort.variables[f],
                         title="Bayesian twins: one-step test forecasts, 90% band")  # fmt: skip


def _posterior_lines(post: dict) -> list[str]:
    loo = post["loo"]
    return [
        f"The posterior as ArviZ InferenceData: `{post['file']}` (the forecasts' draws as one "
        "chain; no sample_stats, SVI has none; each training point's one-step log-likelihood "
        "and posterior predictive, in data units, labelled by subject, stream and time). MCMC "
        f"diagnostics do not apply to SVI. PSIS-LOO (ArviZ): elpd {loo['elpd_loo']:.1f} (SE "
        f"{loo['se']:.1f}) over {loo['n_observations']} training points. Problems: "
        + ("; ".join(post["problems"]) or "none")
        + ".",
    ]


def _report(out_dir: Path, m: dict, cfg: Config) -> None:
    exp: BayesTwins = cfg.experiment
    forecasters = (("Bayesian, raw", "bayesian_raw"),
                   ("Bayesian, recalibrated", "bayesian_calibrated"),
                   ("point (MAP), recalibrated", "point_map_calibrated"))  # fmt: skip
    rows = [
        [name, label, *(f"{s[key][k]:{fmt}}" for k, fmt in
                        (("coverage_90", ".3f"), ("coverage_50", ".3f"), ("crps", ".4f"),
                         ("pit_ks", ".3f")))]
        for name, s in m["streams"].items() for label, key in forecasters
    ]  # fmt: skip
    prior = ", ".join(f"{k} {v:.3f}" for k, v in m["learned_prior_sd"].items())
    write_markdown(out_dir, [
        "# Bayesian recurrent twins",
        "",
        f"{m['n_individuals']} individuals, {cfg.model.cell.upper()} twins with {cfg.model.hidden} "
        "hidden units. Each individual's parameters get a Normal prior centred on the population "
        "twin, with one prior SD per parameter array learned from the cohort; SVI fits a "
        f"mean-field posterior ({exp.steps} steps, started at the personal MAP twins). Forecasts "
        f"are one-step-ahead on each individual's test period, averaged over {exp.num_draws} "
        "posterior draws. 'Recalibrated': the predictive spread times one factor per stream, "
        "fitted on the validation segment (never on test data), as for the point twins.",
        "",
        f"Target stream `{m['target']}`: 90% interval coverage **"
        f"{m['bayesian_twin_test_coverage_90']:.3f}** recalibrated, "
        f"{m['bayesian_twin_test_coverage_90_raw']:.3f} raw (target 0.85-0.95: "
        f"{m['bayesian_twin_test_coverage_90_within_85_95']}).",
        "",
        *table(["stream", "forecaster", "90% coverage", "50% coverage", "CRPS", "PIT KS"], rows),
        "",
        f"Learned prior SDs: {prior}.",
        "",
        *_posterior_lines(m["posterior"]),
        "",
        *images(m["figures"]),
    ])  # fmt: skip
