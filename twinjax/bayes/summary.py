"""Posterior tables named by parameter and per-subject summaries (the InferenceData of a fit:
:mod:`twinjax.bayes.idata`).

Every table row is ``mean, sd, q5, q95`` (90% central interval) and, for draws grouped by chain,
ArviZ's rank-normalized split R-hat, bulk and tail ESS and the MCSE of the mean
(:mod:`twinjax.bayes.diagnostics`).
"""

from collections.abc import Callable

import numpy as np
import pandas as pd
from jaxtyping import ArrayLike, Float

from twinjax.bayes.diagnostics import ess_bulk, ess_tail, mcse_mean, rank_rhat
from twinjax.bayes.hierarchical import HierarchicalSpec

COLUMNS = ("mean", "sd", "q5", "q95", "r_hat", "ess_bulk", "ess_tail", "mcse_mean")


def _row(x: np.ndarray, by_chain: bool) -> dict[str, float]:
    flat = x.reshape(-1)
    q5, q95 = np.quantile(flat, [0.05, 0.95])
    row = {"mean": float(flat.mean()), "sd": float(flat.std()), "q5": float(q5), "q95": float(q95)}
    ok = by_chain and x.shape[1] >= 4
    row["r_hat"] = float(rank_rhat(x)) if ok and x.shape[0] > 1 else float("nan")
    for name, fn in (("ess_bulk", ess_bulk), ("ess_tail", ess_tail), ("mcse_mean", mcse_mean)):
        row[name] = float(fn(x)) if ok else float("nan")
    return row


def posterior_table(
    draws: dict[str, Float[ArrayLike, "..."]], *, by_chain: bool = True
) -> pd.DataFrame:
    """One row per named scalar quantity: ``parameter`` and :data:`COLUMNS`.

    Args:
        draws: draws by name, ``[chains, draws]`` (``by_chain``) or ``[draws]``.
        by_chain: whether the leading axis is the chain (else R-hat, ESS and MCSE are NaN).

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
