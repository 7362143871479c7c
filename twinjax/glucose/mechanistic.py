"""Twin (b): the Bayesian mechanistic twin, ReplayBG's identification for a whole cohort at once.

Each patient's key UVa/Padova parameters are estimated from the records alone (CGM, carbohydrates,
insulin and body weight), hierarchically across patients, with NumPyro:

- the estimated parameters (:data:`ESTIMATED`): ``log theta_ip = log ref_ip + mu_p + omega_p
  z_ip`` with ``z_ip ~ Normal(0, 1)`` (non-centred partial pooling), ``mu_p ~ Normal(0, 0.5)``,
  ``omega_p ~ HalfNormal(0.5)``; the deviation ``mu_p + omega_p z_ip`` is bounded to +-3 (a
  factor 20) by ``3 tanh(. / 3)`` so that no draw takes the fixed-step solver out of its
  stability region;
- every other parameter is held at ``ref_i``: the median of the simglucose table over the OTHER
  patients of the same age group (leave-one-out, :func:`reference_theta`), with the patient's own
  body weight (a covariate the clinic knows) and ``Ib`` set to the twin's own steady plasma
  insulin under the recorded basal rate;
- the starting state is the twin's own fasting steady state under the first recorded basal rate
  (:func:`~twinjax.glucose.records.steady_state`), never the patient's table state;
- the CGM residual ``r_t = cgm_t - g_t`` is AR(1) per patient (coefficient ``phi_i`` per 3-min
  cell, stationary SD ``sigma_i``): the Dexcom noise model is autocorrelated over tens of
  minutes, so independent errors would overstate what the data say about the parameters.

Why these parameters: on two days of noise-free records of six patients, the Fisher information
with the other parameters known (``/tmp/glucose_b/identifiability.txt`` from the session that
wrote this) gives joint posterior SDs of ``log`` kp1, kp3, Vmx, kabs, kmax, kd of at most 0.02,
0.16, 0.12, 0.30, 0.06, 0.25 at 10 mg/dL noise, while adding ``ka2`` (which trades off with
``kd``: both only delay insulin) pushes kd's to 1.7, and ``kp2`` (production's glucose
sensitivity, which trades off with ``kp1``/``kp3``) doubles kp3's. kp1 sets fasting glucose,
kp3 and Vmx are the insulin sensitivities of production and use, kabs/kmax the meal's rate of
appearance, kd the subcutaneous insulin's delay.

Inference is SVI (:func:`twinjax.bayes.run_svi`, a low-rank multivariate-normal guide over all
latents) on the first ``fit_days`` days, integrated with one RK4 step per minute (0.02 mg/dL
from simglucose, :mod:`twinjax.physiology.uva_padova`). NUTS, ReplayBG's choice, would need a
gradient through the day-long scan per leapfrog step (about 0.3 s per patient-day-gradient for the
30 patients here on 2 CPU cores, and hundreds of leapfrog steps per draw); the Gaussian guide
under-states posterior spread and skew, which the recovery coverage shows.
"""

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
from jaxtyping import Array, Key

from twinjax.bayes import run_svi
from twinjax.data import Cohort
from twinjax.glucose.intervals import day_origins, interval_scale
from twinjax.glucose.records import (
    Records,
    glucose_path,
    records,
    steady_state,
    with_basal_insulin,
)
from twinjax.glucose.scoring import HORIZONS, LEVEL, Forecasts, targets
from twinjax.glucose.twin import MechanisticTwin
from twinjax.physiology import PARAM_NAMES, load_patients, patient_names
from twinjax.physiology.params import age_group

ESTIMATED = ("kp1", "kp3", "Vmx", "kabs", "kmax", "kd")
BOUND = 3.0  # largest |log deviation| from the reference (see the module docstring)


