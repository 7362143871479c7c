"""Posterior tables named by parameter, per-subject summaries and ArviZ InferenceData.

Every table row is ``mean, sd, q5, q95`` (90% central interval) and, for draws grouped by chain,
the rank-normalized split R-hat and bulk ESS of :mod:`twinjax.bayes.diagnostics`.
"""

from collections.abc import Callable

import numpy as np
import pandas as pd
from jaxtyping import ArrayLike, Float

from twinjax.bayes.data import TwinData
from twinjax.bayes.diagnostics import ess_bulk, rank_rhat
from twinjax.bayes.hierarchical import HierarchicalSpec

COLUMNS = ("mean", "sd", "q5", "q95", "r_hat", "ess_bulk")


def _row(x: np.ndarray, by_chain: bool) -> dict[str, float]:
    flat = x.reshape(-1)
    q5, q95 = np.quantile(flat, [0.05, 0.95])
    row = {"mean": float(flat.mean()), "sd": float(flat.std()), "q5": float(q5), "q95": float(q95)}
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = by_chain and x.shape[0] > 1 and x.shape[1] >= 4
        row["r_hat"] = float(rank_rhat(x)) if ok else float("nan")
        row["ess_bulk"] = float(ess_bulk(x)) if by_chain and x.shape[1] >= 4 else float("nan")
    return row


def posterior_table(
    draws: dict[str, Float[ArrayLike, "..."]], *, by_chain: bool = True
) -> pd.DataFrame:
    """One row per named scalar quantity: ``parameter`` and :data:`COLUMNS`.

    Args:
        draws: draws by name, ``[chains, draws]`` (``by_chain``) or ``[draws]``.
        by_chain: whether the leading axis is the chain (else R-hat and ESS are NaN).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> t = posterior_table({"a": rng.normal(1.0, 0.1, (2, 500))})
        >>> t.loc[0, "parameter"], round(float(t.loc[0, "mean"]), 1), bool(t.loc[0, "r_hat"] < 1.01)
        ('a', 1.0, True)
    """
    rows = []
    for name, x in draws.items():
        x = np.asarray(x, dtype=np.float64)
        x = x if by_chain else x[None]
        rows.append({"parameter": name, **_row(x, by_chain)})
    return pd.DataFrame(rows, columns=["parameter", *COLUMNS])


def subject_table(
    spec: HierarchicalSpec,
    theta: Float[ArrayLike, "*draws individuals params"],
    subject_ids,
    *,
    derived: Callable[[dict], dict] | None = None,
) -> pd.DataFrame:
    """Per subject and parameter (and derived quantity): mean, sd, q5, q95 of its posterior.

    ``theta`` is ``[chains, draws, individuals, params]`` or ``[draws, individuals, params]``;
    ``derived(theta_by_name) -> {name: draws}`` adds quantities such as V and half-life.
    """
    theta = np.asarray(theta, dtype=np.float64)
    theta = theta.reshape(-1, *theta.shape[-2:])
    named = {p: theta[..., j] for j, p in enumerate(spec.params)}
    if derived is not None:
        named |= derived(named)
    rows = []
    for i, s in enumerate(subject_ids):
        for name, x in named.items():
            q5, q95 = np.quantile(x[:, i], [0.05, 0.95])
            rows.append({"subject": s, "parameter": name, "mean": float(x[:, i].mean()),
                         "sd": float(x[:, i].std()), "q5": float(q5), "q95": float(q95)})  # fmt: skip
    return pd.DataFrame(rows)


def inference_data(
    population: dict[str, np.ndarray],
    theta: np.ndarray,
    spec: HierarchicalSpec,
    data: TwinData,
    *,
    diverging: np.ndarray | None = None,
    attrs: dict | None = None,
):
    """An ``arviz.InferenceData``: the named population draws and each subject's parameters
    (``posterior``, dims ``chain, draw[, subject]``), divergences (``sample_stats``) and the
    observations with their times (``observed_data``/``constant_data``, NaN where padded).

    Args:
        population: named population draws ``[chains, draws]``.
        theta: individual parameters ``[chains, draws, individuals, params]``.
        spec: the population structure (parameter names).
        data: the cohort.
        diverging: ``[chains, draws]`` divergence flags, or None.
        attrs: attributes recorded in every group (e.g. the time centre, the model).
    """
    import arviz as az  # a heavy import: only where InferenceData is written

    theta = np.asarray(theta)
    posterior = dict(population) | {f"theta_{p}": theta[..., j] for j, p in enumerate(spec.params)}
    mask = np.asarray(data.mask, bool)
    observed = {"y": np.where(mask, np.asarray(data.values), np.nan)}
    constant = {"time": np.where(mask, np.asarray(data.times), np.nan)}
    dims = {f"theta_{p}": ["subject"] for p in spec.params} | {
        "y": ["subject", "obs"],
        "time": ["subject", "obs"],
    }
    idata = az.from_dict(
        posterior=posterior,
        sample_stats=None if diverging is None else {"diverging": np.asarray(diverging, bool)},
        observed_data=observed,
        constant_data=constant,
        coords={"subject": [str(s) for s in data.subject_ids], "obs": np.arange(mask.shape[1])},
        dims=dims,
        attrs=attrs or {},
    )
    return idata
