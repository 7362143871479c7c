"""Hierarchical Bayesian twins of the user's own long-format files (``data=files``).

``python -m twinjax experiment=hierarchical data=files data.observations=obs.csv
[data.interventions=doses.csv] experiment.model=pk_oral``: reads the files
(:func:`twinjax.bayes.tables.longitudinal_data`), builds the hierarchical model the options
describe with data-scale default priors (:mod:`twinjax.bayes.priors`), checks the priors against
the data, fits it (NUTS, or SVI), then writes posterior_summary.csv (named population parameters,
V and half-life for PK), subjects.csv, fitted_curves.csv, individual_fits.png, posterior.nc
(ArviZ InferenceData) and report.md.

Two or three compartments: ``experiment.model=pk2_iv|pk2_oral|pk3_iv``; steady-state doses: an
``ss`` (0/1) and ``ii`` (interval) column in the doses. Covariates: ``data.static=PATH
experiment.covariates=[Age,LBM,Sex] experiment.covariate_effects={lCl:[Age,LBM],lV1:[Age]}``
(numeric ones centred, optionally scaled; text ones treatment-coded against their first level;
both recorded in metrics.json and report.md). ``experiment.parameterization=centred`` samples the
individual parameters directly (dense data), the default ``noncentred`` their standardized
effects (sparse data).

Forecasts (:mod:`twinjax.bayes.forecast`): ``experiment.forecast_steps=N
[experiment.forecast_every=DT]`` (the next N times after each subject's last visit) or
``experiment.forecast_times=[...]`` write forecasts.csv and forecasts.png;
``experiment.holdout_last=k`` fits on all but each subject's last k visits and scores their
forecasts next to last value carried forward (metrics.json ``holdout_*`` and ``locf_*``).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from twinjax.bayes import (
    diagnose,
    flatten_chains,
    hierarchical_inference_data,
    population_draws,
    posterior_predictive,
    problems_of,
)
from twinjax.bayes.forecast import HeldOut, forecast, future_times, hold_out_last
from twinjax.bayes.from_options import build_spec, fit, load, mean_model_of
from twinjax.bayes.pk_routes import pk_derived
from twinjax.bayes.plots import plot_forecasts, plot_individual_fits
from twinjax.bayes.priors import prior_predictive_check
from twinjax.bayes.summary import posterior_table, subject_table
from twinjax.config import Config
from twinjax.eval.score import NAMES as SCORE_NAMES
from twinjax.eval.score import Forecast, pooled, score, select
from twinjax.pipeline import ConfigError
from twinjax.runtime.files import replacing
from twinjax_experiments.config import Hierarchical
from twinjax_experiments.report import images, table, write_csv, write_markdown

# the held-out and LOCF scores in metrics.json: score()'s pooled summary, n as n_points
NAMED = {"n_points": "n", **{k: k for k in SCORE_NAMES}}

LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)  # the quantiles in forecasts.csv


def run(cfg: Config, out_dir: Path) -> dict:
    c: Hierarchical = cfg.experiment
    # the fit key comes first of four, as in pk_theophylline: the same model on the same data
    # (e.g. Theoph written to files) reproduces its draws
    k_fit, k_forecast, k_pred, k_check = jax.random.split(jax.random.key(cfg.seed), 4)
    k_idata = jax.random.fold_in(k_pred, 1)  # a fifth key that leaves the four above as they were
    _check_forecast_options(c)
    model = mean_model_of(c)
    data = load(cfg.data, c, model)
    held = _hold_out(data, c.holdout_last)
    if held is not None:  # fit on the visits before each subject's last holdout_last
        data = held.train
    spec = build_spec(c, model, data)
    check = prior_predictive_check(spec, data, key=k_check) if c.prior_check else None
    start = time.perf_counter()
    samples, by_chain, divergences, stats = fit(spec, data, k_fit, c)
    seconds = time.perf_counter() - start
    pop = population_draws(spec, samples)
    if model.kind == "pk":
        pop |= pk_derived(pop)
    summary = posterior_table(pop, by_chain=by_chain)
    derived = pk_derived if model.kind == "pk" else None
    subjects = subject_table(spec, samples["theta"], data.subject_ids, derived=derived)
    curves, band, in_sample = _curves(spec, samples, data, k_pred, c, by_chain)
    metrics = _metrics(c, spec, data, summary, check, divergences, seconds, in_sample)
    if by_chain:  # diagnostics named by parameter (warns when bad)
        energy = None if stats is None else stats["energy"]
        metrics["diagnostic_problems"] = problems_of(diagnose(pop, divergences, energy=energy))
    idata = hierarchical_inference_data(
        spec, samples, data, pop, key=k_idata, by_chain=by_chain, sample_stats=stats,
        attrs={"model": c.model, "time_centre": data.time_centre, "error_model": c.error_model,
               "covariates": repr(data.covariate_info), "inference": c.inference},
    )  # fmt: skip
    metrics["objective"] = abs(metrics["in_sample_coverage_90"] - 0.9)  # sweeps: no held-out data
    times = _forecast_times(c, data, held)
    more = []
    if times is not None:  # every posterior draw, with the model's residual error
        flat = flatten_chains(samples) if by_chain else samples
        fc = forecast(spec, flat, times, data.regimen, key=k_forecast)
        metrics["forecast_points"] = int(times.size)
        if held is not None:
            metrics |= holdout_scores(fc, held)
        more = write_forecasts(out_dir, c, metrics, spec, flat, data, fc, held)
    write_report(out_dir, c, metrics, summary, subjects, curves, band, data, idata, more)
    return metrics


def _curves(spec, samples, data, key, c: Hierarchical, by_chain: bool):
    """Per-subject curves on a grid (noise-free 90% band, and with residual error) and the
    in-sample 90% coverage of the observations."""
    flat = flatten_chains(samples) if by_chain else samples
    n = flat["theta"].shape[0]
    keep = np.asarray(jax.random.permutation(key, n))[: c.predictive_draws]
    flat = {k: np.asarray(v)[keep] for k, v in flat.items()}
    mask = np.asarray(data.mask, bool)
    t = np.where(mask, data.times, np.nan)
    lo, hi = np.nanmin(t), np.nanmax(t)
    grid = np.tile(np.linspace(lo, hi, c.grid_points), (t.shape[0], 1))
    k_obs, k_grid = jax.random.split(key)
    pp = posterior_predictive(spec, flat, jnp.asarray(data.times), data.regimen, key=k_obs)
    draws = np.asarray(pp.observations, np.float64)
    fitted = Forecast(mean=draws.mean(0), draws=draws, y=np.asarray(data.values), mask=mask)
    cov90 = score(fitted)["pooled"]["coverage_90"]
    band = posterior_predictive(spec, flat, jnp.asarray(grid), data.regimen, key=k_grid)
    curve_q = np.quantile(np.asarray(band.curves), [0.05, 0.5, 0.95], axis=0)
    obs_q = np.quantile(np.asarray(band.observations), [0.05, 0.95], axis=0)
    rows = pd.DataFrame({
        "subject": np.repeat(np.asarray(data.subject_ids, dtype=object), c.grid_points),
        "time": (grid + data.time_centre).ravel(),
        "median": curve_q[1].ravel(), "q5": curve_q[0].ravel(), "q95": curve_q[2].ravel(),
        "predictive_q5": obs_q[0].ravel(), "predictive_q95": obs_q[1].ravel(),
    })  # fmt: skip
    return rows, (grid, np.asarray(band.curves)), {"in_sample_coverage_90": cov90}


def _metrics(c, spec, data, summary, check, divergences, seconds, in_sample) -> dict:
    m = {
        "model": c.model, "params": list(spec.params), "random": list(spec.random_params),
        "correlated": c.correlated, "error_model": c.error_model, "inference": c.inference,
        "time_centre": data.time_centre, "n_subjects": len(data.subject_ids),
        "n_observations": int(np.asarray(data.mask).sum()), "fit_seconds": seconds,
        "num_divergences": int(divergences), "parameterization": c.parameterization,
        "covariate_effects": [list(p) for p in spec.covariate_effects],
        "covariates": [list(i) for i in data.covariate_info],
        "priors": {"prior_loc": list(spec.prior_loc), "prior_scale": list(spec.prior_scale),
                   "omega_scale": list(spec.omega_scale), "sigma_scale": spec.sigma_scale},
        **in_sample,
    }  # fmt: skip
    if c.inference == "nuts":
        m |= {"num_chains": c.nuts.num_chains, "num_draws_per_chain": c.nuts.num_samples}
    if check is not None:
        m |= {"prior_check_tail_fraction": check.tail_fraction,
              "prior_check_mean_quantile": check.mean_quantile,
              "prior_check_problems": list(check.problems)}  # fmt: skip
    for row in summary.itertuples():
        for col in ("mean", "sd", "q5", "q95", "r_hat", "ess_bulk"):
            m[f"posterior_{col}_{row.parameter}"] = float(getattr(row, col))
    m["max_r_hat"] = float(summary.r_hat.max())
    m["min_ess_bulk"] = float(summary.ess_bulk.min())
    return m


def write_report(
    out_dir: Path, c, m, summary, subjects, curves, band, data, idata, more=()
) -> None:
    """The tables (CSV), posterior.nc, the fits figure and report.md (``more``: its last
    lines)."""
    write_csv(summary, out_dir / "posterior_summary.csv", index=False)
    write_csv(subjects, out_dir / "subjects.csv", index=False)
    write_csv(curves, out_dir / "fitted_curves.csv", index=False)
    with replacing(out_dir / "posterior.nc") as tmp:
        idata.to_netcdf(str(tmp))
    grid, draws = band
    k = min(c.n_plot_subjects, draws.shape[1])
    plot_individual_fits(
        out_dir / "individual_fits.png", grid[:k] + data.time_centre, draws[:, :k],
        np.asarray(data.times)[:k] + data.time_centre, data.values[:k], data.mask[:k],
        names=data.subject_ids[:k], title=f"{c.model}: posterior median and 90% band",
    )  # fmt: skip
    fmt = lambda x: f"{x:.4g}"
    rows = [[r.parameter, *(fmt(getattr(r, k)) for k in ("mean", "sd", "q5", "q95", "r_hat")),
             f"{r.ess_bulk:.0f}", f"{r.ess_tail:.0f}", fmt(r.mcse_mean)]
            for r in summary.itertuples()]  # fmt: skip
    check = m.get("prior_check_problems")
    write_markdown(out_dir, [
        f"# Hierarchical twins: {c.model}, {m['n_subjects']} subjects, "
        f"{m['n_observations']} observations",
        "",
        f"Parameters {', '.join(m['params'])}; random effects on {', '.join(m['random']) or 'none'}"
        f" ({'LKJ-correlated' if c.correlated else 'diagonal'}); {c.error_model} error; time "
        f"centre {m['time_centre']:g}. {c.inference.upper()} in {m['fit_seconds']:.1f} s; "
        f"divergences: {m['num_divergences']}.",
        "",
        *diagnostic_lines(m, c.inference),
        "",
        "Prior-predictive check: " + ("not run" if check is None else "; ".join(check) or "ok")
        + ".",
        "",
        *_covariate_lines(m),
        "",
        *table(["parameter", "mean", "sd", "5%", "95%", "R-hat", "bulk ESS", "tail ESS",
                "MCSE"], rows),
        "",
        *(["V, Cl and the half-lives are those of the typical subject (population means)."]
          if c.model.startswith("pk") else []),
        "",
        f"In-sample 90% predictive coverage: {m['in_sample_coverage_90']:.3f}. Per-subject "
        "posteriors: subjects.csv; fitted curves: fitted_curves.csv; ArviZ InferenceData: "
        "posterior.nc (`arviz.from_netcdf`: posterior, log-likelihood and posterior predictive "
        "of each observation" + (", NUTS' sample stats" if c.inference == "nuts" else "")
        + "; ready for `arviz.loo`, `arviz.plot_ppc`"
        + (", `arviz.plot_energy`" if c.inference == "nuts" else "") + ").",
        "",
        *images(["individual_fits.png"]),
        *more,
    ])  # fmt: skip


def diagnostic_lines(m: dict, inference: str) -> list[str]:
    """The report's verdict on the MCMC diagnostics (ArviZ's): each failed check on a line
    (R-hat > 1.01, bulk or tail ESS under 100 per chain, divergences, BFMI < 0.3), or that all
    passed; SVI has none to check."""
    if inference != "nuts":
        return ["MCMC diagnostics: none (SVI draws from its fitted guide, not MCMC chains)."]
    problems = m.get("diagnostic_problems", [])
    if not problems:
        return [f"MCMC diagnostics: all passed (R-hat at most {m['max_r_hat']:.3f}, bulk ESS at "
                f"least {m['min_ess_bulk']:.0f}, no divergences, BFMI fine)."]  # fmt: skip
    return ["**MCMC diagnostics: problems** (do not trust these draws until they are fixed: "
            "more warmup and draws, a higher target_accept, or a reparameterization):", "",
            *(f"- {p}" for p in problems)]  # fmt: skip


def _covariate_lines(m: dict) -> list[str]:
    """How each covariate entered the model (centre and scale, or reference level)."""
    if not m["covariates"]:
        return []
    lines = ["Covariates (effects `beta_<parameter>_<column>` in the table):"]
    for name, kind, a, b in m["covariates"]:
        if kind == "continuous":
            lines.append(f"- {name}: continuous, centred at {a:.4g}" + (f", scaled by {b:.4g}"
                         if b != 1.0 else ""))  # fmt: skip
        else:
            lines.append(f"- {name}: categorical, reference level {a!r} (levels {list(b)})")
    return [*lines, ""]


def _check_forecast_options(c: Hierarchical) -> None:
    """Refuses contradictory forecast options before anything is fitted."""
    if c.holdout_last < 0 or c.forecast_steps < 0:
        raise ConfigError("experiment.holdout_last and experiment.forecast_steps are >= 0")
    if c.forecast_steps and c.forecast_times:
        raise ConfigError(
            "experiment.forecast_steps (times after each subject's last visit) and "
            "experiment.forecast_times (the same absolute times for all) exclude each other"
        )
    if c.forecast_every is not None and not c.forecast_steps:
        raise ConfigError("experiment.forecast_every spaces experiment.forecast_steps=N: give N")
    if c.holdout_last and (c.forecast_steps or c.forecast_times):
        raise ConfigError(
            "experiment.holdout_last scores forecasts of held-out visits; forecast the future "
            "in a run without it (experiment.forecast_steps or experiment.forecast_times)"
        )


def _hold_out(data, k: int) -> HeldOut | None:
    if not k:
        return None
    try:
        return hold_out_last(data, k)
    except ValueError as e:
        raise ConfigError(f"experiment.holdout_last={k}: {e}") from e


def _forecast_times(c: Hierarchical, data, held: HeldOut | None) -> np.ndarray | None:
    """Each subject's forecast times on the data's (centred) time axis, or None."""
    if held is not None:
        return held.times
    if c.forecast_times:
        t = np.asarray(c.forecast_times, np.float64) - data.time_centre
        return np.tile(t, (len(data.subject_ids), 1))
    if not c.forecast_steps:
        return None
    try:
        return future_times(data, c.forecast_steps, c.forecast_every)
    except ValueError as e:
        raise ConfigError(f"experiment.forecast_every: {e}") from e


def holdout_scores(fc: Forecast, held: HeldOut) -> dict:
    """The twin's forecasts of the held-out visits and last value carried forward on the same
    points, scored by :mod:`twinjax.eval.score`: RMSE and MAE (of the predictive mean; of the
    last value), CRPS, pinball loss, coverage and width of the central 50% and 90% intervals,
    and the number of points."""
    twin = dataclasses.replace(fc, y=held.values, mask=np.ones(held.values.shape, bool))
    return {
        "holdout_last": int(held.values.shape[1]),
        "holdout_dropped_subjects": [str(s) for s in held.dropped],
        **{f"holdout_{k}": v for k, v in select(score(twin)["pooled"], NAMED).items()},
        **{f"locf_{k}": v for k, v in select(pooled(locf_forecasts(held)), NAMED).items()},
    }


def locf_forecasts(held: HeldOut) -> list[Forecast]:
    """Last value carried forward to the held-out visits, one forecast per held-out visit h:
    the last training value as the point, and as its predictive draws that value plus the
    cohort's changes over h consecutive training visits. Where no subject has h + 1 training
    visits, the draws are the point alone (a warning)."""
    mask = np.asarray(held.train.mask, bool)
    order = np.argsort(np.where(mask, held.train.times, np.inf), axis=1, kind="stable")
    v = np.take_along_axis(np.asarray(held.train.values, np.float64), order, 1)
    m = np.take_along_axis(mask, order, 1)  # each row's observations first, in time order
    last = v[np.arange(len(v)), m.sum(axis=1) - 1][:, None]
    out = []
    for h in range(1, held.values.shape[1] + 1):
        changes = (v[:, h:] - v[:, :-h])[m[:, h:]]
        if not changes.size:
            warnings.warn(f"last value carried forward: no subject has {h + 1} training visits, "
                          f"so its {h}-visit-ahead forecast has no spread", stacklevel=2)  # fmt: skip
            changes = np.zeros(1)
        y = held.values[:, h - 1 : h]
        out.append(Forecast(mean=last, draws=last[None] + changes[:, None, None], y=y,
                            mask=np.ones(y.shape, bool), method="locf"))  # fmt: skip
    return out


def forecast_table(fc: Forecast, data, held: HeldOut | None) -> pd.DataFrame:
    """One row per subject and forecast time (data units): mean and quantiles (``q05`` ...),
    and the held-out observation when there is one."""
    t = fc.time.shape[1]
    cols = {
        "subject_id": np.repeat(np.asarray(data.subject_ids, dtype=object), t),
        "time": (fc.time + data.time_centre).ravel(),
        "mean": np.asarray(fc.mean).ravel(),
    }
    for level, q in zip(LEVELS, fc.quantile(LEVELS), strict=True):
        cols[f"q{round(100 * level):02d}"] = q.ravel()
    if held is not None:
        cols["observed"] = held.values.ravel()
    return pd.DataFrame(cols)


def write_forecasts(out_dir: Path, c, m, spec, flat, data, fc: Forecast, held) -> list[str]:
    """forecasts.csv and forecasts.png; returns the report's lines about them."""
    write_csv(forecast_table(fc, data, held), out_dir / "forecasts.csv", index=False)
    k = min(c.n_plot_subjects, len(data.subject_ids))
    mask = np.asarray(data.mask, bool)[:k]
    t = np.where(mask, np.asarray(data.times)[:k], np.nan)
    grid = np.linspace(np.nanmin(t, 1), np.maximum(np.nanmax(t, 1), fc.time[:k].max(1)),
                       c.grid_points, axis=1)  # fmt: skip
    thin = np.linspace(0, flat["theta"].shape[0] - 1, c.predictive_draws).astype(int)
    sub = {s: np.asarray(v)[thin][:, :k] if s == "theta" else np.asarray(v)[thin]
           for s, v in flat.items()}  # fmt: skip
    regimen = jax.tree.map(lambda a: np.asarray(a)[:k], data.regimen)
    curves = posterior_predictive(spec, sub, jnp.asarray(grid), regimen, key=jax.random.key(0))
    q = fc.quantile((0.05, 0.5, 0.95))[:, :k]
    centre = data.time_centre
    plot_forecasts(
        out_dir / "forecasts.png", grid + centre, np.asarray(curves.curves),
        np.asarray(data.times)[:k] + centre, data.values[:k], mask, fc.time[:k] + centre, q,
        held_values=None if held is None else held.values[:k], names=data.subject_ids[:k],
        title=f"{c.model}: fit and forecast (90% predictive)",
    )  # fmt: skip
    return ["", "## Forecasts", "", _forecast_sentence(c, m, fc), "",
            *(_holdout_lines(m) if held is not None else []), *images(["forecasts.png"])]  # fmt: skip