def reference_theta(names, bw) -> np.ndarray:
    """``[patients, params]``: each patient's fixed parameter values, leaking nothing of its own.

    Entry ``i`` is the median of the table over the patients of ``names[i]``'s age group other
    than ``names[i]`` itself (all table patients of the group when ``names[i]`` is not in the
    table), with ``BW`` replaced by ``bw[i]``.

    Example:
        >>> ref = reference_theta(["adult#001", "child#002"], [80.0, 30.0])
        >>> ref.shape, float(ref[1, PARAM_NAMES.index("BW")])
        ((2, 32), 30.0)
    """
    table = np.asarray(load_patients().theta, np.float64)
    known = patient_names()
    groups = np.array([age_group(n) for n in known])
    out = []
    for name, w in zip(names, np.asarray(bw, np.float64), strict=True):
        others = (groups == age_group(name)) & (np.array(known) != name)
        if not others.any():
            raise ValueError(f"no table patients of {name!r}'s age group to take values from")
        ref = np.median(table[others], axis=0)
        ref[PARAM_NAMES.index("BW")] = w
        out.append(ref)
    return np.stack(out).astype(np.float32)


def deviated_theta(ref, dev, idx, basal):
    """Each patient's full parameter vector from its log deviations ``dev`` ``[patients, k]``."""
    dev = BOUND * jnp.tanh(dev / BOUND)
    theta = ref.at[:, idx].set(ref[:, idx] * jnp.exp(dev))
    return jax.vmap(with_basal_insulin)(theta, basal)


@partial(jax.jit, static_argnames=("step", "substeps"))
def fasting_paths(theta, basal, carbs, insulin, *, step, substeps):
    """Glucose at every reading of each patient's twin, from its own fasting state. Jitted: the
    model also runs outside SVI's compiled step (initialization), and an eager scan would be
    compiled again at every such call."""

    def one(th, b, c, u):
        return glucose_path(th, steady_state(th, b), c, u, step=step, substeps=substeps)

    return jax.vmap(one)(theta, basal, carbs, insulin)


def glucose_model(ref, basal, carbs, insulin, cgm, *, idx, step, substeps=1):
    """The hierarchical model (NumPyro) over ``[patients, ...]`` records (module docstring)."""
    n, k = ref.shape[0], len(idx)
    mu = numpyro.sample("mu", dist.Normal(0.0, 0.5).expand([k]).to_event(1))
    omega = numpyro.sample("omega", dist.HalfNormal(0.5).expand([k]).to_event(1))
    with numpyro.plate("patients", n):
        z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([k]).to_event(1))
        sigma = numpyro.sample("sigma", dist.LogNormal(jnp.log(10.0), 0.7))
        phi = numpyro.sample("phi", dist.Uniform(0.0, 0.999))
    theta = numpyro.deterministic("theta", deviated_theta(ref, mu + omega * z, idx, basal))
    g = fasting_paths(theta, basal, carbs, insulin, step=step, substeps=substeps)
    cgm_likelihood(g, cgm, sigma, phi)


def cgm_likelihood(g, cgm, sigma, phi):
    """The records' CGM ``[patients, cells]`` given the twin's glucose ``g``: an AR(1) residual
    per patient (coefficient ``phi``, stationary SD ``sigma``), observed as the site ``y``."""
    r = cgm - g
    innov = sigma * jnp.sqrt(1.0 - phi**2)
    loc = jnp.concatenate([g[:, :1], g[:, 1:] + phi[:, None] * r[:, :-1]], axis=1)
    scale = jnp.concatenate([sigma[:, None], jnp.broadcast_to(innov[:, None], r[:, 1:].shape)], 1)
    with numpyro.plate("patients", g.shape[0]):
        numpyro.sample("y", dist.Normal(loc, scale).to_event(1), obs=cgm)


class MechanisticFit(NamedTuple):
    """The SVI fit of :func:`glucose_model` (``guide``, ``params`` and ``losses`` as in
    :class:`~twinjax.bayes.SviResult`), the guide's draws of its latent sites ``[draws, ...]``
    that the twin's draws were made from (same order), and the model's arguments on the fitted
    records (what :func:`~twinjax.glucose.idata.mechanistic_inference_data` reruns)."""

    guide: Any
    params: dict
    losses: np.ndarray
    draws: dict[str, np.ndarray]  # mu, omega [draws, k]; z [draws, patients, k]; sigma, phi
    model_args: tuple  # ref, basal, carbs, insulin, cgm of the fitted days
    model_kwargs: dict  # idx, step, substeps


