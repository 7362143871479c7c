"""Hierarchical (partial-pooling) twins: the population structure around a per-individual model.

The user writes ``predict(t, theta, regimen) -> curve`` for ONE individual, where ``theta`` maps
parameter names to scalars and ``regimen`` is that individual's intervention history. twinjax adds:

- population means ``mu`` (one per parameter);
- individual random effects, non-centred: ``eta_i = omega * z_i`` (diagonal) or
  ``eta_i = diag(omega) L z_i`` with ``L ~ LKJCholesky`` (correlated), ``z_i ~ Normal(0, I)``;
- covariate effects ``theta_ip += beta_k * x_ic`` (e.g. ``lCl`` on centred log body weight);
- a residual error model (:mod:`twinjax.bayes.residual`);
- the individuals plate, which SVI can subsample (``subsample_size``).
"""

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jaxtyping import Array, Float

from twinjax.bayes.data import TwinData
from twinjax.bayes.residual import (
    ErrorModel,
    check_error_model,
    error_sites,
    observation_dist,
    sample_error_params,
    to_model_scale,
)


@dataclass(frozen=True)
class HierarchicalSpec:
    """The population structure of a hierarchical twin (hashable; pass it as a static argument).

    ``random`` lists the parameters with random effects (``None``: all of them);
    ``covariate_effects`` pairs ``(parameter, covariate name)``, each with its own coefficient.

    Attributes:
        predict: ``predict(t, theta, regimen) -> curve`` for one individual.
        params: parameter names (the keys of ``theta``).
        random: parameters with random effects (None: all).
        prior_loc, prior_scale: Normal prior of the population means (scalar or per parameter).
        omega_scale: HalfNormal scale of the random-effect SDs (scalar or one per random
            parameter, in the order of ``random_params``).
        correlated: correlated random effects (LKJ prior on their correlation).
        lkj_concentration: LKJ concentration.
        covariate_effects: ``(parameter, covariate)`` pairs with a linear effect.
        beta_scale: Normal prior scale of the covariate effects.
        error_model: the residual error model (:mod:`twinjax.bayes.residual`).
        sigma_scale: HalfNormal scale of the residual SDs.
        standardized: sample every population quantity in units of its prior (``mu = loc +
            scale * mu_std``, ``omega = omega_scale * omega_std``, ``sigma = sigma_scale *
            sigma_std`` with standard ``*_std``): the same posterior, but NUTS sees unit scales
            whatever the data's units (the ``mu``, ``omega`` and residual sites stay, as
            deterministic sites).
        centred: sample the random parameters themselves, ``theta_r ~ Normal(mu_r + covariate
            effects, omega)`` (LKJ: a multivariate normal), instead of the default non-centred
            ``z ~ Normal(0, 1)``; ``z`` stays as a deterministic site. Centred suits individuals
            with informative data (dense sampling), non-centred sparse data (the funnel).

    Examples:
        >>> import numpy as np
        >>> from numpyro import handlers
        >>> from twinjax.bayes import TwinData, linear_predict
        >>> spec = HierarchicalSpec(linear_predict, ("intercept", "slope"))
        >>> t = np.tile(np.arange(4.0), (3, 1))  # 3 individuals, 4 times each
        >>> data = TwinData(t, 1.0 + 0.5 * t, np.ones_like(t, bool), None, np.zeros((3, 0)))
        >>> trace = handlers.trace(handlers.seed(hierarchical_model, 0)).get_trace(spec, data)
        >>> trace["theta"]["value"].shape, trace["y"]["value"].shape
        ((3, 2), (3, 4))
    """

    predict: Callable
    params: tuple[str, ...]
    random: tuple[str, ...] | None = None
    prior_loc: tuple[float, ...] | float = 0.0
    prior_scale: tuple[float, ...] | float = 2.0
    omega_scale: tuple[float, ...] | float = 1.0
    correlated: bool = False
    lkj_concentration: float = 2.0
    covariate_effects: tuple[tuple[str, str], ...] = ()
    beta_scale: float = 1.0
    error_model: ErrorModel = "additive"
    sigma_scale: float = 1.0
    standardized: bool = False
    centred: bool = False

    def __post_init__(self):
        check_error_model(self.error_model)
        unknown = set(self.random_params) - set(self.params)
        unknown |= {p for p, _ in self.covariate_effects} - set(self.params)
        if unknown:
            raise ValueError(f"parameters {sorted(unknown)} are not in params {self.params}")
        for name, per in (("prior_loc", self.params), ("prior_scale", self.params),
                          ("omega_scale", self.random_params)):  # fmt: skip
            _per_parameter(getattr(self, name), per, name)

    @property
    def random_params(self) -> tuple[str, ...]:
        return self.params if self.random is None else tuple(self.random)

    @property
    def random_index(self) -> np.ndarray:
        return np.array([self.params.index(p) for p in self.random_params], dtype=int)


