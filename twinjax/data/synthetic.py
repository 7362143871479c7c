"""Synthetic cohort with known ground truth: the embedded default data set.

Each individual has a physiological state (``glucose``-like, arbitrary units) driven by nonlinear
dynamics that respond to two interventions: a ``dose`` that lowers it through a first-order
compartment with individual gain, delay and time constant and a saturating (tanh) effect, and a
``meal`` that raises it with an individual gain. An environmental stream (``temperature``) and a
behavioural stream (``activity``, a daily rhythm with individual amplitude and phase) feed into the
state with individual sensitivities. Static covariates (age, weight, sex) partly explain the
individual parameters. Streams are sampled irregularly (independent Bernoulli per grid step) with
missing blocks (device off), and individuals have unequal lengths.
"""

import jax
import numpy as np
from jaxtyping import PRNGKeyArray

from twinjax.data.cohort import Cohort

VARIABLES = ("glucose", "temperature", "activity")
KINDS = ("dose", "meal")
STATIC = ("age", "weight", "sex")
DAY = 24  # grid steps per day (one step = one hour)


def _individual_parameters(rng: np.random.Generator, static: np.ndarray) -> dict[str, np.ndarray]:
    n = static.shape[0]
    age, weight, sex = static.T
    z = lambda: rng.standard_normal(n)
    return {
        "baseline": 0.6 * age + 0.4 * z(),
        "dose_gain": np.exp(0.35 * weight + 0.6 * z()),
        "dose_tau": 2.0 + 6.0 / (1.0 + np.exp(-(0.8 * age + z()))),
        "dose_delay": np.clip(np.round(1.0 + sex + 0.8 * z()), 0, 3).astype(int),
        "meal_gain": np.exp(0.3 * z()),
        "activity_sens": 0.4 * (sex - 0.5) + 0.6 * z(),
        "temp_sens": 0.3 * z(),
        "rhythm_amp": rng.uniform(0.5, 1.5, n),
        "rhythm_phase": rng.uniform(0.0, 2 * np.pi, n),
        "dose_rate": rng.uniform(0.015, 0.05, n),
    }


def _schedules(rng, n: int, t: int, p: dict) -> np.ndarray:
    hours = np.arange(t) % DAY
    meal_hours = np.isin(hours, (7, 12, 19))
    meals = (meal_hours[None, :] & (rng.random((n, t)) < 0.9)) * rng.uniform(0.5, 1.5, (n, t))
    doses = (rng.random((n, t)) < p["dose_rate"][:, None]) * rng.uniform(1.0, 2.0, (n, t))
    return np.stack([doses, meals], axis=-1)


def _simulate(rng, n: int, t: int, p: dict, interventions: np.ndarray) -> np.ndarray:
    clock = 2 * np.pi * np.arange(t) / DAY
    activity = p["rhythm_amp"][:, None] * np.sin(clock[None, :] + p["rhythm_phase"][:, None])
    ar = np.zeros((n, t))
    for s in range(1, t):
        ar[:, s] = 0.8 * ar[:, s - 1] + 0.25 * rng.standard_normal(n)
    activity = activity + ar
    temp = np.sin(clock - 1.0)[None, :] + 0.5 * rng.standard_normal((n, 1))
    temp = temp + 0.1 * np.cumsum(rng.standard_normal((n, t)), axis=1) / np.sqrt(
        np.arange(1, t + 1)
    )

    decay = np.exp(-1.0 / p["dose_tau"])
    drug, meal = np.zeros(n), np.zeros(n)
    x = p["baseline"] + 0.3 * rng.standard_normal(n)
    glucose = np.zeros((n, t))
    rows = np.arange(n)
    for s in range(t):
        glucose[:, s] = x
        lagged = np.where(
            s - p["dose_delay"] >= 0, interventions[rows, s - p["dose_delay"], 0], 0.0
        )
        drug = drug * decay + lagged
        meal = meal * np.exp(-0.5) + interventions[:, s, 1]
        drift = (
            0.25 * (p["baseline"] - x)
            + 0.35 * p["meal_gain"] * meal
            - 0.8 * p["dose_gain"] * np.tanh(drug)
            + 0.25 * p["activity_sens"] * np.tanh(activity[:, s])
            + 0.15 * p["temp_sens"] * temp[:, s]
        )
        x = x + drift + 0.05 * rng.standard_normal(n)
    return np.stack([glucose, temp, activity], axis=-1)