def fit_mechanistic(
    key: Key[Array, ""],
    cohort: Cohort | Records,
    *,
    fit_days: float = 2.0,
    estimated: tuple[str, ...] = ESTIMATED,
    fixed: np.ndarray | None = None,
    steps: int = 800,
    lr: float = 0.02,
    draws: int = 64,
    substeps: int = 1,
    progress: bool = False,
) -> tuple[MechanisticTwin, "MechanisticFit"]:
    """Identifies every patient's twin from its first ``fit_days`` days of records.

    Args:
        key: PRNG key (SVI and the posterior draws).
        cohort: the records (a glucose :class:`~twinjax.data.Cohort` or its :class:`Records`).
        fit_days: days fitted, from the start of the records.
        estimated: the parameters estimated (names in :data:`~twinjax.physiology.PARAM_NAMES`).
        fixed: ``[patients, params]`` values of the others (default :func:`reference_theta`);
            ``Ib`` is always recomputed from the recorded basal rate.
        steps: SVI steps.
        lr: Adam learning rate.
        draws: posterior draws kept in the twin.
        substeps: RK4 steps per minute in the fit and in the twin's paths.
        progress: show the SVI progress bar.

    Returns:
        The :class:`MechanisticTwin` (``noise_sd`` and ``noise_ar`` the residual's AR(1)) and
        the SVI fit with the guide's draws the twin holds (:class:`MechanisticFit`).
    """
    recs = cohort if isinstance(cohort, Records) else records(cohort)
    unknown = [p for p in estimated if p not in PARAM_NAMES]
    if unknown or not estimated:
        raise ValueError(f"estimated must name parameters of PARAM_NAMES; unknown: {unknown}")
    ref = reference_theta(recs.subject_ids, recs.bw) if fixed is None else np.asarray(fixed)
    if ref.shape != (len(recs.subject_ids), len(PARAM_NAMES)):
        raise ValueError(f"fixed must be [patients, {len(PARAM_NAMES)}], got {ref.shape}")
    head = recs.head(fit_days)
    idx = np.array([PARAM_NAMES.index(p) for p in estimated])
    args = (jnp.asarray(ref, jnp.float32), jnp.asarray(head.basal), jnp.asarray(head.carbs),
            jnp.asarray(head.insulin), jnp.asarray(head.cgm))  # fmt: skip
    opts = {"idx": idx, "step": int(recs.step), "substeps": substeps}
    k_fit, k_draw = jax.random.split(key)
    fit = run_svi(glucose_model, k_fit, *args, guide="lowrank", steps=steps, lr=lr,
                  progress=progress, **opts)  # fmt: skip
    post = fit.guide.sample_posterior(k_draw, fit.params, sample_shape=(draws,))
    dev = post["mu"][:, None] + post["omega"][:, None] * post["z"]  # [draws, patients, k]
    theta = jax.vmap(lambda d: deviated_theta(args[0], d, idx, args[1]))(dev)
    theta = jnp.swapaxes(theta, 0, 1)  # [patients, draws, params]
    basal = jnp.broadcast_to(jnp.asarray(recs.basal)[:, None], theta.shape[:2])
    x0 = jax.vmap(jax.vmap(steady_state))(theta, basal)
    twin = MechanisticTwin(
        theta=theta,
        x0=x0,
        noise_sd=jnp.asarray(post["sigma"]).T,
        subject_ids=recs.subject_ids,
        estimated=tuple(estimated),
        noise_ar=jnp.asarray(post["phi"]).T,
    )
    latent = {k: np.asarray(post[k]) for k in ("mu", "omega", "z", "sigma", "phi")}
    return twin, MechanisticFit(*fit, latent, args, opts)


