"""From a `Cohort` to normalized device arrays (a `Series`) and the time-split masks."""

from typing import Literal, NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from twinjax.data.cohort import Cohort
from twinjax.data.normalize import NormStats, make_normalizer
from twinjax.data.series import Series
from twinjax.data.split import segment_mask, time_split


class CohortArrays(NamedTuple):
    """Model-ready cohort: the normalized ``series`` and each individual's split masks."""

    series: Series
    train: Bool[Array, "individuals time"]
    val: Bool[Array, "individuals time"]
    test: Bool[Array, "individuals time"]

    @property
    def n_individuals(self) -> int:
        return self.series.values.shape[0]

    def take(self, index) -> "CohortArrays":
        """The same individuals (an index array or slice) from every array."""
        return CohortArrays(self.series.at(index), *(x[index] for x in self[1:]))


class Scalers(NamedTuple):
    """Everything needed to map model units back to data units (saved with the model)."""

    values: NormStats
    interventions: Float[Array, " kinds"]
    static_mean: Float[Array, " covariates"]
    static_std: Float[Array, " covariates"]


def _intervention_scale(cohort: Cohort, total) -> np.ndarray:
    n, t, k = cohort.interventions.shape
    u = cohort.interventions.reshape(n * t, k)  # (-1, k) is ambiguous when k == 0
    positive = u > 0
    mean_pos = total(np.where(positive, u, 0).sum(0)) / np.maximum(total(positive.sum(0)), 1)
    return np.where(mean_pos > 0, mean_pos, 1.0).astype(np.float32)


def prepare(
    cohort: Cohort,
    *,
    normalization: Literal["population", "individual", "none"] = "population",
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    across=None,
) -> tuple[CohortArrays, Scalers]:
    """Splits each individual in time, fits scalers on the training segment only, and normalizes.

    Args:
      cohort: the aligned cohort (host arrays).
      normalization: value scaling, fitted on observed training values: one mean/std per stream
        over the cohort (``population``), per individual and stream (``individual``) or none.
      val_fraction, test_fraction: the last fractions of each individual's observed span kept
        for validation and test (time-ordered, so no future value is trained on).
      across: ``cohort`` is one part of a cohort held apart (one process's share): the
        cohort-wide scalers pool every part (``across.sum``/``across.max`` of a host array over
        the parts, :class:`twinjax.train.processes.Across`); None: ``cohort`` is the whole.

    Returns:
      ``(arrays, scalers)``: intervention amounts are divided by each kind's mean positive
      amount and static covariates standardized over the cohort; ``scalers`` maps back.

    >>> from twinjax.data import synthetic_cohort
    >>> import jax
    >>> cohort = synthetic_cohort(jax.random.key(0), n_individuals=3, n_steps=40)
    >>> arrays, scalers = prepare(cohort)
    >>> arrays.series.values.shape == cohort.values.shape, arrays.train.shape
    (True, (3, 40))
    """
    split = time_split(cohort.lengths, val_fraction, test_fraction)
    seg = {s: segment_mask(split, cohort.n_steps, s) for s in ("train", "val", "test")}
    norm = make_normalizer(normalization)
    stats = norm.fit(cohort.values, cohort.mask & seg["train"][..., None], across=across)
    values = norm.normalize(stats, cohort.values, mask=cohort.mask)
    total = (lambda x: x) if across is None else across.sum
    u_scale = _intervention_scale(cohort, total)
    static = cohort.static.astype(np.float64)  # float32 squares of covariates near 1e19 overflow
    count = max(total(np.array(len(static))), 1)
    s_mean = total(static.sum(0)) / count
    s_std = np.sqrt(total(np.square(static - s_mean).sum(0)) / count)
    s_std = np.where(s_std > 1e-12, s_std, 1.0)
    series = Series(
        values=jnp.asarray(values, jnp.float32),
        mask=jnp.asarray(cohort.mask),
        interventions=jnp.asarray(cohort.interventions / u_scale, jnp.float32),
        static=jnp.asarray((cohort.static - s_mean) / s_std, jnp.float32),
    )
    arrays = CohortArrays(series, **{k: jnp.asarray(v) for k, v in seg.items()})
    return arrays, Scalers(stats, jnp.asarray(u_scale), jnp.asarray(s_mean), jnp.asarray(s_std))
