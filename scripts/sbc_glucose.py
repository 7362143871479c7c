"""Simulation-based calibration of the population-prior glucose twin (issue 26, item 1).

Simulated patients are drawn FROM THE POPULATION MODEL the fit uses
(:mod:`twinjax.glucose.population`; each age group's prior from all ten table patients of the
group): the latent ``z ~ Normal(0, I)`` gives the 23 free parameters and the CGM residual's AR(1)
(``sigma``, ``phi``, the coefficient per 15 minutes, as the fit reads the records). Each
patient's body weight, clinical settings and basal rate are those of a
table patient of its group drawn at random (covariates the fit is given, drawn independently of
``z``). The patient then lives ``--days`` days of simglucose-style random meals under the
basal-bolus controller (:func:`twinjax.physiology.run`) from its fasting steady state, its CGM
being glucose plus the AR(1) residual drawn from its own ``sigma``/``phi`` every fifth reading
(linear in between; the fit reads only those), so that the records
come from the model the fit assumes: the sensor is not clipped and the pump delivers the requested
rates exactly (the twin's likelihood has neither a range nor a pump); what remains is the records'
placing of each meal at its sensor period's middle minute (at most a minute off).

Each simulated patient is fitted (:func:`~twinjax.glucose.population_fit.fit_guides`, vmapped over
patients) under its own prior; the rank of each true value among ``--draws`` posterior draws is
uniform on ``0..draws`` when the posterior is calibrated. Per parameter: rank histograms (PNG)
and a chi-square test of uniformity on ``--bins`` equal bins of ranks.

    PYTHONPATH=. .venv/bin/python scripts/sbc_glucose.py --per-group 20 --days 1 --out /tmp/sbc

Writes ``sbc_ranks.csv`` (patient x parameter ranks), ``sbc.json`` (settings, wall time per
phase, p-values) and ``sbc_ranks.png`` in ``--out``.
"""

import argparse
import dataclasses
import json
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pandas as pd
from scipy import stats

from twinjax.glucose.population import FREE, Population, population
from twinjax.glucose.population_fit import (
    LATENT,
    THIN,
    fit_guides,
    guide_draws,
    log_joint,
    noise_of,
    patient_data,
    patient_theta,
    twin_of,
)
from twinjax.glucose.records import Records
from twinjax.physiology import (
    PARAM_NAMES,
    PatientParams,
    Sensor,
    basal_bolus,
    load_patients,
    load_settings,
    patient_names,
    random_scenario,
    run,
)
from twinjax.physiology.params import age_group

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

GROUPS = ("adolescent", "adult", "child")
STEP = 3  # the Dexcom's minutes between readings
NAMES = (*FREE, "sigma", "phi")


def donors(key, per_group: int) -> tuple[list[str], np.ndarray]:
    """The simulated patients' names and the table rows lending their covariates."""
    table = patient_names()
    names, rows = [], []
    for j, g in enumerate(GROUPS):
        idx = np.array([i for i, n in enumerate(table) if age_group(n) == g])
        rows.append(np.asarray(jax.random.choice(jax.random.fold_in(key, j), idx, (per_group,))))
        names += [f"{g}#sbc{i:03d}" for i in range(per_group)]
    return names, np.concatenate(rows)


def ar1_noise(key, sigma, phi, n: int):
    """``n`` readings' noise: a stationary AR(1) of SD ``sigma`` and coefficient ``phi`` at every
    :data:`~twinjax.glucose.population_fit.THIN`-th reading (what the likelihood reads),
    interpolated linearly in between."""
    knots = (n - 1) // THIN + 2
    e = jax.random.normal(key, (knots,))

    def _step(r, ek):
        r = phi * r + sigma * jnp.sqrt(1.0 - phi**2) * ek
        return r, r

    _, rest = jax.lax.scan(_step, sigma * e[0], e[1:])
    values = jnp.concatenate([sigma * e[:1], rest])
    return jnp.interp(jnp.arange(n), jnp.arange(knots) * THIN, values)