def twin_paths(
    twin: MechanisticTwin, recs: Records, *, substeps: int = 1, chunk: int = 16
) -> np.ndarray:
    """``[patients, draws, cells]``: each draw's glucose at every reading of ``recs``, from its
    ``x0`` under the recorded inputs (``chunk`` draws at a time, to bound memory)."""
    if tuple(twin.subject_ids) != tuple(recs.subject_ids):
        raise ValueError("the twin and the records must hold the same patients in the same order")
    carbs, insulin = jnp.asarray(recs.carbs), jnp.asarray(recs.insulin)
    opts = {"step": int(recs.step), "substeps": substeps}
    theta, x0 = twin.theta, twin.x0
    parts = [
        np.asarray(
            _draw_paths(theta[:, s : s + chunk], x0[:, s : s + chunk], carbs, insulin, **opts)
        )
        for s in range(0, theta.shape[1], chunk)
    ]
    return np.concatenate(parts, axis=1)


# jitted once at module level (a jit made in each call compiled the paths again every call)
@partial(jax.jit, static_argnames=("step", "substeps"))
def _draw_paths(theta, x0, carbs, insulin, *, step, substeps):
    one = lambda th, x0, c, u: glucose_path(th, x0, c, u, step=step, substeps=substeps)
    per_patient = jax.vmap(one, in_axes=(0, 0, None, None))  # over draws
    return jax.vmap(per_patient)(theta, x0, carbs, insulin)  # over patients


def _draw_forecasts(twin: MechanisticTwin, cgm, g, at, k: int):
    """Each draw's forecast ``k`` readings ahead of the origins ``at``: mean ``[patients, draws,
    origins]`` (path plus the origin's residual decayed by ``phi^k``) and SD ``[patients, draws]``."""
    phi = np.zeros(g.shape[:2]) if twin.noise_ar is None else np.asarray(twin.noise_ar, np.float64)
    r0 = cgm[:, None, at] - g[:, :, at]
    mean = g[:, :, at + k] + (phi**k)[..., None] * r0
    return mean, np.asarray(twin.noise_sd) * np.sqrt(1.0 - phi ** (2 * k))


def forecast_mechanistic(
    key: Key[Array, ""] | None,
    twin: MechanisticTwin,
    cohort: Cohort | Records,
    at: np.ndarray,
    *,
    paths: np.ndarray | None = None,
    samples: int = 16,
) -> Forecasts:
    """The twin's forecasts from the origins ``at`` (:func:`~.scoring.origins`) at each of
    :data:`~.scoring.HORIZONS`.

    Each draw's path is its glucose under the recorded inputs (:func:`twin_paths`; pass
    ``paths`` to reuse them); its forecast ``k`` readings ahead adds the residual at the origin
    decayed by ``phi^k`` (the AR(1) of the fit) and scatter of SD ``sigma sqrt(1 - phi^(2k))``.
    The mean is the mean over draws; the interval the 5% and 95% quantiles of ``samples`` draws
    from each draw's forecast (``samples=0``: the mean alone, as ``lo`` and ``hi`` too, and
    ``key`` may be None).
    """
    recs = cohort if isinstance(cohort, Records) else records(cohort)
    g = twin_paths(twin, recs) if paths is None else np.asarray(paths, np.float64)
    at = np.asarray(at)
    mean, lo, hi = [], [], []
    for j, h in enumerate(HORIZONS):
        m, sd = _draw_forecasts(
            twin, np.asarray(recs.cgm, np.float64), g, at, int(round(h / recs.step))
        )
        mean.append(m.mean(1))
        if samples == 0:
            lo.append(mean[-1]), hi.append(mean[-1])
            continue
        eps = np.asarray(jax.random.normal(jax.random.fold_in(key, j), (*m.shape, samples)))
        draws = m[..., None] + sd[:, :, None, None] * eps  # [patients, draws, origins, samples]
        draws = draws.transpose(0, 2, 1, 3).reshape(m.shape[0], m.shape[2], -1)
        q = np.quantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=-1)
        lo.append(q[0]), hi.append(q[1])
    return Forecasts(*(np.stack(a, -1) for a in (mean, lo, hi)))


