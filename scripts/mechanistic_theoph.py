"""R's Theoph data through the mechanistic protocol: each subject's one-compartment oral model
(``SSfol``'s lKe, lKa, lCl, written as an ODE) fitted by :func:`twinjax.mechanistic.fit`, all 12
subjects at once (``jax.vmap``), beside per-subject nonlinear least squares of the closed form
(scipy, R's ``nlsList`` analogue) and the published nlme fit fm3's population values.

    python scripts/mechanistic_theoph.py

Each subject's grid is its observation times and every half hour to 25 h (padded to one length
by zero-length intervals, unobserved); the dose (mg/kg) is the event at time 0.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from twinjax.bayes.theoph import FM3, theoph_frames
from twinjax.mechanistic import Prior, fit, on_grid
from twinjax.mechanistic.models import ONE_COMPARTMENT_ORAL, dosing

NAMES = ONE_COMPARTMENT_ORAL.param_names
PRIOR = Prior(loc=jnp.array([-2.0, 0.0, -3.0]), scale=jnp.full(3, 2.0))  # theoph_spec's


def subject_grids(obs: pd.DataFrame, doses: pd.DataFrame, step: float = 0.5):
    """Per subject (sorted ids): grid times, observations and mask on the grid, and doses."""
    ids = sorted(obs["subject"].unique(), key=lambda s: int(s))
    grids = []
    for sid in ids:
        t_obs = obs.loc[obs["subject"] == sid, "time"].to_numpy(np.float64)
        grids.append(np.unique(np.concatenate([t_obs, np.arange(0.0, t_obs.max() + step, step)])))
    length = max(len(g) for g in grids)
    times = np.stack([np.pad(g, (0, length - len(g)), mode="edge") for g in grids])
    y, mask = np.zeros_like(times), np.zeros(times.shape, bool)
    for i, sid in enumerate(ids):
        rows = obs[obs["subject"] == sid]
        idx = np.searchsorted(grids[i], rows["time"].to_numpy(np.float64))
        y[i, idx], mask[i, idx] = rows["conc"].to_numpy(), True
    dose = doses.set_index("subject").loc[ids, "amount"].to_numpy(np.float64)
    return ids, times.astype(np.float32), y.astype(np.float32), mask, dose.astype(np.float32)


def fit_cohort(times, y, mask, dose, *, steps: int = 1500):
    """The protocol's fit for every subject at once; returns the batched :class:`Fit`."""

    def one(t, obs, m, d):
        u = dosing(oral=on_grid(t, jnp.zeros(1), d[None]))
        return fit(ONE_COMPARTMENT_ORAL, t, obs, m, u, PRIOR, steps=steps, substeps=2)

    return jax.jit(jax.vmap(one))(times, y, mask, dose)


def nls(obs: pd.DataFrame, doses: pd.DataFrame, ids) -> np.ndarray:
    """Per-subject least squares of SSfol's closed form (float64 scipy), ``[subjects, 3]``."""
    out = []
    for sid in ids:
        rows = obs[obs["subject"] == sid]
        t, c = rows["time"].to_numpy(np.float64), rows["conc"].to_numpy(np.float64)
        d = float(doses.loc[doses["subject"] == sid, "amount"].iloc[0])

        def resid(th, t=t, c=c, d=d):
            ke, ka, cl = np.exp(th)
            return d * ke * ka / (cl * (ka - ke)) * (np.exp(-ke * t) - np.exp(-ka * t)) - c

        out.append(least_squares(resid, np.array([-2.5, 0.5, -3.2])).x)
    return np.stack(out)


def table(steps: int = 1500) -> pd.DataFrame:
    """Per subject: the protocol's posterior mode and SD, and the NLS estimate, per parameter."""
    obs, doses, _ = theoph_frames()
    ids, times, y, mask, dose = subject_grids(obs, doses)
    fits = fit_cohort(times, y, mask, dose, steps=steps)
    sd = np.sqrt(np.diagonal(np.asarray(fits.cov), axis1=1, axis2=2))
    ref = nls(obs, doses, ids)
    rows = {"subject": ids}
    for j, name in enumerate(NAMES):
        rows[f"{name} map"] = np.asarray(fits.params[:, j])
        rows[f"{name} sd"] = sd[:, j]
        rows[f"{name} nls"] = ref[:, j]
    rows["sigma"] = np.exp(np.asarray(fits.log_sigma))
    return pd.DataFrame(rows)


def main() -> None:
    t = table()
    pd.set_option("display.width", 200)
    print(t.round(3).to_string(index=False))
    means = {n: float(t[f"{n} map"].mean()) for n in NAMES}
    print("\nmean over subjects of the per-subject modes vs nlme fm3 (population):")
    for n in NAMES:
        print(f"  {n}: {means[n]:.4f}  fm3 {FM3[n]:.4f}")
    worst = max(float(np.abs(t[f"{n} map"] - t[f"{n} nls"]).max()) for n in NAMES)
    print(f"largest |mode - NLS| over subjects and parameters: {worst:.4f}")


if __name__ == "__main__":
    main()