@partial(jax.jit, static_argnames=("days", "sensor"))
def simulate(key, pop: Population, z, basal, settings, *, days: int, sensor: Sensor):
    """Each simulated patient's closed-loop trace (vmapped over patients)."""

    def one(k, pop_i, z_i, basal_i, settings_i):
        k_meal, k_noise = jax.random.split(k)
        theta, x0 = patient_theta(pop_i, z_i, basal_i)
        p = PatientParams(theta, x0)
        sigma, phi = noise_of(z_i[len(FREE) :])
        noise = ar1_noise(k_noise, sigma, phi, days * 1440 // STEP + 1)
        policy = lambda cgm, meal: basal_bolus(cgm, meal, p, settings_i, sample_time=STEP)
        meals = random_scenario(k_meal, days)
        trace = run(p, meals, noise, policy, sensor=sensor, pump=None, substeps=1)
        return trace, theta

    keys = jax.random.split(key, z.shape[0])
    return jax.vmap(one)(keys, pop, z, basal, settings)


def as_records(trace, bw, names) -> Records:
    """The records of the traces, as :func:`~twinjax.glucose.records.records` reads a cohort."""
    cgm = np.concatenate([np.asarray(trace.cgm0)[:, None], np.asarray(trace.cgm)], axis=1)
    n, periods = np.asarray(trace.carbs).shape
    carbs = np.zeros((n, periods, STEP), np.float32)
    carbs[:, :, STEP // 2] = np.asarray(trace.carbs)
    per_period = np.asarray(trace.insulin).reshape(n, periods, STEP).sum(-1) / STEP
    insulin = np.repeat(per_period, STEP, axis=1).astype(np.float32)
    return Records(cgm.astype(np.float32), carbs.reshape(n, -1), insulin, insulin[:, 0],
                   np.asarray(bw, np.float32), float(STEP), tuple(names))  # fmt: skip


def ranks(truth: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """``[patients, parameters]``: how many draws ``[patients, draws, parameters]`` fall below
    the truth ``[patients, parameters]``."""
    return (draws < truth[:, None]).sum(1)


def uniformity(r: np.ndarray, draws: int, bins: int) -> np.ndarray:
    """Per parameter: the chi-square p-value of ranks ``[patients, parameters]`` in ``0..draws``
    falling uniformly in ``bins`` equal bins."""
    b = np.minimum(r * bins // (draws + 1), bins - 1)
    counts = np.stack([(b == k).sum(0) for k in range(bins)])
    return stats.chisquare(counts, axis=0).pvalue


def plot(r: np.ndarray, p: np.ndarray, draws: int, bins: int, path: Path) -> None:
    cols = 5
    fig, axes = plt.subplots(-(-len(NAMES) // cols), cols, figsize=(15, 14))
    for ax, name, ri, pi in zip(axes.flat, NAMES, r.T, p, strict=False):
        ax.hist(ri, bins=np.linspace(0, draws + 1, bins + 1), color="tab:blue", alpha=0.8)
        ax.axhline(len(ri) / bins, color="k", ls="--", lw=1)
        ax.set_title(f"{name}  p={pi:.3f}", fontsize=10)
    for ax in axes.flat[len(NAMES) :]:
        ax.axis("off")
    fig.suptitle(f"SBC ranks of the true value among {draws} posterior draws ({len(r)} patients)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(a) -> dict:
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    wall = {}
    k_donor, k_z, k_sim, k_fit, k_draw = jax.random.split(jax.random.key(a.seed), 5)
    names, rows = donors(k_donor, a.per_group)
    table = load_patients()
    bw = np.asarray(table.get("BW"))[rows]
    basal = np.asarray(table.get("u2ss"))[rows] * bw / 6000.0
    settings = jax.tree.map(lambda c: c[rows], load_settings())
    pop = population(names, bw)
    z = jax.random.normal(k_z, (len(names), LATENT))

    t = time.perf_counter()
    sensor = dataclasses.replace(Sensor.named("Dexcom"), lo=-1e9, hi=1e9)
    trace, theta = simulate(k_sim, pop, z, jnp.asarray(basal, jnp.float32), settings,
                            days=a.days, sensor=sensor)  # fmt: skip
    recs = as_records(trace, bw, names)
    ok = np.isfinite(recs.cgm).all(1) & np.isfinite(np.asarray(theta)).all(1)
    keep = np.flatnonzero(ok)
    recs, pop_k = recs.take(keep), pop.take(keep)
    wall["simulate"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    fit = fit_guides(k_fit, pop_k, patient_data(recs), step=STEP, mode_steps=a.mode_steps,
                     steps=a.steps, starts=a.starts)  # fmt: skip
    state, losses = fit.state, fit.losses
    jax.block_until_ready(state)
    wall["fit"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    zd = guide_draws(k_draw, state, draws=a.draws)
    twin = twin_of(pop_k, zd, recs.basal, recs.subject_ids)
    noise = np.stack(jax.vmap(jax.vmap(noise_of))(zd[..., len(FREE) :]), -1)
    free = np.asarray(twin.theta)[..., [PARAM_NAMES.index(q) for q in FREE]]
    post = np.concatenate([np.log(free), noise], -1)
    wall["draws"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    sig, phi = jax.vmap(noise_of)(z[keep][:, len(FREE) :])
    true_theta = np.asarray(theta)[keep]
    truth = np.concatenate([np.log(true_theta[:, [PARAM_NAMES.index(q) for q in FREE]]),
                            np.asarray(sig)[:, None], np.asarray(phi)[:, None]], -1)  # fmt: skip
    fine = np.isfinite(post).all((1, 2))
    # the optimizer's check: a mode below the truth's density is a local optimum or unconverged
    # (the final guide's loc is not the mode: the ELBO moves it where the posterior is skewed)
    at = jax.jit(jax.vmap(lambda zi, p, d: log_joint(zi, p, d, step=STEP)))
    data = patient_data(recs)
    truth_lp = np.asarray(at(z[keep], pop_k, data))
    gap = truth_lp - np.asarray(at(state.loc, pop_k, data))  # against the final guide's loc
    gap_mode = truth_lp - np.nanmax(fit.start_log_joint, 1)  # against the mode search's best
    r = ranks(truth[fine], post[fine])
    p = uniformity(r, a.draws, a.bins)
    wall["ranks"] = round(time.perf_counter() - t, 1)

    pd.DataFrame(r, columns=list(NAMES), index=np.array(recs.subject_ids)[fine]).to_csv(
        out / "sbc_ranks.csv"
    )
    plot(r, p, a.draws, a.bins, out / "sbc_ranks.png")
    summary = {
        "settings": vars(a), "wall_s": wall, "simulated": len(names),
        "dropped_nonfinite_simulation": int((~ok).sum()), "dropped_nonfinite_fit": int((~fine).sum()),
        "fitted": int(fine.sum()), "final_loss_mean": float(np.mean(losses[-20:])),
        "truth_above_guide_loc": float(np.mean(gap > 0)), "log_density_truth_minus_guide_loc": {
            "median": float(np.median(gap)), "max": float(np.max(gap))},
        "truth_above_mode_search": float(np.mean(gap_mode > 0)),
        "log_density_truth_minus_mode_search": {
            "median": float(np.median(gap_mode)), "max": float(np.max(gap_mode))},
        "kept_start_not_the_mean": float(np.mean(fit.best > 0)),
        "truth_above_best_of_first_k_starts": [  # what fewer starts would have found
            float(np.mean(truth_lp > np.nanmax(fit.start_log_joint[:, :k], 1)))
            for k in range(1, a.starts + 1)],
        "p_values": dict(zip(NAMES, np.round(p, 4).tolist(), strict=True)),
        "rejected_at_1pct": [n for n, pi in zip(NAMES, p, strict=True) if pi < 0.01],
    }  # fmt: skip
    (out / "sbc.json").write_text(json.dumps(summary, indent=1, default=str))
    print(json.dumps(summary, indent=1, default=str))
    return summary


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-group", type=int, default=20)  # simulated patients per age group
    ap.add_argument("--days", type=int, default=1)  # days simulated and fitted
    ap.add_argument("--mode-steps", type=int, default=200)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--starts", type=int, default=3)  # mode-search starts (fit_guides)
    ap.add_argument("--draws", type=int, default=99)
    ap.add_argument("--bins", type=int, default=5)
    ap.add_argument("--out", default="sbc_glucose")
    main(ap.parse_args())
