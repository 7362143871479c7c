"""Inference for Bayesian twins: NUTS with vectorized chains, and SVI with plate subsampling.

Progress follows :mod:`twinjax.runtime.progress`: NumPyro's bar on a terminal; elsewhere (a log
file, CI) one log line when a fit starts and one when it ends, never carriage-return bars.
"""

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import optax
from numpyro.distributions.transforms import biject_to
from numpyro.infer import MCMC, NUTS, SVI, Trace_ELBO, init_to_median
from numpyro.infer.autoguide import AutoLowRankMultivariateNormal, AutoNormal

from twinjax.bayes.diagnostics import Diagnostics, diagnose
from twinjax.runtime.progress import on_terminal
from twinjax.runtime.scalars import current

log = logging.getLogger(__name__)

# NUTS' statistics per transition, kept as ArviZ's sample_stats (``arviz.from_numpyro`` names)
EXTRA_FIELDS = ("diverging", "energy", "num_steps", "accept_prob", "adapt_state.step_size",
                "potential_energy")  # fmt: skip


class NutsResult(NamedTuple):
    samples: dict[str, np.ndarray]  # [chains, draws, ...]
    diagnostics: Diagnostics  # over the population-level sites listed in ``diagnose_sites``
    num_divergences: int
    diverging: np.ndarray | None = None  # [chains, draws]: whether each transition diverged
    # [chains, draws] each, ArviZ's names: diverging, energy, tree_depth, n_steps, step_size,
    # acceptance_rate, lp (the log density)
    sample_stats: dict[str, np.ndarray] | None = None


def sample_stats(extra: dict) -> dict[str, np.ndarray]:
    """NumPyro's extra fields ``[chains, draws]`` under ArviZ's ``sample_stats`` names (as
    ``arviz.from_numpyro``: ``lp`` is minus the potential energy, the tree depth
    ``log2(n_steps) + 1``)."""
    out = {"diverging": np.asarray(extra["diverging"], bool)}
    out["energy"] = np.asarray(extra["energy"])
    n_steps = np.asarray(extra["num_steps"])
    out["n_steps"], out["tree_depth"] = n_steps, np.log2(np.maximum(n_steps, 1)).astype(int) + 1
    out["step_size"] = np.asarray(extra["adapt_state.step_size"])
    out["acceptance_rate"] = np.asarray(extra["accept_prob"])
    out["lp"] = -np.asarray(extra["potential_energy"])
    return out


@dataclass
class Nuts:
    """NUTS's settings, the keywords of :func:`run_nuts` (``run_nuts(..., **asdict(nuts))``)
    with its defaults; an experiment nests one (``experiment.nuts.num_warmup=...``) with its own."""

    num_warmup: int = 500  # warm-up (adaptation) steps per chain
    num_samples: int = 500  # draws kept per chain
    num_chains: int = 4  # chains, run vectorized in one program
    target_accept: float = 0.9  # target acceptance probability (higher: smaller steps)
    max_tree_depth: int = 10  # maximum tree depth (at most 2**depth leapfrog steps a draw)
    dense_mass: bool = False  # adapt a dense mass matrix (diagonal otherwise)

    def kwargs(self) -> dict:
        """The settings as :func:`run_nuts`'s keywords."""
        return dataclasses.asdict(self)


