"""Gaussian-process twins: per-individual GP regression over time, hyperpriors shared by the cohort.

Each individual's stream is standardized by its own training mean and SD and modelled as
``y(t) = f(t) + noise`` with ``f ~ GP(0, amp^2 exp(-(t - t')^2 / (2 length^2)))``. The individual's
log-hyperparameters ``(log amp, log length, log noise)`` have a Normal hyperprior whose location is
shared across the cohort and learned with them (type-II MAP, hierarchical). Two backends:

- ``exact``: Cholesky of the T x T kernel matrix (masked points are decoupled exactly);
- ``hsgp``: NumPyro's Hilbert-space approximation (``numpyro.contrib.hsgp``: Laplacian
  eigenfunctions on ``[-L, L]`` and the SE spectral density), a Bayesian linear model with ``m``
  basis functions whose ``Phi^T Phi`` is computed once, so each optimizer step costs ``O(m^3)`` per
  individual whatever the series length.

Times are rescaled to ``[-1, 1]`` over the cohort's span (``scale_times``); lengths are in those
units. :func:`fit_gp_twins` fits a whole cohort in one jitted, vmapped call.
"""

import math
from functools import partial
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike, Bool, Float
from numpyro.contrib.hsgp.laplacian import eigenfunctions
from numpyro.contrib.hsgp.spectral_densities import diag_spectral_density_squared_exponential

_LOG2PI = math.log(2.0 * math.pi)  # a Python float: importing twinjax starts no JAX backend


class GPTwins(NamedTuple):
    hypers: Float[Array, "individuals 3"]  # log amp, log length, log noise (standardized units)
    prior_loc: Float[Array, " 3"]  # shared hyperprior location
    mean: Float[Array, " individuals"]  # standardization of each individual's stream
    sd: Float[Array, " individuals"]


def scale_times(t, t_min: float, t_max: float):
    """Maps ``[t_min, t_max]`` onto ``[-1, 1]``."""
    return 2.0 * (t - t_min) / (t_max - t_min) - 1.0


def se_kernel(x1, x2, amp, length):
    return amp**2 * jnp.exp(-0.5 * (x1[:, None] - x2[None, :]) ** 2 / length**2)


def _masked_kernel(x, mask, h):
    amp, length, noise = jnp.exp(h)
    m = mask.astype(x.dtype)
    k = se_kernel(x, x, amp, length) * m[:, None] * m[None, :]
    return k + jnp.diag(jnp.where(mask, noise**2, 1.0))


def exact_log_marginal(x, y, mask, h) -> Float[Array, ""]:
    """log N(y_obs | 0, K_obs + noise^2 I) of one individual; masked points do not count."""
    chol = jnp.linalg.cholesky(_masked_kernel(x, mask, h))
    r = jnp.where(mask, y, 0.0)
    alpha = jax.scipy.linalg.solve_triangular(chol, r, lower=True)
    n = jnp.sum(mask)
    return -0.5 * jnp.sum(alpha**2) - jnp.sum(jnp.log(jnp.diag(chol))) - 0.5 * n * _LOG2PI


def exact_predict(x, y, mask, h, x_new):
    """Predictive mean and variance (latent plus noise) of y at ``x_new`` for one individual."""
    amp, length, noise = jnp.exp(h)
    chol = jnp.linalg.cholesky(_masked_kernel(x, mask, h))
    k_star = se_kernel(x_new, x, amp, length) * mask[None, :]
    solve = lambda b: jax.scipy.linalg.cho_solve((chol, True), b)
    mean = k_star @ solve(jnp.where(mask, y, 0.0))
    var = amp**2 - jnp.sum(k_star * solve(k_star.T).T, axis=1)
    return mean, jnp.maximum(var, 0.0) + noise**2


class HSGPStats(NamedTuple):
    """Sufficient statistics of one individual for the HSGP marginal likelihood."""

    gram: Float[Array, "m m"]  # Phi^T Phi over observed points
    proj: Float[Array, " m"]  # Phi^T y
    yy: Float[Array, ""]
    n: Float[Array, ""]


def hsgp_stats(x, y, mask, *, ell: float, m: int) -> HSGPStats:
    phi = eigenfunctions(x, ell, m) * mask[:, None]
    r = jnp.where(mask, y, 0.0)
    return HSGPStats(phi.T @ phi, phi.T @ r, r @ r, jnp.sum(mask).astype(x.dtype))


def _hsgp_posterior(stats: HSGPStats, h, *, ell: float, m: int):
    """Cholesky of ``B = I + S^1/2 Phi^T Phi S^1/2 / noise^2`` (stable when the spectral density
    of high frequencies underflows to 0), ``S^1/2`` and the noise variance."""
    amp, length, noise = jnp.exp(h)
    # NumPyro's ``alpha`` multiplies the kernel linearly: it is the variance amp^2
    root = jnp.sqrt(diag_spectral_density_squared_exponential(amp**2, length, ell, m, 1))
    nv = noise**2
    b = jnp.eye(m) + root[:, None] * stats.gram * root[None, :] / nv
    return jnp.linalg.cholesky(b), root, nv