def _missingness(rng, n: int, t: int, f: int, obs_prob: float, dropout_prob: float) -> np.ndarray:
    mask = rng.random((n, t, f)) < obs_prob
    off = np.zeros((n, f), dtype=int)  # remaining steps of a device-off block
    for s in range(t):
        start = rng.random((n, f)) < dropout_prob
        off = np.where(start & (off == 0), rng.integers(3, 13, (n, f)), off)
        mask[:, s, :] &= off == 0
        off = np.maximum(off - 1, 0)
    return mask


def synthetic_cohort(
    key: PRNGKeyArray,
    *,
    n_individuals: int = 64,
    n_steps: int = 240,
    obs_prob: float = 0.7,
    dropout_prob: float = 0.02,
    noise: float = 0.1,
    unequal_lengths: bool = True,
) -> Cohort:
    """Generates a cohort with known truth (``cohort.truth``) and parameters (``cohort.meta``).

    Args:
        key: PRNG key; the cohort is a deterministic function of it.
        n_individuals: number of individuals.
        n_steps: grid steps per individual before length truncation (one step is one hour).
        obs_prob: probability that a stream is observed at a grid step.
        dropout_prob: per-step probability that a device-off block (3-12 steps) starts.
        noise: observation noise SD (times 1, 0.5, 1 for glucose, temperature, activity).
        unequal_lengths: draw each length from ``[0.8 n_steps, n_steps]``.

    Returns:
        A :class:`Cohort` with ``truth`` and ``meta["params"]`` filled in.

    Example:
        >>> import jax
        >>> cohort = synthetic_cohort(jax.random.key(0), n_individuals=3, n_steps=24)
        >>> cohort.values.shape, cohort.variables
        ((3, 24, 3), ('glucose', 'temperature', 'activity'))
    """
    if n_individuals < 1 or n_steps < 8:
        raise ValueError("need n_individuals >= 1 and n_steps >= 8")
    seed = np.asarray(jax.random.key_data(key)).ravel()
    rng = np.random.default_rng(seed)
    n, t, f = n_individuals, n_steps, len(VARIABLES)
    static = np.stack(
        [rng.standard_normal(n), rng.standard_normal(n), (rng.random(n) < 0.5).astype(float)], -1
    )
    params = _individual_parameters(rng, static)
    interventions = _schedules(rng, n, t, params)
    truth = _simulate(rng, n, t, params, interventions)
    noise_sd = noise * np.array([1.0, 0.5, 1.0])
    values = truth + noise_sd * rng.standard_normal(truth.shape)
    mask = _missingness(rng, n, t, f, obs_prob, dropout_prob)
    lengths = np.full(n, t)
    if unequal_lengths:
        lengths = rng.integers(int(0.8 * t), t + 1, n)
    valid = np.arange(t)[None, :] < lengths[:, None]
    mask &= valid[..., None]
    interventions = interventions * valid[..., None]
    return Cohort(
        values=np.where(mask, values, 0.0).astype(np.float32),
        mask=mask,
        interventions=interventions.astype(np.float32),
        static=static.astype(np.float32),
        lengths=lengths.astype(np.int32),
        subject_ids=tuple(f"S{i:04d}" for i in range(n)),
        variables=VARIABLES,
        intervention_kinds=KINDS,
        static_names=STATIC,
        t0=np.zeros(n),
        step=1.0,
        truth=(truth * valid[..., None]).astype(np.float32),
        meta={"params": params, "noise_sd": noise_sd},
    )