def _per_parameter(value, names: tuple[str, ...], what: str) -> np.ndarray:
    """``value`` (a scalar or one number per name) as a float32 vector ``[len(names)]``."""
    v = np.asarray(value, dtype=np.float32)
    if v.ndim == 0:
        return np.full(len(names), v, dtype=np.float32)
    if v.shape != (len(names),):
        raise ValueError(
            f"{what} has {v.size} values; give one number or one per parameter of {names}"
        )
    return v


def _random_effects(spec: HierarchicalSpec, z, omega, corr_chol):
    if corr_chol is None:
        return z * omega
    return z @ (omega[:, None] * corr_chol).T


def individual_params(
    spec: HierarchicalSpec, mu, z, omega, beta, covariates, corr_chol=None, covariate_names=()
) -> Float[Array, "individuals params"]:
    """``theta = mu + random effects + covariate effects`` for a batch of individuals.

    Args:
        spec: the population structure.
        mu: population means ``[P]``.
        z: standard-normal random effects ``[..., R]`` (R random parameters).
        omega: random-effect SDs ``[R]``.
        beta: covariate effects ``[K]`` (one per ``spec.covariate_effects`` pair), or None.
        covariates: covariates ``[..., C]``.
        corr_chol: Cholesky factor of the random-effect correlation, or None (independent).
        covariate_names: names of the covariate columns.

    Returns:
        Individual parameters ``[..., P]``.
    """
    theta = jnp.broadcast_to(mu, z.shape[:-1] + mu.shape)
    if len(spec.random_params):
        eta = _random_effects(spec, z, omega, corr_chol)
        theta = theta.at[..., spec.random_index].add(eta)
    for k, (p, c) in enumerate(spec.covariate_effects):
        col = covariates[..., covariate_names.index(c)]
        theta = theta.at[..., spec.params.index(p)].add(beta[k] * col)
    return theta


def predict_curves(
    spec: HierarchicalSpec,
    theta: Float[Array, "individuals params"],
    times: Float[Array, "individuals time"],
    regimen,
) -> Float[Array, "individuals time"]:
    """Each individual's predicted curve (natural scale), vmapped over individuals.

    Args:
        spec: the population structure (its ``predict`` is applied per individual).
        theta: individual parameters.
        times: observation times.
        regimen: each individual's regimen (a pytree with a leading individuals axis).

    Returns:
        The predicted curves.
    """

    def one(t, th, reg):
        return spec.predict(t, dict(zip(spec.params, th, strict=True)), reg)

    return jax.vmap(one)(times, theta, regimen)


def _scaled(name: str, loc, scale, standardized: bool, positive: bool = False):
    """``loc + scale * x`` with ``x`` standard (half-)normal: sampled as ``name`` directly, or,
    ``standardized``, as ``{name}_std`` with ``name`` a deterministic site."""
    base = dist.HalfNormal if positive else lambda s: dist.Normal(0.0, s)
    if not standardized:
        d = dist.HalfNormal(scale) if positive else dist.Normal(loc, scale)
        return numpyro.sample(name, d.to_event(1))
    x = numpyro.sample(f"{name}_std", base(jnp.ones_like(scale)).to_event(1))
    return numpyro.deterministic(name, loc + scale * x)


def _population(spec: HierarchicalSpec):
    n_r = len(spec.random_params)
    loc = jnp.asarray(_per_parameter(spec.prior_loc, spec.params, "prior_loc"))
    scale = jnp.asarray(_per_parameter(spec.prior_scale, spec.params, "prior_scale"))
    mu = _scaled("mu", loc, scale, spec.standardized)
    beta = None
    if spec.covariate_effects:
        k = len(spec.covariate_effects)
        beta = numpyro.sample("beta", dist.Normal(0.0, spec.beta_scale).expand([k]).to_event(1))
    omega, corr_chol = None, None
    if n_r:
        omega_scale = _per_parameter(spec.omega_scale, spec.random_params, "omega_scale")
        omega = _scaled("omega", 0.0, jnp.asarray(omega_scale), spec.standardized, positive=True)
        if spec.correlated and n_r > 1:
            corr_chol = numpyro.sample("L_corr", dist.LKJCholesky(n_r, spec.lkj_concentration))
    sigma = sample_error_params(spec.error_model, spec.sigma_scale, standardized=spec.standardized)
    return mu, beta, omega, corr_chol, sigma