def hsgp_log_marginal(stats: HSGPStats, h, *, ell: float, m: int) -> Float[Array, ""]:
    """log N(y | 0, Phi S Phi^T + noise^2 I) by the matrix determinant lemma and Woodbury."""
    chol, root, nv = _hsgp_posterior(stats, h, ell=ell, m=m)
    b = jax.scipy.linalg.solve_triangular(chol, root * stats.proj, lower=True)
    quad = (stats.yy - jnp.sum(b**2) / nv) / nv
    logdet = stats.n * jnp.log(nv) + 2.0 * jnp.sum(jnp.log(jnp.diag(chol)))
    return -0.5 * (quad + logdet + stats.n * _LOG2PI)


def hsgp_predict(stats: HSGPStats, h, x_new, *, ell: float, m: int):
    """Predictive mean and variance of y at ``x_new`` (basis weights' Gaussian posterior)."""
    chol, root, nv = _hsgp_posterior(stats, h, ell=ell, m=m)
    phi = eigenfunctions(x_new, ell, m) * root[None, :]
    mean = phi @ jax.scipy.linalg.cho_solve((chol, True), root * stats.proj) / nv
    v = jax.scipy.linalg.solve_triangular(chol, phi.T, lower=True)
    return mean, jnp.sum(v**2, axis=0) + nv


def _standardize(y, mask):
    n = jnp.maximum(jnp.sum(mask), 1)
    mean = jnp.sum(jnp.where(mask, y, 0.0)) / n
    sd = jnp.sqrt(jnp.sum(jnp.where(mask, (y - mean) ** 2, 0.0)) / n)
    sd = jnp.where(sd > 0, sd, 1.0)
    return mean, sd


@partial(jax.jit, static_argnames=("method", "m", "ell", "steps"))
def fit_gp_twins(
    x: Float[ArrayLike, "individuals time"],
    y: Float[ArrayLike, "individuals time"],
    mask: Bool[ArrayLike, "individuals time"],
    *,
    method: Literal["hsgp", "exact"] = "hsgp",
    m: int = 64,
    ell: float = 1.3,
    steps: int = 200,
    lr: float | Float[Array, ""] = 0.05,  # traced under jit
    prior_scale: float | Float[Array, ""] = 0.75,
    init: tuple[float | Float[Array, ""], ...] = (0.0, -2.5, -1.0),
) -> GPTwins:
    """Fits every individual's hyperparameters and the shared hyperprior location (one program).

    Objective: mean over individuals of ``-log p(y_i | h_i) - log N(h_i | loc, prior_scale^2)``.
    """
    mean, sd = jax.vmap(_standardize)(y, mask)
    z = (y - mean[:, None]) / sd[:, None]
    if method == "hsgp":
        stats = jax.vmap(partial(hsgp_stats, ell=ell, m=m))(x, z, mask)
        lml = jax.vmap(partial(hsgp_log_marginal, ell=ell, m=m))
        data_term = lambda h: lml(stats, h)
    elif method == "exact":
        data_term = lambda h: jax.vmap(exact_log_marginal)(x, z, mask, h)
    else:
        raise ValueError(f"unknown GP method {method!r}")

    def loss(params):
        h, loc = params
        prior = -0.5 * jnp.sum((h - loc) ** 2, axis=-1) / prior_scale**2
        return -jnp.mean(data_term(h) + prior)

    n = x.shape[0]
    params = (jnp.tile(jnp.asarray(init, x.dtype), (n, 1)), jnp.asarray(init, x.dtype))
    opt = optax.adam(lr)

    def _step(carry, _):
        p, s = carry
        g = jax.grad(loss)(p)
        updates, s = opt.update(g, s, p)
        return (optax.apply_updates(p, updates), s), None

    (params, _), _ = jax.lax.scan(_step, (params, opt.init(params)), None, length=steps)
    return GPTwins(params[0], params[1], mean, sd)


@partial(jax.jit, static_argnames=("method", "m", "ell"))
def predict_gp_twins(
    twins: GPTwins,
    x: Float[ArrayLike, "individuals time"],
    y: Float[ArrayLike, "individuals time"],
    mask: Bool[ArrayLike, "individuals time"],
    x_new: Float[ArrayLike, "individuals new"],
    *,
    method: Literal["hsgp", "exact"] = "hsgp",
    m: int = 64,
    ell: float = 1.3,
):
    """Predictive mean and SD at ``x_new`` (original units) given the training points ``mask``."""
    z = (y - twins.mean[:, None]) / twins.sd[:, None]
    if method == "hsgp":
        stats = jax.vmap(partial(hsgp_stats, ell=ell, m=m))(x, z, mask)
        mu, var = jax.vmap(partial(hsgp_predict, ell=ell, m=m))(stats, twins.hypers, x_new)
    else:
        mu, var = jax.vmap(exact_predict)(x, z, mask, twins.hypers, x_new)
    return twins.mean[:, None] + twins.sd[:, None] * mu, twins.sd[:, None] * jnp.sqrt(var)
