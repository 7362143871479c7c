"""The forecasters of the pbc_twins experiment: recurrent twins, GP twins, a hierarchical growth
model. Each returns its one-step predictions at every visit (:class:`Pred`, ``[N, T, F]``, on the
model scale: logs for the logged labs), fitted on the training visits only."""

from __future__ import annotations

import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from twinjax.bayes import (
    DiagnosticsWarning,
    HierarchicalSpec,
    TwinData,
    default_priors,
    diagnose,
    fit_gp_twins,
    flatten_chains,
    hierarchical_inference_data,
    hierarchical_model,
    mean_model,
    population_draws,
    posterior_predictive,
    predict_gp_twins,
    problems_of,
    run_nuts,
    run_svi,
    svi_draws,
)
from twinjax.bayes.gp import scale_times
from twinjax.data import CohortArrays, Scalers
from twinjax.eval import gaussian_intervals, sample_intervals
from twinjax.pipeline import (
    ConfigError,
    TwinFit,
    calibrate_scales,
    personalize_options,
    population_options,
    run_fingerprint,
    twin_spec,
)
from twinjax.runtime import claim_run_dir
from twinjax.train import fit_personal, fit_population
from twinjax.twins import cohort_predictions
from twinjax_experiments.config import PbcTwins
from twinjax_experiments.pbc_data import ARM, Pred, Visits, static_column

YEAR = 365.25