def _forecast_sentence(c, m, fc: Forecast) -> str:
    n, t = fc.time.shape
    if c.holdout_last:
        what = f"each subject's last {c.holdout_last} visits, held out of the fit"
    elif c.forecast_times:
        what = f"times {list(c.forecast_times)}"
    else:
        every = f"{c.forecast_every:g} apart" if c.forecast_every is not None else (
            "spaced by the subject's median visit gap")  # fmt: skip
        what = f"the next {t} times after each subject's last observation, {every}"
    return (f"{n} subjects at {what}: posterior predictive (with residual error) from "
            f"{fc.draws.shape[0]} draws; mean and 5/25/50/75/95% quantiles in forecasts.csv.")  # fmt: skip


def _holdout_lines(m: dict) -> list[str]:
    """The held-out scores of the twin next to last value carried forward, and which wins."""
    cells = lambda p: [f"{m[f'{p}_{k}']:.4g}" for k in ("rmse", "mae", "coverage_90",
                                                         "width_90", "crps")]  # fmt: skip
    rows = [
        ["hierarchical twin", *cells("holdout")],
        ["last value carried forward", *cells("locf")],
    ]
    dropped = m["holdout_dropped_subjects"]
    better = lambda k: "the twin" if m[f"holdout_{k}"] < m[f"locf_{k}"] else "LOCF"
    return [
        f"Held-out scores over {m['holdout_n_points']} points (last {m['holdout_last']} visits of "
        f"each subject; the point forecast is the predictive mean, or the last value):",
        "",
        *table(["forecaster", "RMSE", "MAE", "90% coverage", "90% width", "CRPS"], rows),
        "",
        f"Lower CRPS: {better('crps')}; lower RMSE: {better('rmse')}."
        + (f" Left out (too few visits): {', '.join(dropped)}." if dropped else ""),
        "",
    ]