def run_nuts(
    model,
    key: jax.Array,
    *model_args,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 4,
    target_accept: float = 0.9,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    diagnose_sites: tuple[str, ...] | None = None,
    progress: bool = False,
    **model_kwargs,
) -> NutsResult:
    """Runs ``num_chains`` NUTS chains vectorized in one program; always computes diagnostics.

    Diagnostics cover ``diagnose_sites`` (default: every sampled site except ``z``) and warn
    (:class:`~twinjax.bayes.diagnostics.DiagnosticsWarning`) when bad.

    Args:
        model: a NumPyro model; called as ``model(*model_args, **model_kwargs)``.
        key: PRNG key.
        *model_args: positional arguments of the model.
        num_warmup: warmup (adaptation) steps per chain.
        num_samples: kept draws per chain.
        num_chains: chains, run vectorized in one program.
        target_accept: NUTS target acceptance probability.
        max_tree_depth: NUTS maximum tree depth.
        dense_mass: adapt a dense mass matrix (correlated posteriors) instead of a diagonal one.
        diagnose_sites: sites that enter the diagnostics.
        progress: report progress: NumPyro's bar on a terminal, two log lines elsewhere.
        **model_kwargs: keyword arguments of the model.

    Returns:
        A :class:`NutsResult`: draws ``[chains, draws, ...]`` per site, diagnostics (BFMI from
        the energy too), the number of divergent transitions and NUTS' statistics per
        transition (``sample_stats``).

    Example:
        >>> import jax, jax.numpy as jnp, numpyro, numpyro.distributions as dist
        >>> def model(y):
        ...     mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
        ...     numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)
        >>> y = jnp.array([0.8, 1.2, 1.0])
        >>> import warnings
        >>> with warnings.catch_warnings():  # so few draws that the diagnostics warn
        ...     warnings.simplefilter("ignore")
        ...     fit = run_nuts(model, jax.random.key(0), y, num_warmup=100, num_samples=100,
        ...                    num_chains=2)
        >>> fit.samples["mu"].shape, bool(abs(fit.samples["mu"].mean() - 1.0) < 0.5)
        ((2, 100), True)
    """
    kernel = NUTS(
        model,
        target_accept_prob=target_accept,
        max_tree_depth=max_tree_depth,
        dense_mass=dense_mass,
        init_strategy=init_to_median(num_samples=15),
    )
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method="vectorized",
        progress_bar=progress and on_terminal(),
    )
    logged = progress and not on_terminal()
    if logged:
        log.info("NUTS: %d chains, %d warmup + %d draws each", num_chains, num_warmup, num_samples)
    start = time.perf_counter()
    mcmc.run(key, *model_args, extra_fields=EXTRA_FIELDS, **model_kwargs)
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    stats = sample_stats(mcmc.get_extra_fields(group_by_chain=True))
    divergences = int(stats["diverging"].sum())
    if logged:
        log.info("NUTS: done in %.1fs; %d divergent; step size %.3g; mean tree depth %.1f",
                 time.perf_counter() - start, divergences, float(stats["step_size"].mean()),
                 float(stats["tree_depth"].mean()))  # fmt: skip
    if diagnose_sites is None:
        diagnose_sites = tuple(k for k in samples if k not in ("z", "theta", "theta_random"))
    diag = diagnose({k: samples[k] for k in diagnose_sites}, divergences, energy=stats["energy"])
    if (writer := current()) is not None:  # the app's curves: diagnostics once, at the end
        worst = {"r_hat_max": max(diag.r_hat.values(), default=np.nan),
                 "ess_bulk_min": min(diag.ess_bulk.values(), default=np.nan)}  # fmt: skip
        writer.scalars({"divergences": divergences, **worst}, num_samples, prefix="nuts")
    return NutsResult(samples, diag, divergences, stats["diverging"], stats)


class SviResult(NamedTuple):
    guide: Any
    params: dict
    losses: np.ndarray


GUIDES = {"normal": AutoNormal, "lowrank": AutoLowRankMultivariateNormal}


