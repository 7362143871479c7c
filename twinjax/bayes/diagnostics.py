"""MCMC diagnostics: rank-normalized split R-hat, bulk ESS, divergences, and a warning when bad.

Following Vehtari, Gelman, Simpson, Carpenter and Buerkner (2021, "Rank-normalization,
folding, and localization"): draws are replaced by the normal quantiles of their pooled ranks,
chains are split in halves, and R-hat is the larger of the bulk value and the value on the folded
draws ``|x - median|``.
The autocorrelation-based ESS estimator is NumPyro's (Geyer's initial monotone sequence).
"""

import warnings
from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Float
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
from scipy.stats import norm, rankdata

RHAT_MAX = 1.01
ESS_MIN_PER_CHAIN = 100


class DiagnosticsWarning(UserWarning):
    """MCMC diagnostics suggest the posterior draws are not trustworthy."""


class Diagnostics(NamedTuple):
    r_hat: dict[str, float]  # worst element for array-valued sites
    ess_bulk: dict[str, float]  # worst element
    num_divergences: int
    num_chains: int
    num_draws: int


def _rank_normalize(x: np.ndarray) -> np.ndarray:
    c, s = x.shape[:2]
    flat = x.reshape(c * s, -1)
    ranks = rankdata(flat, axis=0, method="average")
    z = norm.ppf((ranks - 0.375) / (c * s + 0.25))
    return z.reshape(x.shape)


def _split(x: np.ndarray) -> np.ndarray:
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, -half:]], axis=0)


def rank_rhat(x: Float[ArrayLike, "chains draws ..."]) -> Float[ArrayLike, "..."]:
    """Rank-normalized split R-hat (max of bulk and folded) of draws ``[chains, draws, ...]``."""
    x = np.asarray(x, dtype=np.float64)
    bulk = split_gelman_rubin(_rank_normalize(x))
    folded = np.abs(x - np.median(x.reshape(-1, *x.shape[2:]), axis=0))
    tail = split_gelman_rubin(_rank_normalize(folded))
    return np.maximum(bulk, tail)


def ess_bulk(x: Float[ArrayLike, "chains draws ..."]) -> Float[ArrayLike, "..."]:
    """Bulk effective sample size: split chains, rank-normalized draws."""
    x = np.asarray(x, dtype=np.float64)
    return effective_sample_size(_split(_rank_normalize(x)))


def _worst(fn, x, default) -> float:
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.asarray(fn(x))
    v = v[np.isfinite(v)]
    return float(default(v)) if v.size else float("nan")


def diagnose(
    draws: dict[str, ArrayLike], num_divergences: int = 0, *, warn: bool = True
) -> Diagnostics:
    """Diagnostics of draws grouped by chain; warns with :class:`DiagnosticsWarning` when
    R-hat > 1.01, bulk ESS < 100 per chain, or any transition diverged.

    Args:
        draws: draws ``[chains, draws, ...]`` by site.
        num_divergences: divergent transitions of the run.
        warn: warn when a check fails.

    Returns:
        :class:`Diagnostics` with the worst R-hat and bulk ESS of each site.
    """
    first = next(iter(draws.values()))
    c, s = np.shape(first)[:2]
    rhat = {k: _worst(rank_rhat, v, np.max) for k, v in draws.items()}
    ess = {k: _worst(ess_bulk, v, np.min) for k, v in draws.items()}
    diag = Diagnostics(rhat, ess, int(num_divergences), int(c), int(s))
    if warn:
        problems = problems_of(diag)
        if problems:
            message = "MCMC diagnostics: " + "; ".join(problems)
            warnings.warn(message, DiagnosticsWarning, stacklevel=2)
    return diag


def problems_of(diag: Diagnostics) -> list[str]:
    """Human-readable list of failed checks (empty when all pass)."""
    out = []
    bad_rhat = {k: round(v, 3) for k, v in diag.r_hat.items() if v > RHAT_MAX}
    if bad_rhat:
        out.append(f"R-hat > {RHAT_MAX}: {bad_rhat}")
    floor = ESS_MIN_PER_CHAIN * diag.num_chains
    bad_ess = {k: round(v) for k, v in diag.ess_bulk.items() if v < floor}
    if bad_ess:
        out.append(f"bulk ESS < {floor}: {bad_ess}")
    if diag.num_divergences:
        out.append(f"{diag.num_divergences} divergent transitions")
    return out