def calibration_scale(
    key: Key[Array, ""] | None,
    twin: MechanisticTwin,
    recs: Records,
    *,
    start_days: float,
    end_days: float,
    paths: np.ndarray | None = None,
) -> np.ndarray:
    """``[patients, horizons]``: the widening of the twin's intervals (:func:`~.intervals.widen`)
    that covers 90% of its forecasts from origins every 30 minutes of days ``[start_days,
    end_days)`` (training days after those it was fitted on; the fit's own days understate the
    error on new days)."""
    at = day_origins(recs.cgm.shape[1], step=recs.step, start_days=start_days, end_days=end_days)
    fc = forecast_mechanistic(key, twin, recs, at, paths=paths)
    return interval_scale(fc, targets(recs.cgm, at, step=recs.step))


def _fasting(theta: np.ndarray, x0: np.ndarray) -> dict[str, np.ndarray]:
    """Quantities of the fasting state that the records pin down even where the parameters
    behind them trade off: glucose ``Gb`` (mg/dL) and endogenous production ``EGPb`` (mg/kg/min,
    ``kp1 - kp2 Gp - kp3 XL``, the balance that fasting glucose reveals)."""
    p = lambda k: theta[..., PARAM_NAMES.index(k)]
    return {
        "Gb": x0[..., 12] / p("Vg"),
        "EGPb": p("kp1") - p("kp2") * x0[..., 3] - p("kp3") * x0[..., 8],
    }


def recovery(twin: MechanisticTwin, *, level: float = LEVEL) -> pd.DataFrame:
    """Parameter recovery, for the scorer (who knows the table's true values; the twin does not).

    Returns:
        One row per patient and estimated parameter (and the fasting glucose ``Gb`` and
        production ``EGPb``, functions of the parameters and the fasting state): ``subject_id``,
        ``group``, ``parameter``, ``true``, posterior ``mean``, central ``level`` interval
        ``lo``/``hi``, ``inside``. :func:`recovery_coverage` summarizes it per parameter.
    """
    p = load_patients(list(twin.subject_ids))
    truth_theta, theta = np.asarray(p.theta), np.asarray(twin.theta)
    truth = {k: truth_theta[:, PARAM_NAMES.index(k)] for k in twin.estimated}
    draws = {k: theta[:, :, PARAM_NAMES.index(k)] for k in twin.estimated}
    truth |= _fasting(truth_theta, np.asarray(p.x0))
    draws |= _fasting(theta, np.asarray(twin.x0))
    rows = []
    for name, d in draws.items():
        lo, hi = np.quantile(d, [(1 - level) / 2, (1 + level) / 2], axis=1)
        for i, sid in enumerate(twin.subject_ids):
            rows.append({
                "subject_id": sid, "group": age_group(sid), "parameter": name,
                "true": truth[name][i], "mean": d[i].mean(), "lo": lo[i], "hi": hi[i],
            })  # fmt: skip
    table = pd.DataFrame(rows)
    table["inside"] = (table["true"] >= table["lo"]) & (table["true"] <= table["hi"])
    return table


def recovery_coverage(table: pd.DataFrame) -> pd.DataFrame:
    """Per parameter: interval coverage, median |log(mean / true)| and the correlation of
    ``log mean`` with ``log true`` over the patients (:func:`recovery`'s table)."""
    t = table.assign(log_err=np.abs(np.log(table["mean"] / table["true"])))
    out = t.groupby("parameter", sort=False).agg(
        coverage90=("inside", "mean"), median_abs_log_error=("log_err", "median")
    )
    corr = t.groupby("parameter", sort=False)[["mean", "true"]].apply(
        lambda d: np.corrcoef(np.log(d["mean"]), np.log(d["true"]))[0, 1]
    )
    return out.assign(log_correlation=corr)