def _centred_z(spec: HierarchicalSpec, mu, omega, beta, cov, corr_chol, names):
    """Samples the random parameters ``theta_r`` around their typical values and returns the
    standardized effects ``z`` that :func:`individual_params` maps back to them."""
    n_r = len(spec.random_params)
    typical = individual_params(spec, mu, jnp.zeros((cov.shape[0], n_r)), omega, beta, cov,
                                None, names)[..., spec.random_index]  # fmt: skip
    if corr_chol is None:
        theta_r = numpyro.sample("theta_random", dist.Normal(typical, omega).to_event(1))
        return numpyro.deterministic("z", (theta_r - typical) / omega)
    tril = omega[:, None] * corr_chol
    theta_r = numpyro.sample("theta_random", dist.MultivariateNormal(typical, scale_tril=tril))
    z = jax.scipy.linalg.solve_triangular(tril, (theta_r - typical).T, lower=True).T
    return numpyro.deterministic("z", z)


def hierarchical_model(
    spec: HierarchicalSpec, data: TwinData, *, subsample_size: int | None = None
) -> None:
    """The NumPyro model of a hierarchical twin for the cohort ``data``.

    Sites: ``mu``, ``beta``, ``omega``, ``L_corr``, residual SDs, and per individual ``z``
    (standard normal), ``theta`` (deterministic) and ``y`` (observations, masked; drawn when
    ``data.values`` is None).

    Args:
        spec: the population structure.
        data: the cohort.
        subsample_size: individuals per SVI step (None: all).
    """
    mu, beta, omega, corr_chol, sigma = _population(spec)
    n = data.times.shape[0]
    n_r = len(spec.random_params)
    with numpyro.plate("individuals", n, subsample_size=subsample_size) as idx:
        cov = jnp.asarray(data.covariates)[idx]
        if spec.centred and n_r:
            z = _centred_z(spec, mu, omega, beta, cov, corr_chol, data.covariate_names)
        else:
            z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([n_r]).to_event(1))
        theta = individual_params(spec, mu, z, omega, beta, cov, corr_chol, data.covariate_names)
        numpyro.deterministic("theta", theta)
        pick = lambda a: jnp.asarray(a)[idx]
        pred = predict_curves(spec, theta, pick(data.times), jax.tree.map(pick, data.regimen))
        y = None if data.values is None else to_model_scale(spec.error_model, pick(data.values))
        obs_dist = observation_dist(spec.error_model, pred, sigma)
        numpyro.sample("y", obs_dist.mask(pick(data.mask)).to_event(1), obs=y)


def population_draws(spec: HierarchicalSpec, samples: dict) -> dict[str, np.ndarray]:
    """Named draws of every population-level quantity (same leading axes as ``samples``).

    Args:
        spec: the population structure.
        samples: posterior draws by site (``mu``, ``omega``, ``beta``, ``L_corr``, residual SDs).

    Returns:
        Draws by name: each parameter's mean, ``omega_<p>``, ``beta_<p>_<c>``, ``corr_<p>_<q>``
        and the residual SDs.
    """
    out = {p: np.asarray(samples["mu"][..., j]) for j, p in enumerate(spec.params)}
    for j, p in enumerate(spec.random_params):
        out[f"omega_{p}"] = np.asarray(samples["omega"][..., j])
    for k, (p, c) in enumerate(spec.covariate_effects):
        out[f"beta_{p}_{c}"] = np.asarray(samples["beta"][..., k])
    if "L_corr" in samples:
        chol = np.asarray(samples["L_corr"])
        corr = chol @ np.swapaxes(chol, -1, -2)
        r = spec.random_params
        for a in range(len(r)):
            for b in range(a + 1, len(r)):
                out[f"corr_{r[a]}_{r[b]}"] = corr[..., a, b]
    for s in error_sites(spec.error_model):
        out[s] = np.asarray(samples[s])
    return out