def run_svi(
    model,
    key: jax.Array,
    *model_args,
    guide: Literal["normal", "lowrank"] = "normal",
    steps: int = 2000,
    lr: float = 1e-2,
    progress: bool = False,
    **model_kwargs,
) -> SviResult:
    """Fits an autoguide (``"normal"``: mean-field, ``"lowrank"``: low-rank multivariate normal).

    Pass ``subsample_size=`` through ``model_kwargs`` to minibatch individuals; NumPyro rescales the
    likelihood by ``N / subsample_size``. AutoNormal supports a subsampled individuals plate; the
    low-rank guide flattens all latents and needs the full plate.

    Args:
        model: a NumPyro model; called as ``model(*model_args, **model_kwargs)``.
        key: PRNG key.
        *model_args: positional arguments of the model.
        guide: the autoguide family.
        steps: optimization steps.
        lr: Adam learning rate.
        progress: report progress: NumPyro's bar on a terminal, two log lines elsewhere.
        **model_kwargs: keyword arguments of the model (e.g. ``subsample_size``).

    Returns:
        An :class:`SviResult`: the guide, its fitted parameters and the ELBO loss per step.

    Example:
        >>> import jax, jax.numpy as jnp, numpyro, numpyro.distributions as dist
        >>> def model(y):
        ...     mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
        ...     numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)
        >>> y = jnp.array([0.8, 1.2, 1.0])
        >>> fit = run_svi(model, jax.random.key(0), y, steps=200, lr=0.1)
        >>> draws = svi_draws(fit, jax.random.key(1), y, num_samples=400)
        >>> fit.losses.shape, bool(abs(draws["mu"].mean() - 1.0) < 0.5)
        ((200,), True)
    """
    if guide not in GUIDES:
        raise ValueError(f"unknown guide {guide!r}; choose one of {tuple(GUIDES)}")
    if guide == "lowrank" and model_kwargs.get("subsample_size") is not None:
        raise ValueError("the low-rank guide cannot subsample individuals; use guide='normal'")
    auto = GUIDES[guide](model, init_loc_fn=init_to_median(num_samples=15))
    svi = SVI(model, auto, optax.adam(lr), Trace_ELBO())
    logged = progress and not on_terminal()
    if logged:
        log.info("SVI (%s guide): %d steps", guide, steps)
    start = time.perf_counter()
    result = svi.run(
        key, steps, *model_args, progress_bar=progress and on_terminal(), **model_kwargs
    )
    if logged:
        log.info("SVI: done in %.1fs; final loss %.4g", time.perf_counter() - start,
                 float(result.losses[-1]) if steps else float("nan"))  # fmt: skip
    if (writer := current()) is not None:
        writer.series("svi/neg_elbo", result.losses)
    return SviResult(auto, result.params, np.asarray(result.losses))


def auto_normal_draws(guide, params, key, num_samples) -> dict:
    """Draws from a fitted AutoNormal straight from its full-size per-site parameters.

    (``sample_posterior`` replays the model with the subsample size it was fitted with, which
    mismatches the full-size local parameters after plate subsampling.)
    """
    out = {}
    for i, (site, proto) in enumerate(guide.prototype_trace.items()):
        if proto["type"] != "sample" or proto["is_observed"]:
            continue
        loc, scale = params[f"{site}_{guide.prefix}_loc"], params[f"{site}_{guide.prefix}_scale"]
        eps = jax.random.normal(jax.random.fold_in(key, i), (num_samples, *jnp.shape(loc)))
        out[site] = biject_to(proto["fn"].support)(loc + scale * eps)
    return out


def svi_draws(
    result: SviResult, key: jax.Array, *model_args, num_samples: int = 500, **model_kwargs
) -> dict[str, np.ndarray]:
    """Posterior draws (``[num_samples, ...]``) of every latent and deterministic site under the
    fitted guide, on the full cohort (no subsampling).

    Args:
        result: the fit from :func:`run_svi`.
        key: PRNG key.
        *model_args: positional arguments of the model (the full cohort).
        num_samples: number of draws.
        **model_kwargs: keyword arguments of the model (``subsample_size`` is dropped).

    Returns:
        Draws of every site except the observations ``y``, by site name.
    """
    if "subsample_size" in model_kwargs:
        model_kwargs = {**model_kwargs, "subsample_size": None}
    k_latent, k_rest = jax.random.split(key)
    if isinstance(result.guide, AutoNormal):
        latents = auto_normal_draws(result.guide, result.params, k_latent, num_samples)
    else:
        latents = result.guide.sample_posterior(
            k_latent, result.params, *model_args, sample_shape=(num_samples,), **model_kwargs
        )
    rest = numpyro.infer.Predictive(result.guide.model, posterior_samples=latents, parallel=True)
    out = {**latents, **rest(k_rest, *model_args, **model_kwargs)}
    return {k: np.asarray(v) for k, v in out.items() if k != "y"}
