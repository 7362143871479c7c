"""A cohort in data units to the model units and axis orders of saved twins."""

import logging

import jax.numpy as jnp
import numpy as np

from twinjax.bundle.store import TwinBundle
from twinjax.data import Cohort, CohortError, NormStats, Series, fit_normalizer, normalize

log = logging.getLogger(__name__)


def _columns(names: tuple, wanted: tuple, what: str, *, required: bool) -> list[int | None]:
    """Position of each wanted name in ``names`` (None where absent and allowed)."""
    out = []
    for w in wanted:
        if w in names:
            out.append(names.index(w))
        elif required:
            raise CohortError(
                f"the twins were trained with {what} {list(wanted)}; this cohort lacks {w!r} "
                f"(it has {list(names)})"
            )
        else:
            out.append(None)
    extra = sorted(set(names) - set(wanted))
    if extra:
        log.warning("ignoring %s %s: the twins were trained with %s", what, extra, list(wanted))
    return out


def _pick(a: np.ndarray, cols: list[int | None]) -> np.ndarray:
    """Columns of the last axis in the bundle's order; an absent column is zeros."""
    zeros = np.zeros(a.shape[:-1], a.dtype)
    return np.stack([a[..., c] if c is not None else zeros for c in cols], axis=-1)


def value_stats(bundle: TwinBundle, cohort: Cohort, rows: list[int | None], values, mask):
    """Per-subject normalization stats ``[N, F]`` (a known subject's own, else fitted anew)."""
    s = bundle.scalers.values
    if bundle.normalization != "individual":
        n = cohort.n_individuals
        return NormStats(*(jnp.broadcast_to(jnp.asarray(x), (n,) + x.shape[-1:]) for x in s))
    own = fit_normalizer(values, mask, per_individual=True)
    mean = [np.asarray(s.mean[r]) if r is not None else np.asarray(own.mean[i]) for i, r in
            enumerate(rows)]  # fmt: skip
    std = [np.asarray(s.std[r]) if r is not None else np.asarray(own.std[i]) for i, r in
           enumerate(rows)]  # fmt: skip
    return NormStats(jnp.asarray(np.stack(mean)), jnp.asarray(np.stack(std)))


def align(bundle: TwinBundle, cohort: Cohort) -> tuple[Series, NormStats, list[int | None]]:
    """``cohort`` in the bundle's model units and axis orders.

    Variables are matched by name: one the cohort lacks is treated as never observed (mask
    False). Intervention kinds likewise (never given). Static covariates are required by name.

    Returns:
      ``(series, stats, rows)``: the normalized series ``[N, T, ...]``, each subject's value
      stats ``[N, F]`` (to map forecasts back), and each subject's row in the bundle (None for
      a subject it has not seen).
    """
    v_cols = _columns(tuple(cohort.variables), bundle.variables, "variables", required=False)
    if all(c is None for c in v_cols):
        raise CohortError(
            f"none of the cohort's variables {list(cohort.variables)} is one the twins know "
            f"({list(bundle.variables)})"
        )
    u_cols = _columns(
        tuple(cohort.intervention_kinds), bundle.intervention_kinds, "intervention kinds",
        required=False,
    )  # fmt: skip
    s_cols = _columns(tuple(cohort.static_names), bundle.static_names, "static covariates",
                      required=True)  # fmt: skip
    values = _pick(cohort.values, v_cols)
    mask = _pick(cohort.mask, v_cols).astype(bool)
    interventions = _pick(cohort.interventions, u_cols) if u_cols else cohort.interventions[..., :0]
    static = _pick(cohort.static, s_cols) if s_cols else cohort.static[:, :0]
    rows = (
        [bundle.index(s) for s in cohort.subject_ids]
        if cohort.subject_ids
        else [None] * len(values)
    )
    stats = value_stats(bundle, cohort, rows, values, mask)
    sc = bundle.scalers
    series = Series(
        values=jnp.asarray(normalize(stats, values, mask=mask), jnp.float32),
        mask=jnp.asarray(mask),
        interventions=jnp.asarray(interventions / np.asarray(sc.interventions), jnp.float32),
        static=jnp.asarray(
            (static - np.asarray(sc.static_mean)) / np.asarray(sc.static_std), jnp.float32
        ),
    )
    return series, stats, rows
