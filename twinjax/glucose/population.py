"""The population model of the glucose twins: a prior over ALL of a patient's UVa/Padova parameters.

The mechanistic twin of :mod:`twinjax.glucose.mechanistic` estimates six parameters and fixes the
other 17 that vary between patients at an age-group median; the estimated ones then compensate
for the fixed ones' errors and the intervals cover the truth 10-20% of the time. Here every
parameter that varies in simglucose's table varies under a population prior, so that what the
records cannot pin down is marginalized rather than fixed.

A patient's free log-parameters (:data:`FREE`, 23 of them) are

    ``log theta = mean + components @ u``,  ``u ~ Normal(0, I)``,

with, for a patient of age group ``a`` (leaving the patient itself out of the table, so nothing of
its own values leaks into its prior):

- ``mean``: the mean log-parameters of the other table patients of group ``a``;
- ``components``: the principal components (eigenvectors scaled by the square root of their
  eigenvalues) of ``c^2 [(1 - s) W + s diag(W)]``, where ``W`` is the within-group covariance of
  the log-parameters pooled over the three groups (26 degrees of freedom with one patient left out,
  so full rank over the 23 parameters; a single group's nine others give rank 8 at most),
  ``s = 0.4`` shrinks it towards its diagonal, and ``c^2 = (1 + 1/n_a) nu / (nu - 2)`` matches the
  variance of the Student-t predictive of a new patient (``n_a`` others in the group, ``nu``
  pooled degrees of freedom).

Chosen by measurement (leave-one-out over the 30 table patients: the mean log density of each
held-out patient's true log-parameters under its prior): pooled covariance with ``s = 0.4``
gives -5.5; ``s = 0`` -102 (near-singular), half group / half pooled -6.7 at ``s = 0.3``, the
group's own rank-8 covariance plus half its diagonal -9.1, the pooled diagonal alone -7.9. The
marginal 90% prior intervals cover 83-97% of the held-out true values per parameter.

Two parameters are exact functions of others in the table (``m30 = 1.5 m1``, ``m4 = 0.4 m2``)
and stay so; ``BW`` is the patient's known body weight, ``Ib`` the steady plasma insulin under
the recorded basal rate and ``u2ss`` that rate (:func:`~twinjax.glucose.records.with_basal_insulin`),
the rest (``f``, ``ke1``, ``ke2``, ``Fsnc``) are the same for every table patient.

The solver-stability bound of the old twin (``|log deviation| <= 3``) becomes: each parameter's
deviation from its mean is left unchanged within 3 prior SDs and bounded smoothly at 4, and every
rate constant (per minute, :data:`RATES`) is capped smoothly at :data:`CAP_FACTOR` times its
largest table value: one RK4 step per minute is stable for decay rates up to 2.78 per minute, and
the fastest pair, ``m1 + m30 = 2.5 m1``, stays at 2.25 (kabs at 2.46). Both are part of the model (the simulation-based calibration
draws patients through the same map), and change a prior draw's value only in its far tails.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Key

from twinjax.glucose.records import with_basal_insulin
from twinjax.physiology import PARAM_NAMES, load_patients, patient_names
from twinjax.physiology.params import age_group

FREE = tuple(
    "kabs kmax kmin b d Vg Vi Vmx Km0 Vm0 k1 k2 p2u m1 m2 ki kp1 kp2 kp3 kd ksc ka1 ka2".split()
)
RATES = tuple("kabs kmax kmin k1 k2 p2u m1 m2 ki kp2 kd ksc ka1 ka2".split())  # per minute
CAP_FACTOR = 2.0  # rates are capped at this many times their largest table value
SHRINK = 0.4  # weight of the diagonal in the pooled covariance (module docstring)
KEEP, BOUND = 3.0, 4.0  # deviations (in prior SDs) kept unchanged, and their smooth bound
_P = {name: i for i, name in enumerate(PARAM_NAMES)}
_FREE_IDX = np.array([_P[p] for p in FREE])
_RATE_MASK = np.array([p in RATES for p in FREE])


class Population(NamedTuple):
    """Each patient's prior over its free log-parameters (:data:`FREE`) and its fixed values.

    ``log theta[FREE] = mean + components @ u`` with ``u ~ Normal(0, I)``; ``base`` holds the
    values of the other parameters (``BW`` the patient's own; ``Ib``, ``u2ss``, ``m30`` and
    ``m4`` are set from the others by :func:`theta_of`).
    """

    mean: Float[Array, "patients free"]
    components: Float[Array, "patients free free"]
    base: Float[Array, "patients params"]
    log_cap: Float[Array, "patients free"]  # the rates' caps (a large number for the others)

    @property
    def sd(self) -> Float[Array, "patients free"]:
        """The prior SD of each free log-parameter."""
        return jnp.sqrt(jnp.sum(self.components**2, axis=-1))

    def take(self, rows) -> "Population":
        """The priors of the patients ``rows`` (indices)."""
        return Population(*(a[jnp.asarray(rows)] for a in self))


def _log_table() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    theta = np.asarray(load_patients().theta, np.float64)
    names = patient_names()
    return np.log(theta[:, _FREE_IDX]), theta, names


def group_prior(name: str, *, shrink: float = SHRINK) -> tuple[np.ndarray, np.ndarray]:
    """The mean ``[free]`` and covariance ``[free, free]`` of ``name``'s log-parameters, from the
    table patients other than ``name`` (all of them when ``name`` is not in the table)."""
    logs, _, names = _log_table()
    groups = np.array([age_group(n) for n in names])
    others = np.array(names) != name
    same = others & (groups == age_group(name))
    if not same.any():
        raise ValueError(f"no table patients of {name!r}'s age group to take a prior from")
    resid, df = [], 0
    for g in np.unique(groups):
        rows = logs[others & (groups == g)]
        resid.append(rows - rows.mean(0))
        df += len(rows) - 1
    resid = np.concatenate(resid)
    pooled = resid.T @ resid / df
    cov = (1 - shrink) * pooled + shrink * np.diag(np.diag(pooled))
    inflate = (1 + 1 / same.sum()) * df / (df - 2)
    return logs[same].mean(0), inflate * cov


def population(names, bw, *, shrink: float = SHRINK) -> Population:
    """The priors of the patients ``names`` with body weights ``bw`` (kg), each left out of its own.

    Example:
        >>> pop = population(["adult#001", "child#002"], [80.0, 30.0])
        >>> pop.mean.shape, pop.components.shape, float(pop.base[1, PARAM_NAMES.index("BW")])
        ((2, 23), (2, 23, 23), 30.0)
    """
    _, table, _ = _log_table()
    cap = np.where(_RATE_MASK, np.log(CAP_FACTOR * table[:, _FREE_IDX].max(0)), 50.0)
    mean, comps, base = [], [], []
    for name, w in zip(names, np.asarray(bw, np.float64), strict=True):
        m, cov = group_prior(name, shrink=shrink)
        val, vec = np.linalg.eigh(cov)
        order = np.argsort(val)[::-1]
        mean.append(m)
        comps.append(vec[:, order] * np.sqrt(np.maximum(val[order], 0.0)))
        b = np.median(table, axis=0)  # the constants; the free entries are overwritten
        b[_P["BW"]] = w
        base.append(b)
    f32 = lambda a: jnp.asarray(np.stack(a), jnp.float32)
    return Population(f32(mean), f32(comps), f32(base), f32([cap] * len(mean)))


def _soft_bound(x: Array, keep: float, bound: float) -> Array:
    """``x`` where ``|x| <= keep``, beyond it smoothly approaching ``+-bound`` (C1 at ``keep``)."""
    over = jnp.abs(x) - keep
    tail = keep + (bound - keep) * jnp.tanh(jnp.maximum(over, 0.0) / (bound - keep))
    return jnp.where(over > 0, jnp.sign(x) * tail, x)


def log_free(pop_i: Population, u: Float[Array, " free"]) -> Float[Array, " free"]:
    """One patient's free log-parameters from its prior ``pop_i`` (one patient's entries) and
    whitened latent ``u``, with the bounds of the module docstring applied."""
    sd = jnp.sqrt(jnp.sum(pop_i.components**2, axis=-1))
    log_theta = pop_i.mean + sd * _soft_bound(pop_i.components @ u / sd, KEEP, BOUND)
    return log_theta - jax.nn.softplus(8.0 * (log_theta - pop_i.log_cap)) / 8.0


def theta_of(
    pop_i: Population, u: Float[Array, " free"], basal: Float[Array, ""]
) -> Float[Array, " params"]:
    """One patient's full parameter vector (:data:`~twinjax.physiology.PARAM_NAMES`) from its
    prior ``pop_i`` (one patient's entries of a :class:`Population`) and latent ``u``."""
    theta = pop_i.base.at[_FREE_IDX].set(jnp.exp(log_free(pop_i, u)))
    theta = theta.at[_P["m30"]].set(1.5 * theta[_P["m1"]]).at[_P["m4"]].set(0.4 * theta[_P["m2"]])
    theta = theta.at[_P["u2ss"]].set(basal * 6000.0 / theta[_P["BW"]])
    return with_basal_insulin(theta, basal)


def prior_draws(
    key: Key[Array, ""], pop: Population, basal: Float[Array, " patients"], draws: int
) -> Float[Array, "patients draws params"]:
    """``draws`` parameter vectors of each patient from its prior."""
    u = jax.random.normal(key, (pop.mean.shape[0], draws, len(FREE)))
    one = jax.vmap(theta_of, in_axes=(None, 0, None))  # over draws
    return jax.vmap(one)(pop, u, jnp.asarray(basal))
