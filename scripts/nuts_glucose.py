"""NUTS check of the population-prior glucose twin's full-rank guide, on short windows.

A few patients of the seed's virtual cohort (as glucose_twins makes it) are fitted on their first
``--hours`` hours, by the guide (:func:`~twinjax.glucose.population_fit.fit_guides`) and by NUTS on
the same posterior (the same :func:`~twinjax.glucose.population_fit.log_joint`). NUTS runs on all
the patients at once (their posteriors are independent, so the product is one target with one
gradient vmapped over patients), in the guide's coordinates ``z = loc + L w`` (a linear change of
variables: the target is the same, the sampler is better conditioned when the guide is good).

Per patient and free log-parameter (and the residual's ``sigma``, ``phi``): the posterior SD by
the guide and by NUTS, their ratio, and the gap between the means in NUTS SDs.

    PYTHONPATH=. .venv/bin/python scripts/nuts_glucose.py --hours 12 --out /tmp/nuts
"""

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from numpyro.infer import MCMC, NUTS

from twinjax.glucose.keys import run_keys
from twinjax.glucose.population import FREE, population
from twinjax.glucose.population_fit import (
    fit_guides,
    guide_draws,
    log_joint,
    patient_data,
    scale_tril,
    twin_of,
)
from twinjax.glucose.records import records
from twinjax.physiology import PARAM_NAMES, simulate_cohort

NAMES = (*FREE, "sigma", "phi")


def summaries(twin) -> np.ndarray:
    """``[patients, draws, len(NAMES)]``: log free parameters, ``sigma`` and ``phi``."""
    theta = np.asarray(twin.theta)[..., [PARAM_NAMES.index(q) for q in FREE]]
    return np.concatenate([np.log(theta), np.asarray(twin.noise_sd)[..., None],
                           np.asarray(twin.noise_ar)[..., None]], -1)  # fmt: skip


def main(a) -> dict:
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    wall = {}
    keys = run_keys(a.seed)  # as experiment=glucose_twins splits them
    names = a.patients.split(",")
    recs = records(simulate_cohort(keys.cohort, names, 14))
    pop = population(recs.subject_ids, recs.bw)
    data = patient_data(recs.head(a.hours / 24))
    step = int(recs.step)

    t = time.perf_counter()
    state = fit_guides(
        keys.mechanistic, pop, data, step=step, mode_steps=a.mode_steps, steps=a.steps
    ).state
    guide = twin_of(
        pop, guide_draws(keys.mechanistic_forecast, state, draws=a.samples), recs.basal, names
    )
    jax.block_until_ready(guide.theta)
    wall["guide"] = round(time.perf_counter() - t, 1)

    loc, chol = state.loc, jax.vmap(scale_tril)(state.raw)
    per_patient = jax.vmap(lambda z, p, d: log_joint(z, p, d, step=step))

    def potential(w):
        return -jnp.sum(per_patient(loc + jnp.einsum("pkl,pl->pk", chol, w), pop, data))

    t = time.perf_counter()
    mcmc = MCMC(NUTS(potential_fn=potential, max_tree_depth=a.tree_depth),
                num_warmup=a.warmup, num_samples=a.samples, progress_bar=False)  # fmt: skip
    mcmc.run(keys.loop, init_params=jnp.zeros_like(loc), extra_fields=("num_steps", "diverging"))
    w = mcmc.get_samples()  # [samples, patients, latent]
    z = loc[:, None] + jnp.einsum("pkl,spl->psk", chol, w)
    nuts = twin_of(pop, z, recs.basal, names)
    jax.block_until_ready(nuts.theta)
    wall["nuts"] = round(time.perf_counter() - t, 1)
    extra = mcmc.get_extra_fields()

    g, n = summaries(guide), summaries(nuts)
    rows = []
    for i, sid in enumerate(names):
        for j, q in enumerate(NAMES):
            sd_g, sd_n = g[i, :, j].std(), n[i, :, j].std()
            rows.append({"subject_id": sid, "parameter": q, "sd_guide": sd_g, "sd_nuts": sd_n,
                         "sd_ratio": sd_g / sd_n,
                         "mean_gap_nuts_sd": (g[i, :, j].mean() - n[i, :, j].mean()) / sd_n})  # fmt: skip
    table = pd.DataFrame(rows)
    table.to_csv(out / "nuts_check.csv", index=False)
    by_param = table.groupby("parameter", sort=False)[["sd_ratio", "mean_gap_nuts_sd"]].agg(
        ["median", "min", "max"]
    )
    summary = {
        "settings": vars(a), "wall_s": wall,
        "nuts_mean_leapfrog_steps": float(np.mean(extra["num_steps"])),
        "nuts_divergences": int(np.sum(extra["diverging"])),
        "sd_ratio_median_all": float(table["sd_ratio"].median()),
        "sd_ratio_range": [float(table["sd_ratio"].min()), float(table["sd_ratio"].max())],
        "abs_mean_gap_median": float(table["mean_gap_nuts_sd"].abs().median()),
    }  # fmt: skip
    (out / "nuts_check.json").write_text(json.dumps(summary, indent=1, default=str))
    print(by_param.round(2).to_string())
    print(json.dumps(summary, indent=1, default=str))
    return summary


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--patients", default="adolescent#001,adult#001,child#001")
    ap.add_argument("--hours", type=float, default=12.0)
    ap.add_argument("--mode-steps", type=int, default=300)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--tree-depth", type=int, default=7)
    ap.add_argument("--out", default="nuts_glucose")
    main(ap.parse_args())
