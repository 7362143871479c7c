"""MCMC diagnostics from ArviZ: rank-normalized split R-hat, bulk and tail ESS, MCSE of the
mean, divergences and the energy's BFMI, with a warning when bad.

Every number is ArviZ's (``arviz.rhat``, ``arviz.ess``, ``arviz.mcse``, ``arviz.bfmi``: Vehtari,
Gelman, Simpson, Carpenter and Buerkner 2021, "Rank-normalization, folding, and localization";
Betancourt 2016 for BFMI), so a run's tables agree with ``arviz.summary`` of its
``posterior.nc``. The thresholds are those papers' advice: R-hat at most 1.01, bulk and tail ESS
at least 100 per chain, no divergent transition, BFMI at least 0.3 in every chain.
"""

import warnings
from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Float

RHAT_MAX = 1.01
ESS_MIN_PER_CHAIN = 100
BFMI_MIN = 0.3


class DiagnosticsWarning(UserWarning):
    """MCMC diagnostics suggest the posterior draws are not trustworthy."""


class Diagnostics(NamedTuple):
    r_hat: dict[str, float]  # worst element for array-valued sites
    ess_bulk: dict[str, float]  # worst element
    num_divergences: int
    num_chains: int
    num_draws: int
    ess_tail: dict[str, float] | None = None  # worst element
    mcse_mean: dict[str, float] | None = None  # largest element
    bfmi: tuple[float, ...] | None = None  # per chain, when the energy was given


def _by_arviz(fn, x, **kwargs):
    """``fn`` (an ArviZ diagnostic) of draws ``[chains, draws, ...]``, elementwise."""
    import arviz as az  # a heavy import: only where diagnostics are computed

    x = np.asarray(x, dtype=np.float64)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # constant or too-short draws: NaN
        out = fn(az.convert_to_dataset({"x": x}), **kwargs)["x"].values
    return out if out.ndim else out[()]


def rank_rhat(x: Float[ArrayLike, "chains draws ..."]) -> Float[ArrayLike, "..."]:
    """Rank-normalized split R-hat (max of bulk and folded) of draws ``[chains, draws, ...]``
    (``arviz.rhat(method="rank")``)."""
    import arviz as az

    return _by_arviz(az.rhat, x, method="rank")


def ess_bulk(x: Float[ArrayLike, "chains draws ..."]) -> Float[ArrayLike, "..."]:
    """Bulk effective sample size: split chains, rank-normalized draws (``arviz.ess``)."""
    import arviz as az

    return _by_arviz(az.ess, x, method="bulk")


def ess_tail(x: Float[ArrayLike, "chains draws ..."]) -> Float[ArrayLike, "..."]:
    """Tail effective sample size: the smaller of the ESS of the 5% and 95% quantiles."""
    import arviz as az

    return _by_arviz(az.ess, x, method="tail")


def mcse_mean(x: Float[ArrayLike, "chains draws ..."]) -> Float[ArrayLike, "..."]:
    """Monte Carlo standard error of the posterior mean (``arviz.mcse``)."""
    import arviz as az

    return _by_arviz(az.mcse, x, method="mean")


def bfmi(energy: Float[ArrayLike, "chains draws"]) -> np.ndarray:
    """Bayesian fraction of missing information of each chain's Hamiltonian energy."""
    import arviz as az

    return np.asarray(az.bfmi(np.asarray(energy, dtype=np.float64)))


def _worst(fn, x, default) -> float:
    v = np.asarray(fn(x))
    v = v[np.isfinite(v)]
    return float(default(v)) if v.size else float("nan")


def diagnose(
    draws: dict[str, ArrayLike],
    num_divergences: int = 0,
    *,
    energy: ArrayLike | None = None,
    warn: bool = True,
) -> Diagnostics:
    """Diagnostics of draws grouped by chain; warns with :class:`DiagnosticsWarning` when a
    check of :func:`problems_of` fails.

    Args:
        draws: draws ``[chains, draws, ...]`` by site.
        num_divergences: divergent transitions of the run.
        energy: the Hamiltonian energy ``[chains, draws]`` (NUTS' ``sample_stats``), for BFMI.
        warn: warn when a check fails.

    Returns:
        :class:`Diagnostics` with the worst R-hat, bulk and tail ESS and MCSE of each site.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(4, 500))
        >>> d = diagnose({"a": x, "b": x + np.arange(4.0)[:, None]}, warn=False)
        >>> d.r_hat["a"] < 1.01 < d.r_hat["b"], problems_of(d)[0].startswith("R-hat > 1.01")
        (True, True)
    """
    first = next(iter(draws.values()))
    c, s = np.shape(first)[:2]
    diag = Diagnostics(
        r_hat={k: _worst(rank_rhat, v, np.max) for k, v in draws.items()},
        ess_bulk={k: _worst(ess_bulk, v, np.min) for k, v in draws.items()},
        num_divergences=int(num_divergences),
        num_chains=int(c),
        num_draws=int(s),
        ess_tail={k: _worst(ess_tail, v, np.min) for k, v in draws.items()},
        mcse_mean={k: _worst(mcse_mean, v, np.max) for k, v in draws.items()},
        bfmi=None if energy is None else tuple(float(b) for b in bfmi(energy)),
    )
    if warn:
        problems = problems_of(diag)
        if problems:
            message = "MCMC diagnostics: " + "; ".join(problems)
            warnings.warn(message, DiagnosticsWarning, stacklevel=2)
    return diag


def problems_of(diag: Diagnostics) -> list[str]:
    """Human-readable list of failed checks (empty when all pass): R-hat > 1.01, bulk or tail
    ESS under 100 per chain, divergent transitions, BFMI < 0.3."""
    out = []
    bad_rhat = {k: round(v, 3) for k, v in diag.r_hat.items() if v > RHAT_MAX}
    if bad_rhat:
        out.append(f"R-hat > {RHAT_MAX}: {bad_rhat}")
    floor = ESS_MIN_PER_CHAIN * diag.num_chains
    for what, ess in (("bulk", diag.ess_bulk), ("tail", diag.ess_tail or {})):
        bad_ess = {k: round(v) for k, v in ess.items() if v < floor}
        if bad_ess:
            out.append(f"{what} ESS < {floor}: {bad_ess}")
    if diag.num_divergences:
        out.append(f"{diag.num_divergences} divergent transitions")
    low = [round(b, 2) for b in diag.bfmi or () if b < BFMI_MIN]
    if low:
        out.append(f"BFMI < {BFMI_MIN} in {len(low)} chains: {low}")
    return out
