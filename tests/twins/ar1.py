"""A generated AR(1) cohort with known dynamics, for the multi-step tests."""

import numpy as np

from twinjax.data import Cohort

PHI = 0.8  # AR(1) coefficient (unit innovations)


def ar1_cohort(seed: int, n: int, t: int) -> tuple[Cohort, np.ndarray]:
    """y_t = mu_i + PHI (y_{t-1} - mu_i) + N(0, 1) with mu_i ~ N(0, 1), from a stationary start;
    returns the cohort and the levels mu."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0.0, 1.0, n)
    y = np.empty((n, t))
    y[:, 0] = mu + rng.normal(0.0, 1.0 / np.sqrt(1 - PHI**2), n)
    for k in range(1, t):
        y[:, k] = mu + PHI * (y[:, k - 1] - mu) + rng.normal(0.0, 1.0, n)
    cohort = Cohort(
        values=y[..., None].astype(np.float32),
        mask=np.ones((n, t, 1), bool),
        interventions=np.zeros((n, t, 1), np.float32),
        static=np.zeros((n, 0), np.float32),
        lengths=np.full(n, t),
        subject_ids=tuple(f"s{i}" for i in range(n)),
        variables=("y",),
        intervention_kinds=("u",),
    )
    return cohort, mu


def truncated(cohort: Cohort, origin: int) -> Cohort:
    """The cohort as known at ``origin`` (its steps from there on unobserved)."""
    seen = np.arange(cohort.n_steps)[None, :, None] < origin
    return cohort.__class__(**{
        **cohort.__dict__, "lengths": np.full(cohort.n_individuals, origin),
        "mask": cohort.mask & seen, "values": np.where(seen, cohort.values, 0), "truth": None,
    })  # fmt: skip


def true_forecast(cohort: Cohort, mu: np.ndarray, origin: int, horizon: int) -> np.ndarray:
    """The true model's h-step mean from ``origin`` ``[N, horizon]``: mu + PHI^h (y - mu)."""
    last = cohort.values[:, origin - 1, 0]
    return mu[:, None] + PHI ** np.arange(1, horizon + 1)[None] * (last - mu)[:, None]
