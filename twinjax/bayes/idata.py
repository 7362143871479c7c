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

For other NumPyro models: :func:`observed_sites` traces the model under each draw and returns
every observed site's pointwise log density and one predictive draw; :func:`mcmc_inference_data`
hands an ``MCMC`` to ``arviz.from_numpyro`` (with its predictive draws);
:func:`svi_inference_data` writes a guide's draws as one chain (``arviz.from_dict``);
:func:`recurrent_inference_data` is the Bayesian recurrent twins' file. :func:`loo_summary` is
PSIS-LOO's verdict on a file (ArviZ's: a Pareto k over its threshold is a problem) and
:func:`diagnose_idata` the MCMC diagnostics of one.
"""

import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Float

from twinjax.bayes.data import TwinData
from twinjax.bayes.diagnostics import Diagnostics, diagnose
from twinjax.bayes.hierarchical import HierarchicalSpec
from twinjax.bayes.predictive import (
    flatten_chains,
    pointwise_log_likelihood,
    posterior_predictive,
)
from twinjax.bayes.recurrent import (
    BayesianTwins,
    posterior_twin_draws,
    predictive_mixture,
    to_sites,
)
from twinjax.data import Cohort, CohortArrays
from twinjax.data.normalize import NormStats, denormalize, denormalize_scale
from twinjax.twins import TwinSpec

OBSERVED_GROUPS = ("observed_data", "constant_data", "log_likelihood", "posterior_predictive")
SVI_NOTE = "none: SVI draws from the fitted guide, not MCMC (no energy, tree depth or divergences)"


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


def observed_sites(model, draws: dict, *model_args, key: jax.Array, **model_kwargs):
    """Every observed site's pointwise log density and one predictive draw under each draw.

    The model is traced with each draw substituted (``jax.lax.map`` over the draws: one compiled
    trace, whose samplers' loops are not batched); an observed
    site's distribution is taken without its ``to_event`` (``Independent``) wrappers, so each
    element of the observation gets its own log density, as ``arviz.loo`` needs. The predictive
    draw comes from that same distribution: for a model whose observation depends on the data
    before it (an AR(1) residual, a chain binomial) it is the one-step conditional predictive.

    Args:
        model: a NumPyro model; called as ``model(*model_args, **model_kwargs)``.
        draws: latent sites ``[draws, ...]`` by name.
        key: PRNG key (the model's own randomness and the predictive draws).

    Returns:
        ``(log_likelihood, predictive)``: two dicts by observed site, ``[draws, *site shape]``.

    Example:
        >>> import numpyro, numpyro.distributions as dist
        >>> def model(y):
        ...     mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
        ...     numpyro.sample("y", dist.Normal(mu, 1.0).expand([3]).to_event(1), obs=y)
        >>> ll, pp = observed_sites(model, {"mu": jnp.zeros(2)}, jnp.zeros(3), key=jax.random.key(0))
        >>> ll["y"].shape, pp["y"].shape, round(float(ll["y"][0, 0]), 4)  # log N(0 | 0, 1)
        ((2, 3), (2, 3), -0.9189)
    """
    from numpyro import handlers
    from numpyro.distributions import Independent

    def one(draw, k):
        k_model, k_pred = jax.random.split(k)
        run = handlers.seed(handlers.substitute(model, data=draw), k_model)
        trace = handlers.trace(run).get_trace(*model_args, **model_kwargs)
        out = {}
        for name, site in trace.items():
            if site["type"] == "sample" and site["is_observed"]:
                fn = site["fn"]
                while isinstance(fn, Independent):
                    fn = fn.base_dist
                out[name] = (
                    fn.log_prob(site["value"]),
                    fn.sample(jax.random.fold_in(k_pred, len(out))),
                )
        return out

    n = len(next(iter(jax.tree.leaves(draws))))
    out = jax.lax.map(lambda a: one(*a), (draws, jax.random.split(key, n)))
    return ({k: np.asarray(v[0]) for k, v in out.items()},
            {k: np.asarray(v[1]) for k, v in out.items()})  # fmt: skip


def svi_inference_data(
    posterior: dict[str, np.ndarray],
    *,
    observed_data: dict[str, np.ndarray],
    log_likelihood: dict[str, np.ndarray] | None = None,
    posterior_predictive: dict[str, np.ndarray] | None = None,
    constant_data: dict[str, np.ndarray] | None = None,
    coords: dict | None = None,
    dims: dict | None = None,
    attrs: dict | None = None,
):
    """An SVI fit's ``arviz.InferenceData`` (``arviz.from_dict``): the guide's draws
    ``[draws, ...]`` as one chain, no ``sample_stats`` (the attrs say so: ``sample_stats``).

    ``log_likelihood`` and ``posterior_predictive`` are ``[draws, ...]`` too; ``dims`` name the
    axes after the draws (e.g. ``{"y": ["subject", "time"]}``), ``coords`` label them.

    Example:
        >>> idata = svi_inference_data(
        ...     {"mu": np.zeros(4)}, observed_data={"y": np.zeros(3)},
        ...     log_likelihood={"y": np.full((4, 3), -1.0)}, dims={"y": ["obs"]},
        ...     coords={"obs": ["a", "b", "c"]})
        >>> idata.posterior["mu"].shape, "sample_stats" in idata.groups(), idata.attrs["inference"]
        ((1, 4), False, 'svi')
    """
    import arviz as az  # a heavy import: only where InferenceData is written

    chain = lambda d: None if d is None else {k: np.asarray(v)[None] for k, v in d.items()}
    attrs = {"inference": "svi", "sample_stats": SVI_NOTE} | (attrs or {})
    return az.from_dict(
        posterior=chain(posterior), log_likelihood=chain(log_likelihood),
        posterior_predictive=chain(posterior_predictive), observed_data=observed_data,
        constant_data=constant_data, coords=coords, dims=dims, attrs=attrs,
    )  # fmt: skip


def mcmc_inference_data(
    mcmc,
    *,
    posterior_predictive: dict | None = None,
    coords: dict | None = None,
    dims: dict | None = None,
    constant_data: dict[str, np.ndarray] | None = None,
    attrs: dict | None = None,
):
    """A NumPyro ``MCMC``'s ``arviz.InferenceData`` by ``arviz.from_numpyro``: posterior,
    ``sample_stats`` (whatever extra fields the run kept: ask for
    :data:`~twinjax.bayes.inference.EXTRA_FIELDS` to get energy, tree depth, step size and
    divergences), pointwise ``log_likelihood`` (NumPyro's), ``observed_data``, and the
    posterior predictive when given.

    Args:
        mcmc: the run.
        posterior_predictive: predictive draws by observed site, ``[chains * draws, ...]`` in
            the order of ``mcmc.get_samples()`` (e.g. from :func:`observed_sites`), or None.
        coords: labels of the sites' axes.
        dims: the sites' axes by name (e.g. ``{"new": ["day"]}``).
        constant_data: the data the model conditions on.
        attrs: attributes recorded in every group.
    """
    import arviz as az

    chains, draws = next(iter(mcmc.get_samples(group_by_chain=True).values())).shape[:2]
    pp = None
    if posterior_predictive is not None:
        pp = {k: np.asarray(v).reshape(chains, draws, *np.shape(v)[1:])
              for k, v in posterior_predictive.items()}  # fmt: skip
    idata = az.from_numpyro(mcmc, log_likelihood=True, coords=coords, dims=dims,
                            constant_data=constant_data, posterior_predictive=pp)  # fmt: skip
    idata.attrs |= {"inference": "nuts"} | (attrs or {})
    for group in idata.groups():
        idata[group].attrs |= idata.attrs
    return idata


def diagnose_idata(idata, var_names: tuple[str, ...]) -> Diagnostics:
    """:func:`~twinjax.bayes.diagnostics.diagnose` of an MCMC InferenceData's ``var_names``
    (ArviZ's R-hat, bulk and tail ESS, MCSE; divergences and BFMI from its ``sample_stats``),
    without warning: list :func:`~twinjax.bayes.diagnostics.problems_of` in the report."""
    stats = idata.sample_stats
    return diagnose(
        {k: idata.posterior[k].values for k in var_names},
        int(stats["diverging"].values.sum()) if "diverging" in stats else 0,
        energy=stats["energy"].values if "energy" in stats else None,
        warn=False,
    )


def loo_summary(idata, var_name: str | None = None) -> tuple[dict, list[str]]:
    """PSIS-LOO of an InferenceData (``arviz.loo``) and its problems: ``elpd_loo``, its ``se``,
    ``p_loo`` and the observations whose Pareto k is over ArviZ's threshold (``good_k``:
    ``min(1 - 1 / log10(draws), 0.7)``; LOO is unreliable there: too few draws, or an
    observation the posterior cannot do without).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> idata = svi_inference_data({"mu": np.zeros(400)}, observed_data={"y": np.zeros(5)},
        ...                            log_likelihood={"y": rng.normal(-1.0, 0.1, (400, 5))})
        >>> info, problems = loo_summary(idata)
        >>> info["pareto_k_bad"], problems
        (0, [])
    """
    import arviz as az

    with warnings.catch_warnings():  # its warning about high Pareto k: counted below instead
        warnings.simplefilter("ignore", UserWarning)
        loo = az.loo(idata, var_name=var_name, pointwise=True)
    k, good = np.asarray(loo.pareto_k), float(loo.good_k)
    bad = int(np.sum(k > good))
    info = {"elpd_loo": float(loo.elpd_loo), "se": float(loo.se), "p_loo": float(loo.p_loo),
            "n_observations": int(k.size), "pareto_k_threshold": good, "pareto_k_bad": bad}  # fmt: skip
    problems = [f"PSIS-LOO: Pareto k > {good:.2f} for {bad} of {k.size} observations (LOO is "
                "unreliable there)"] if bad else []  # fmt: skip
    return info, problems


def recurrent_inference_data(
    fit: BayesianTwins,
    spec: TwinSpec,
    arrays: CohortArrays,
    stats: NormStats,
    cohort: Cohort,
    *,
    key: jax.Array,
    num_samples: int,
    history: int,
    attrs: dict | None = None,
):
    """The ``arviz.InferenceData`` of Bayesian recurrent twins
    (:func:`~twinjax.bayes.recurrent.fit_bayesian_twins`; SVI: one chain, no ``sample_stats``).

    ``posterior``: each random parameter array over ``subject`` (``mean_w``, ``scale_b``, ...:
    the site ``theta/mean/w`` and so on; its own axes after it), the ``num_samples`` draws that
    :func:`~twinjax.bayes.recurrent.predictive_mixture` takes with the same ``key``.
    ``log_likelihood``, ``posterior_predictive`` and ``observed_data`` ``y``: every observed
    point of the training segment on one flat ``observation`` axis (labelled by ``subject``,
    ``stream`` and ``time`` coordinates along it), in data units: the twin's one-step Gaussian
    under each draw given the ``history`` steps before the point, the terms whose average over
    random windows is the model's likelihood. ``constant_data``: ``time`` of each point.

    Args:
        fit: the fitted posterior.
        spec: the twins' architecture.
        arrays: the prepared cohort (its ``train`` segment is scored).
        stats: the values' normalization (data units back from the model's).
        cohort: the cohort in data units (``values``, ``mask``, ids, stream names, times).
        key: PRNG key of the parameter draws (and, folded, of the predictive draws).
        num_samples: draws.
        history: steps of data each one-step prediction sees.
        attrs: attributes recorded in every group.
    """
    draws = to_sites(posterior_twin_draws(fit, key, num_samples))
    mix = predictive_mixture(fit, spec, arrays, arrays.train, key=key, num_samples=num_samples,
                             history=history)  # fmt: skip
    mean = np.stack([np.asarray(denormalize(stats, m)) for m in mix.mean])  # [S, N, K, F]
    scale = np.stack([np.asarray(denormalize_scale(stats, s)) for s in mix.scale])
    rows = np.arange(cohort.n_individuals)[:, None]
    y = np.asarray(cohort.values)[rows, mix.t]
    seen = np.asarray(cohort.mask)[rows, mix.t] & mix.inside[..., None]  # [N, K, F]
    at = lambda a: np.asarray(a)[..., seen]  # [..., N, K, F] -> [..., observation]
    z = np.asarray(jax.random.normal(jax.random.fold_in(key, 1), mean.shape))
    names = {k: k.removeprefix("theta/").replace("/", "_") for k in draws
             if f"{k}_auto_loc" in fit.params}  # fmt: skip
    t0 = np.zeros(len(rows)) if cohort.t0 is None else np.asarray(cohort.t0)
    time = np.broadcast_to((t0[:, None] + mix.t * cohort.step)[..., None], seen.shape)
    prior_sd = {k.removesuffix("_prior_scale"): float(v) for k, v in fit.params.items()
                if k.endswith("_prior_scale")}  # fmt: skip
    idata = svi_inference_data(
        {names[k]: np.asarray(v) for k, v in draws.items() if k in names},
        observed_data={"y": at(y)},
        log_likelihood={"y": at(_normal_logpdf(y, mean, scale))},
        posterior_predictive={"y": at(mean + scale * z)},
        constant_data={"time": at(time)},
        coords={"subject": list(cohort.subject_ids), "observation": np.arange(seen.sum())},
        dims={name: ["subject"] for name in names.values()}
        | {"y": ["observation"], "time": ["observation"]},
        attrs={"model": "Bayesian recurrent twins", "units": "data units",
               "learned_prior_sd": json.dumps(prior_sd),
               "log_likelihood": f"one-step Gaussian of each training point given {history} "
               "steps before it"} | (attrs or {}),
    )  # fmt: skip
    i, _, f = np.nonzero(seen)
    labels = {"subject": ("observation", np.asarray(cohort.subject_ids)[i]),
              "stream": ("observation", np.asarray(cohort.variables)[f])}  # fmt: skip
    groups = [g for g in OBSERVED_GROUPS if g in idata.groups()]
    idata.map(lambda ds: ds.assign_coords(**labels), groups, inplace=True)
    return idata


def _normal_logpdf(y, mean, scale):
    return -0.5 * ((y - mean) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2.0 * np.pi)
