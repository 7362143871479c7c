"""GP twins on a :class:`~twinjax.data.Cohort`: fit every stream of every individual, evaluate the
predictive intervals on held-out points.

Two kinds of held-out points per stream: a random ``holdout`` fraction of the observed points in
each individual's training period (interpolation), and every observed point of the test period
(the last part of each timeline, from :func:`~twinjax.data.time_split`; forecasting).
"""

import time
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from twinjax.bayes.gp import GPTwins, fit_gp_twins, predict_gp_twins, scale_times
from twinjax.data import Cohort, segment_mask, time_split
from twinjax.eval.score import Forecast, pit, score


class GPCohortFit(NamedTuple):
    twins: list[GPTwins]  # one per stream
    mean: np.ndarray  # [N, T, F] predictive mean
    sd: np.ndarray  # [N, T, F] predictive SD (latent plus noise)
    fit_mask: np.ndarray  # [N, T, F] points used for fitting
    interp_mask: np.ndarray  # [N, T, F] held-out training-period points
    test_mask: np.ndarray  # [N, T, F] observed test-period points
    fit_seconds: list[float]


def fit_cohort_gp(
    cohort: Cohort,
    *,
    key: jax.Array,
    holdout: float = 0.2,
    method: Literal["hsgp", "exact"] = "hsgp",
    m: int = 48,
    steps: int = 150,
    lr: float = 0.05,
    test_fraction: float = 0.15,
    val_fraction: float = 0.15,
    streams: tuple[int, ...] | None = None,
) -> GPCohortFit:
    """Fits each stream (one jitted, vmapped call over all individuals per stream); streams not in
    ``streams`` (default: all) are skipped and get no held-out points."""
    split = time_split(cohort.lengths, val_fraction, test_fraction)
    n, t, f = cohort.values.shape
    train = segment_mask(split, t, "train")[..., None] & cohort.mask
    test = segment_mask(split, t, "test")[..., None] & cohort.mask
    hold = train & np.asarray(jax.random.uniform(key, (n, t, f)) < holdout)
    fit_mask = train & ~hold
    if streams is not None:
        keep = np.isin(np.arange(f), streams)[None, None, :]
        fit_mask, hold, test = fit_mask & keep, hold & keep, test & keep
    x = jnp.tile(scale_times(jnp.arange(t, dtype=jnp.float32), 0.0, t - 1.0), (n, 1))
    twins, means, sds, secs = [], [], [], []
    for k in range(f) if streams is None else streams:
        y, mk = jnp.asarray(cohort.values[..., k]), jnp.asarray(fit_mask[..., k])
        start = time.perf_counter()
        tw = jax.block_until_ready(fit_gp_twins(x, y, mk, method=method, m=m, steps=steps, lr=lr))
        secs.append(time.perf_counter() - start)
        mu, sd = predict_gp_twins(tw, x, y, mk, x, method=method, m=m)
        twins.append(tw)
        means.append(np.asarray(mu))
        sds.append(np.asarray(sd))
    mean, sd = np.zeros((n, t, f), np.float32), np.ones((n, t, f), np.float32)
    mean[..., list(range(f) if streams is None else streams)] = np.stack(means, -1)
    sd[..., list(range(f) if streams is None else streams)] = np.stack(sds, -1)
    return GPCohortFit(twins, mean, sd, fit_mask, hold, test, secs)


def gp_calibration(fit: GPCohortFit, cohort: Cohort) -> dict:
    """Coverage of central 90% intervals, mean CRPS and PIT values on held-out points, scored by
    :func:`twinjax.eval.score.score` (pooled over streams, and the coverage per stream)."""
    n = len(fit.mean)

    def forecast(mask, k=slice(None)):  # [N, T, F] -> [N, T * F] (a stream: [N, T])
        flat = lambda x: np.asarray(x, np.float64)[..., k].reshape(n, -1)
        return Forecast(mean=flat(fit.mean), scale=flat(fit.sd), y=flat(cohort.values),
                        mask=flat(mask).astype(bool))  # fmt: skip

    out = {}
    for name, mask in (("interpolation", fit.interp_mask), ("test_period", fit.test_mask)):
        pooled = score(forecast(mask))["pooled"]
        out[f"{name}_coverage_90"] = pooled["coverage_90"]
        out[f"{name}_crps"] = pooled["crps"]
        out[f"{name}_n_points"] = int(np.sum(mask))
        for k, v in enumerate(cohort.variables or range(cohort.n_features)):
            if mask[..., k].any():
                out[f"{name}_coverage_90_{v}"] = score(forecast(mask, k))["pooled"]["coverage_90"]
    held_out = forecast(fit.interp_mask | fit.test_mask)
    out["held_out_coverage_90"] = score(held_out)["pooled"]["coverage_90"]
    out["held_out_pit"] = pit(held_out)[held_out.mask]
    return out
