"""ArviZ InferenceData of a hierarchical twin's fit, named by parameter and subject.

The groups ArviZ's functions read: ``posterior`` (each population quantity by name, each
subject's parameters ``theta_<p>`` over ``subject``), ``sample_stats`` (NUTS: energy, tree depth,
step size, divergences, ...; ``arviz.plot_energy``, ``arviz.bfmi``), ``log_likelihood`` and
``posterior_predictive`` of each observation (``arviz.loo``, ``arviz.compare``,
``arviz.plot_ppc``), ``observed_data`` and ``constant_data`` (the observation times).

Observations are one flat ``observation`` axis of the observed points only (subjects have
different numbers of visits; padding would put NaN into LOO and the PPC), each labelled by its
``subject`` (a coordinate along ``observation``; a cohort without ``subject_ids`` numbers its
subjects from 0). An SVI fit has draws from its guide as one
chain and no ``sample_stats``.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Float

from twinjax.bayes.data import TwinData
from twinjax.bayes.hierarchical import HierarchicalSpec
from twinjax.bayes.predictive import (
    flatten_chains,
    pointwise_log_likelihood,
    posterior_predictive,
)

OBSERVED_GROUPS = ("observed_data", "constant_data", "log_likelihood", "posterior_predictive")


def inference_data(
    population: dict[str, np.ndarray],
    theta: Float[np.ndarray, "chains draws individuals params"],
    spec: HierarchicalSpec,
    data: TwinData,
    *,
    sample_stats: dict[str, np.ndarray] | None = None,
    log_likelihood: Float[np.ndarray, "chains draws individuals time"] | None = None,
    predictive: Float[np.ndarray, "chains draws individuals time"] | None = None,
    diverging: np.ndarray | None = None,
    attrs: dict | None = None,
):
    """An ``arviz.InferenceData`` from draws already computed (see the module's docstring).

    Args:
        population: named population draws ``[chains, draws]``.
        theta: individual parameters ``[chains, draws, individuals, params]``.
        spec: the population structure (parameter names).
        data: the cohort (``values``, ``times`` and ``mask`` ``[individuals, time]``).
        sample_stats: NUTS' statistics ``[chains, draws]`` by ArviZ name, or None (SVI).
        log_likelihood: each observation's log density under each draw, or None.
        predictive: posterior predictive draws of the observations, or None.
        diverging: divergence flags ``[chains, draws]`` when ``sample_stats`` is None.
        attrs: attributes recorded in every group (e.g. the time centre, the model).
    """
    import arviz as az  # a heavy import: only where InferenceData is written

    theta = np.asarray(theta)
    mask = np.asarray(data.mask, bool)
    names = [str(s) for s in data.subject_ids] or [str(i) for i in range(mask.shape[0])]
    at = lambda a: np.asarray(a)[..., mask]  # [..., individuals, time] -> [..., observation]
    posterior = dict(population) | {f"theta_{p}": theta[..., j] for j, p in enumerate(spec.params)}
    if sample_stats is None and diverging is not None:
        sample_stats = {"diverging": np.asarray(diverging, bool)}
    idata = az.from_dict(
        posterior=posterior,
        sample_stats=sample_stats,
        log_likelihood=None if log_likelihood is None else {"y": at(log_likelihood)},
        posterior_predictive=None if predictive is None else {"y": at(predictive)},
        observed_data={"y": at(data.values)},
        constant_data={"time": at(data.times)},
        coords={
            "subject": names,
            "observation": np.arange(mask.sum()),
        },
        dims={f"theta_{p}": ["subject"] for p in spec.params}
        | {"y": ["observation"], "time": ["observation"]},
        attrs=attrs or {},
    )
    subject = np.repeat(np.asarray(names), mask.sum(axis=1))
    groups = [g for g in OBSERVED_GROUPS if g in idata.groups()]
    idata.map(lambda ds: ds.assign_coords(subject=("observation", subject)), groups, inplace=True)
    return idata


def hierarchical_inference_data(
    spec: HierarchicalSpec,
    samples: dict,
    data: TwinData,
    population: dict[str, np.ndarray],
    *,
    key: jax.Array,
    by_chain: bool = True,
    sample_stats: dict[str, np.ndarray] | None = None,
    attrs: dict | None = None,
):
    """The InferenceData of a fit of :func:`~twinjax.bayes.hierarchical.hierarchical_model`:
    with every draw's log-likelihood and posterior predictive draw of each observation.

    Args:
        spec: the population structure.
        samples: the fit's draws by site, ``[chains, draws, ...]`` (``by_chain``) or ``[draws,
            ...]`` (SVI: one chain).
        data: the cohort fitted.
        population: named population draws with the same leading axes (e.g.
            :func:`~twinjax.bayes.hierarchical.population_draws` and derived quantities).
        key: PRNG key of the predictive draws.
        by_chain: whether the leading axis of the draws is the chain.
        sample_stats: NUTS' statistics (:func:`~twinjax.bayes.inference.sample_stats`), or None.
        attrs: attributes recorded in every group.

    Example:
        >>> from twinjax.bayes import linear_predict, population_draws
        >>> spec = HierarchicalSpec(linear_predict, ("intercept", "slope"))
        >>> t = np.tile(np.arange(3.0), (2, 1))
        >>> data = TwinData(t, 1.0 + t, np.array([[1, 1, 1], [1, 1, 0]], bool), None,
        ...                 np.zeros((2, 0)), subject_ids=("a", "b"))
        >>> rng = np.random.default_rng(0)
        >>> draws = {"mu": rng.normal(size=(5, 2)), "omega": np.ones((5, 2)),
        ...          "sigma_add": np.ones(5), "theta": rng.normal(size=(5, 2, 2))}
        >>> idata = hierarchical_inference_data(spec, draws, data, population_draws(spec, draws),
        ...                                     key=jax.random.key(0), by_chain=False)
        >>> idata.log_likelihood["y"].shape, idata.observed_data["subject"].values.tolist()
        ((1, 5, 5), ['a', 'a', 'a', 'b', 'b'])
    """
    chained = (lambda x: np.asarray(x)) if by_chain else (lambda x: np.asarray(x)[None])
    flat = flatten_chains(samples) if by_chain else samples
    c, d = chained(samples["theta"]).shape[:2]
    unflat = lambda a: np.asarray(a).reshape(c, d, *np.shape(a)[1:])
    loglik = pointwise_log_likelihood(spec, flat, data)
    pp = posterior_predictive(spec, flat, jnp.asarray(data.times), data.regimen, key=key)
    return inference_data(
        {k: chained(v) for k, v in population.items()}, chained(samples["theta"]), spec, data,
        sample_stats=sample_stats, log_likelihood=unflat(loglik),
        predictive=unflat(pp.observations), attrs=attrs,
    )  # fmt: skip