def _scatter(v: Visits, t: np.ndarray, inside: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Predictions ``[N, K, F]`` at steps ``t [N, K]`` onto the visit grid ``[N, T, F]``."""
    n, steps, f = v.cohort.values.shape
    out = np.full((n, steps, f), np.nan)
    rows = np.broadcast_to(np.arange(n)[:, None], t.shape)
    out[rows[inside], t[inside]] = x[inside]
    return out


def twin_predictions(
    key, v: Visits, prepared: tuple[CohortArrays, Scalers], cfg, out_dir: Path, levels
) -> tuple[dict[str, Pred], dict]:
    """Population and personalized recurrent twins (the model and train groups), recalibrated on
    the second-to-last visits; their one-step forecasts at every visit after the first, and the
    switched-arm effect on bilirubin at the last visit."""
    arrays, scalers = prepared
    cohort, steps = v.cohort, v.cohort.n_steps
    ckpt = Path(out_dir) / "checkpoints"
    claim_run_dir(ckpt, run_fingerprint(cfg, cohort, seed=cfg.seed), resume=cfg.train.resume)
    spec = twin_spec(cohort, cfg.model)
    # every series fits one window (at most 16 visits), so one window per individual and step
    pop_opt = population_options(cfg.data, cfg.train)._replace(window=steps, batch_windows=1)
    per_opt = personalize_options(cfg.data, cfg.train)._replace(window=steps, batch_windows=1)
    per_opt = per_opt._replace(selection=cfg.experiment.personal_selection)
    k_pop, k_per = jax.random.split(key)
    pop, losses, chosen = _early_stopped_population(
        k_pop, spec, prepared, pop_opt, ckpt / "population", cfg.experiment.population_eval_every
    )
    personal, _ = fit_personal(k_per, spec, pop, arrays, per_opt, ckpt / "personal")
    calibration = calibrate_scales(
        spec, arrays, pop, personal, history=steps, strength=cfg.train.calibration_strength
    )
    fit = TwinFit(spec, scalers, arrays, pop, personal, np.asarray(losses), calibration)
    after_first = np.asarray(cohort.valid()) & (np.arange(steps)[None, :] >= 1)
    preds, effects = {}, {}
    k_bili = list(cohort.variables).index("bili")
    for name, personal_twin in (("twin_population", False), ("twin_personalized", True)):
        fc = fit.forecasts(cohort, after_first, personal=personal_twin, history=steps)
        mean = _scatter(v, fc.t, fc.inside, fc.mean)
        sd = _scatter(v, fc.t, fc.inside, fc.scale)
        preds[name] = Pred(mean, gaussian_intervals(mean, sd, levels))
        effects[name] = _twin_arm_effect(fit, v, personal_twin, k_bili)
    effects["population_final_loss"] = float(np.asarray(losses)[-1]) if len(losses) else None
    effects["validation_nll"] = _validation_nll(fit, v)
    effects["population_steps_chosen"] = chosen
    return preds, effects


def _early_stopped_population(key, spec, prepared, options, ckpt: Path, every: int):
    """The population twin trained to ``options.steps``, evaluated on the validation visits
    every ``every`` steps (resuming its checkpoints); the parameters with the lowest validation
    NLL are kept (on ~1,200 training visits the twin overfits within a few hundred steps).
    ``every`` 0: the last parameters."""
    arrays, scalers = prepared
    if every <= 0 or not np.asarray(arrays.val).any():
        params, losses = fit_population(key, spec, arrays, options, ckpt)
        return params, losses, options.steps
    if any(p.name.isdigit() for p in ckpt.glob("*")):
        raise ConfigError(
            f"{ckpt} holds checkpoints of an earlier run: pbc_twins early-stops the population "
            "twin and cannot replay that choice from them; rerun with train.resume=false or in "
            "a new hydra.run.dir"
        )
    options = options._replace(checkpoint_every=every)
    best, best_nll, chosen, losses = None, np.inf, 0, []
    ones = {"population": np.ones(spec.n_features), "personal": None}
    for stop in range(every, options.steps + every, every):
        stop = min(stop, options.steps)
        params, part = fit_population(key, spec, arrays, options._replace(steps=stop), ckpt)
        losses.extend(np.asarray(part).tolist())
        fit = TwinFit(spec, scalers, arrays, params, None, None, ones)
        nll = _validation_nll(fit, None, arrays=arrays, personal=False)
        if nll < best_nll:
            best, best_nll, chosen = params, nll, stop
    return best, np.asarray(losses), chosen


def _validation_nll(fit: TwinFit, v: Visits | None, *, arrays=None, personal=True) -> float:
    """The twins' mean Gaussian NLL at the second-to-last visits in normalized units (each lab
    in units of its training SD); the last visit is never used."""
    arrays = fit.arrays if arrays is None else arrays
    val = np.asarray(arrays.val)
    if not val.any():
        return float("nan")
    params = fit.personal if personal else fit.population
    mean, scale, t, inside = cohort_predictions(
        params, fit.spec, arrays, val, history=val.shape[1], shared=not personal
    )
    factor = fit.calibration["personal"][:, None, :] if personal else fit.calibration["population"]
    scale = np.asarray(scale) * factor
    rows = np.arange(val.shape[0])[:, None]
    t = np.asarray(t)
    y = np.asarray(arrays.series.values)[rows, t]
    seen = np.asarray(arrays.series.mask)[rows, t] & np.asarray(inside)[..., None]
    z = (y - np.asarray(mean)) / scale
    nll = 0.5 * np.log(2 * np.pi) + np.log(scale) + 0.5 * z**2
    return float(nll[seen].mean())


def _twin_arm_effect(fit: TwinFit, v: Visits, personal: bool, k: int) -> dict:
    """Each patient's forecast of the last visit's log bilirubin under D-penicillamine minus
    under placebo (the arm input switched, the history kept), over patients with a target."""
    cohort, steps = v.cohort, v.cohort.n_steps
    j = list(cohort.static_names).index(ARM)
    raw = {}
    for arm in (0.0, 1.0):
        static = np.asarray(fit.arrays.series.static).copy()
        static[:, j] = (arm - float(fit.scalers.static_mean[j])) / float(fit.scalers.static_std[j])
        series = fit.arrays.series._replace(static=jnp.asarray(static, jnp.float32))
        switched = fit._replace(arrays=fit.arrays._replace(series=series))
        fc = switched.forecasts(cohort, v.test, personal=personal, history=steps)
        raw[arm] = fc.mean[:, 0, k]
    ok = v.target[:, k]
    diff = (raw[1.0] - raw[0.0])[ok]
    return _effect_summary(diff)


def _effect_summary(diff: np.ndarray) -> dict:
    q5, q95 = np.quantile(diff, [0.05, 0.95])
    return {
        "mean_effect": float(diff.mean()),
        "patients_q05": float(q5),
        "patients_q95": float(q95),
        "n": int(diff.size),
    }


def gp_predictions(v: Visits, c: PbcTwins, levels) -> Pred:
    """Exact GP twins per lab over the visit day (cohort span mapped to [-1, 1]), fitted on every
    visit before the last (the twins' validation visits are data here, as they are the twins'
    inputs when they forecast the last); the last visit is a forecast, the others a smooth."""
    cohort = v.cohort
    days = np.nan_to_num(v.days, nan=0.0)
    span = float(np.nanmax(v.days))
    x = jnp.asarray(scale_times(days, 0.0, span), jnp.float32)
    means, sds = [], []
    for k in range(cohort.n_features):
        y = jnp.asarray(cohort.values[..., k], jnp.float32)
        mask = jnp.asarray(cohort.mask[..., k] & (v.train | v.val))
        tw = fit_gp_twins(x, y, mask, method="exact", steps=c.gp_steps, lr=c.gp_lr)
        mu, sd = predict_gp_twins(tw, x, y, mask, x, method="exact")
        means.append(np.asarray(mu, np.float64))
        sds.append(np.asarray(sd, np.float64))
    valid = np.asarray(cohort.valid())[..., None]
    mean = np.where(valid, np.stack(means, -1), np.nan)
    return Pred(mean, gaussian_intervals(mean, np.stack(sds, -1), levels))


def _covariates(v: Visits) -> tuple[np.ndarray, tuple[str, ...]]:
    cols = np.stack(
        [static_column(v, ARM), static_column(v, "sex=m"), static_column(v, "age") / 10], 1
    )
    return cols - cols.mean(0), (ARM, "male", "age10")


EFFECTS = (("intercept", ARM), ("slope", ARM), ("intercept", "male"), ("intercept", "age10"))


def growth_predictions(key, v: Visits, c: PbcTwins, levels) -> tuple[Pred, dict, dict, dict]:
    """A hierarchical linear growth model per lab fitted on every visit before the last (outcome
    standardized on them, years centred at their mean time; data-scale default priors, sampled in
    standardized units); the predictive at every visit, the arm effect at the last visit,
    diagnostics and each lab's InferenceData (observations in the standardized units, the
    mean and sd in its attrs)."""
    cohort = v.cohort
    years = np.nan_to_num(v.days, nan=0.0) / YEAR
    train = np.asarray(v.train | v.val)  # every visit before the last
    centre = float(years[train].mean())
    cov, cov_names = _covariates(v)
    model = mean_model("linear")
    means, ivs, diag, effect, idatas = [], [], {}, {}, {}
    keys = jax.random.split(key, cohort.n_features)
    for k, lab in enumerate(cohort.variables):
        mask = cohort.mask[..., k] & train
        y = cohort.values[..., k]
        m, s = float(y[mask].mean()), float(y[mask].std())
        data = TwinData(years - centre, np.where(mask, (y - m) / s, 0.0), mask, None, cov,
                        tuple(cohort.subject_ids), cov_names)  # fmt: skip
        pri = default_priors(model, data, "additive")
        spec = HierarchicalSpec(
            model.predict, model.params, prior_loc=pri.prior_loc, prior_scale=pri.prior_scale,
            omega_scale=pri.omega_scale, sigma_scale=pri.sigma_scale, covariate_effects=EFFECTS,
            standardized=True,
        )  # fmt: skip
        attrs = {"model": "linear growth", "lab": lab, "outcome": "standardized: (value - mean)"
                 " / sd on the training visits", "mean": m, "sd": s, "time": "years - centre",
                 "centre": centre}  # fmt: skip
        flat, diag[lab], idatas[lab] = _fit_growth(keys[k], spec, data, c, attrs)
        draws = posterior_predictive(
            spec, flat, data.times, None, key=jax.random.fold_in(keys[k], 1)
        )
        obs = m + s * np.asarray(draws.observations, np.float64)
        means.append(obs.mean(0))
        ivs.append(sample_intervals(obs, levels))
        if lab == "bili":
            effect = _growth_arm_effect(flat, data, v, s, k)
    valid = np.asarray(cohort.valid())[..., None]
    mean = np.where(valid, np.stack(means, -1), np.nan)
    intervals = {
        lv: tuple(np.stack([iv[lv][j] for iv in ivs], -1) for j in (0, 1)) for lv in levels
    }
    return Pred(mean, intervals), effect, diag, idatas


def _fit_growth(key, spec, data, c: PbcTwins, attrs: dict) -> tuple[dict, dict, object]:
    """One lab's growth fit: thinned draws by site, diagnostics and the fit's InferenceData
    (NUTS: by chain, with sample_stats; SVI: the guide's draws as one chain)."""
    k_fit, k_thin = jax.random.split(key)
    k_idata = jax.random.fold_in(key, 2)
    if c.growth_inference == "nuts":
        res = run_nuts(
            hierarchical_model, k_fit, spec, data, **c.nuts.kwargs(), progress=c.progress
        )
        pop = population_draws(spec, res.samples)
        with warnings.catch_warnings():  # run_nuts has warned already, by site
            warnings.simplefilter("ignore", DiagnosticsWarning)
            d = diagnose(pop, res.num_divergences, energy=res.sample_stats["energy"])
        info = {"divergences": int(res.num_divergences),
                "max_r_hat": round(float(max(d.r_hat.values())), 3),
                "min_ess_bulk": round(float(min(d.ess_bulk.values()))),
                "problems": "; ".join(problems_of(d)) or "none"}  # fmt: skip
        idata = hierarchical_inference_data(spec, res.samples, data, pop, key=k_idata,
                                            sample_stats=res.sample_stats, attrs=attrs)  # fmt: skip
        flat = flatten_chains(res.samples)
    else:
        res = run_svi(hierarchical_model, k_fit, spec, data, steps=c.svi_steps, progress=c.progress)
        flat = svi_draws(res, k_thin, spec, data, num_samples=c.predictive_draws)
        info = {"final_elbo_loss": float(res.losses[-1])}
        idata = hierarchical_inference_data(spec, flat, data, population_draws(spec, flat),
                                            key=k_idata, by_chain=False, attrs=attrs)  # fmt: skip
    n = flat["theta"].shape[0]
    keep = np.asarray(jax.random.permutation(k_thin, n))[: c.predictive_draws]
    return {name: np.asarray(x)[keep] for name, x in flat.items()}, info, idata


def _growth_arm_effect(flat: dict, data: TwinData, v: Visits, s: float, k: int) -> dict:
    """Predicted log bilirubin at each patient's last visit under D-penicillamine minus under
    placebo: ``beta_intercept + beta_slope * t`` (standardized units times ``s``), averaged over
    patients with a target; posterior mean and 90% interval of that average."""
    beta = np.asarray(flat["beta"])  # [draws, len(EFFECTS)]
    last = v.cohort.lengths - 1
    t = data.times[np.arange(len(last)), last][v.target[:, k]]
    per = s * (beta[:, [0]] + beta[:, [1]] * t[None, :])  # [draws, patients]
    avg = per.mean(1)
    q5, q95 = np.quantile(avg, [0.05, 0.95])
    return {
        "mean_effect": float(avg.mean()),
        "posterior_q05": float(q5),
        "posterior_q95": float(q95),
        "beta_slope_per_year": float(s * beta[:, 1].mean()),
        "beta_slope_q05": float(s * np.quantile(beta[:, 1], 0.05)),
        "beta_slope_q95": float(s * np.quantile(beta[:, 1], 0.95)),
        "n": int(t.size),
    }
