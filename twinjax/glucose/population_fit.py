"""Identification of the glucose twins under the population prior, by full-rank variational
inference per patient.

Every patient's latent is one standard-normal vector ``z`` (:data:`LATENT` entries): the 23
whitened parameter weights of :mod:`twinjax.glucose.population` and two for the CGM residual,
an AR(1) per patient with stationary SD ``sigma = 10 exp(0.7 z_s)`` mg/dL (a LogNormal(log 10,
0.7) prior) and coefficient ``phi = 0.999 Phi(z_p)`` (Uniform(0, 0.999)), as in the old twin, but
read every :data:`THIN`-th reading (every 15 minutes on the Dexcom's 3-minute grid, from the
first). The Dexcom noise model is an AR(1) every 15 minutes spline-interpolated in between, so the
3-minute readings' residual is smooth: an AR(1) fitted to it (coefficient 0.98) puts about 3.5
times too little noise power at the meal responses' time scales (periods near two hours), which
made the old twin's intervals too narrow. Every fifth reading, the residual of the seed-0 cohort
is an AR(1) again (coefficient 0.71, the sensor's 0.7; a second lag adds -0.09 and changes the
innovation SD by 0.3%). The twin's ``noise_ar`` is the coefficient per reading,
``phi^(1 / THIN)``, for the forecasts that step one reading at a time. The patients' priors do not share unknowns, so their posteriors are independent and
each is fitted on its own (``jax.vmap`` over patients, one optimizer state each).

The guide is a full-rank multivariate normal ``N(loc, L L^T)`` per patient over ``z``: the
parameters trade off in pairs and groups (``kp2`` with ``kp1``/``kp3``, ``ka2`` with ``kd``, the
meal's rates with each other), and a low-rank-plus-diagonal guide over the whole cohort (the old
twin's) cannot hold the per-patient correlations that marginalizing them needs. The ELBO gradient
is the "sticking the landing" estimator (the guide's own density evaluated with its parameters
held fixed), whose variance vanishes where the guide matches the posterior; Adam's step size
decays from ``lr`` to ``lr / 10`` on a cosine. It starts from the Laplace approximation at the
best mode that Adam finds from several starts, the population mean and draws from the patient's
prior, all vmapped in one program (the posterior has local optima: from the mean alone, the
search stopped below the density of the true parameters for some simulated patients; a guide
started at the prior with a small scale took more steps than the fit can afford, and an
estimator with the guide's density at fixed parameters diverged in float32 when ``L`` became
ill-conditioned). ``scripts/nuts_glucose.py``
checks the guide's spread against NUTS on short windows: on three patients' first 12 hours its
posterior SDs were 0.44-1.19 times NUTS' (median 0.90; lowest for Vm0, kabs, d, k1, kp3).
"""

import logging
import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.special import ndtr
from jaxtyping import Array, Float, Key

from twinjax.data import Cohort
from twinjax.glucose.population import FREE, Population, population, theta_of
from twinjax.glucose.records import Records, glucose_path, records, steady_state
from twinjax.glucose.twin import MechanisticTwin

log = logging.getLogger(__name__)

LATENT = len(FREE) + 2  # the free parameters' weights, then log sigma and phi
THIN = 5  # the likelihood reads every THIN-th reading (module docstring)
_ADAM = optax.scale_by_adam()


class PatientData(NamedTuple):
    """One patient's fitted records (``minutes = (cells - 1) * step``)."""

    basal: Float[Array, ""]  # U/min, the first period's rate (the fasting state's)
    carbs: Float[Array, " minutes"]
    insulin: Float[Array, " minutes"]
    cgm: Float[Array, " cells"]


def patient_data(recs: Records) -> PatientData:
    """The records as :class:`PatientData` with a leading patients axis."""
    a = lambda x: jnp.asarray(x, jnp.float32)
    return PatientData(a(recs.basal), a(recs.carbs), a(recs.insulin), a(recs.cgm))


def noise_of(z_noise: Float[Array, "2"]) -> tuple[Array, Array]:
    """The residual's stationary SD (mg/dL) and AR(1) coefficient from their latent entries."""
    return 10.0 * jnp.exp(0.7 * z_noise[0]), 0.999 * ndtr(z_noise[1])


def ar1_log_likelihood(cgm, g, sigma, phi) -> Float[Array, ""]:
    """``log p(cgm | g)`` with ``cgm - g`` an AR(1) of stationary SD ``sigma``, coefficient ``phi``."""
    r = cgm - g
    innov = sigma * jnp.sqrt(1.0 - phi**2)
    e = (r[1:] - phi * r[:-1]) / innov
    first = -0.5 * (r[0] / sigma) ** 2 - jnp.log(sigma)
    rest = -0.5 * jnp.sum(e**2) - e.shape[0] * jnp.log(innov)
    return first + rest - 0.5 * cgm.shape[0] * math.log(2 * math.pi)


def patient_theta(pop_i: Population, z: Float[Array, " latent"], basal) -> tuple[Array, Array]:
    """One patient's parameters and fasting state (:func:`steady_state`) for the latent ``z``."""
    theta = theta_of(pop_i, z[: len(FREE)], basal)
    return theta, steady_state(theta, basal)


def log_joint(
    z: Float[Array, " latent"],
    pop_i: Population,
    data: PatientData,
    *,
    step: int,
    substeps: int = 1,
    thin: int = THIN,
) -> Float[Array, ""]:
    """One patient's unnormalized log posterior density of ``z``: the prior plus the AR(1)
    likelihood of every ``thin``-th reading."""
    theta, x0 = patient_theta(pop_i, z, data.basal)
    g = glucose_path(theta, x0, data.carbs, data.insulin, step=step, substeps=substeps)
    sigma, phi = noise_of(z[len(FREE) :])
    prior = -0.5 * jnp.sum(z**2) - 0.5 * z.shape[0] * math.log(2 * math.pi)
    return prior + ar1_log_likelihood(data.cgm[::thin], g[::thin], sigma, phi)


class GuideState(NamedTuple):
    """One patient's full-rank Gaussian guide and its optimizer state: ``L`` is the strict lower
    triangle of ``raw`` plus ``exp`` of its diagonal."""

    loc: Float[Array, " latent"]
    raw: Float[Array, "latent latent"]
    adam: optax.OptState


def scale_tril(raw: Float[Array, "latent latent"]) -> Float[Array, "latent latent"]:
    """The guide's Cholesky factor ``L`` from its unconstrained ``raw``."""
    return jnp.tril(raw, -1) + jnp.diag(jnp.exp(jnp.diag(raw)))


def init(loc: Float[Array, " latent"], scale: float = 0.1) -> GuideState:
    """A guide at ``loc`` with ``L = scale I``."""
    raw = jnp.diag(jnp.full(loc.shape, math.log(scale), loc.dtype))
    return GuideState(loc, raw, _ADAM.init((loc, raw)))


def _negative_elbo(params, key, pop_i, data, *, step, substeps, thin, samples):
    """``-ELBO`` by the reparameterization: draws ``z = loc + L eps`` and the entropy
    ``sum log diag L`` in closed form (up to a constant)."""
    loc, raw = params
    eps = jax.random.normal(key, (samples, loc.shape[0]))
    z = loc + eps @ scale_tril(raw).T
    lp = jax.vmap(lambda zi: log_joint(zi, pop_i, data, step=step, substeps=substeps, thin=thin))(z)
    return -jnp.mean(lp) - jnp.sum(jnp.diag(raw))


def update(state: GuideState, key, pop_i, data, lr, *, step: int, substeps=1, thin=THIN, samples=1):
    """One Adam step of one patient's guide on the ELBO; returns the state and ``-ELBO``."""
    loss, grads = jax.value_and_grad(_negative_elbo)(
        (state.loc, state.raw),
        key,
        pop_i,
        data,
        step=step,
        substeps=substeps,
        thin=thin,
        samples=samples,
    )
    moves, adam = _ADAM.update(grads, state.adam)
    loc, raw = jax.tree.map(lambda p, m: p - lr * m, (state.loc, state.raw), moves)
    return GuideState(loc, raw, adam), loss


def mode_update(state: GuideState, pop_i, data, lr, *, step: int, substeps=1, thin=THIN):
    """One Adam step of the guide's ``loc`` towards the posterior mode; returns the state and
    ``-log p(loc, y)``."""
    neg = lambda z: -log_joint(z, pop_i, data, step=step, substeps=substeps, thin=thin)
    loss, grad = jax.value_and_grad(neg)(state.loc)
    moves, adam = _ADAM.update((grad, jnp.zeros_like(state.raw)), state.adam)
    return GuideState(state.loc - lr * moves[0], state.raw, adam), loss


def laplace(state: GuideState, pop_i, data, *, step: int, substeps=1, thin=THIN) -> GuideState:
    """The guide at ``loc`` with the covariance of the Laplace approximation there: the inverse
    of ``-Hessian log p``, its eigenvalues floored at 1 (the prior's precision; a saddle or a
    flat direction then keeps the prior's spread), and a fresh optimizer state."""
    hess = jax.hessian(lambda z: log_joint(z, pop_i, data, step=step, substeps=substeps, thin=thin))
    h = -hess(state.loc)
    val, vec = jnp.linalg.eigh(0.5 * (h + h.T))
    cov = (vec / jnp.maximum(val, 1.0)) @ vec.T
    chol = jnp.linalg.cholesky(0.5 * (cov + cov.T))
    raw = jnp.tril(chol, -1) + jnp.diag(jnp.log(jnp.diag(chol)))
    return GuideState(state.loc, raw, _ADAM.init((state.loc, raw)))


# the cohort's steps, jitted once at module level
@partial(jax.jit, static_argnames=("step", "substeps", "thin", "samples"))
def _cohort_update(state, keys, pop, data, lr, *, step, substeps, thin, samples):
    one = partial(update, step=step, substeps=substeps, thin=thin, samples=samples)
    return jax.vmap(one, in_axes=(0, 0, 0, 0, None))(state, keys, pop, data, lr)


@partial(jax.jit, static_argnames=("step", "substeps", "thin"))
def _cohort_mode_update(state, pop, data, lr, *, step, substeps, thin):
    """One mode step of every start (axis 1) of every patient (axis 0)."""
    one = partial(mode_update, step=step, substeps=substeps, thin=thin)
    over_starts = jax.vmap(one, in_axes=(0, None, None, None))
    return jax.vmap(over_starts, in_axes=(0, 0, 0, None))(state, pop, data, lr)


@partial(jax.jit, static_argnames=("step", "substeps", "thin"))
def _cohort_start_log_joint(loc, pop, data, *, step, substeps, thin):
    one = partial(log_joint, step=step, substeps=substeps, thin=thin)
    return jax.vmap(jax.vmap(one, in_axes=(0, None, None)))(loc, pop, data)


def start_points(
    key: Key[Array, ""], patients: int, starts: int
) -> Float[Array, "patients starts latent"]:
    """The mode search's starting latents: the population mean (``z = 0``) first, then
    ``starts - 1`` draws from each patient's prior (``z ~ Normal(0, I)``)."""
    draws = jax.random.normal(key, (patients, starts - 1, LATENT))
    return jnp.concatenate([jnp.zeros((patients, 1, LATENT)), draws], axis=1)


def keep_best(state, log_p: Float[Array, "patients starts"]):
    """Each patient's start (axis 1 of every leaf of ``state``) with the highest ``log_p``; a
    non-finite ``log_p`` counts as the lowest. Returns the chosen states and their indices."""
    best = jnp.argmax(jnp.where(jnp.isfinite(log_p), log_p, -jnp.inf), axis=1)
    rows = jnp.arange(log_p.shape[0])
    return jax.tree.map(lambda a: a[rows, best], state), best


@partial(jax.jit, static_argnames=("step", "substeps", "thin"))
def _cohort_laplace(state, pop, data, *, step, substeps, thin):
    return jax.vmap(partial(laplace, step=step, substeps=substeps, thin=thin))(state, pop, data)


class PopulationFit(NamedTuple):
    """The fit behind a twin of :func:`fit_population`: the patients' priors, each patient's
    guide (``loc`` ``[patients, latent]``, ``scale_tril`` ``[patients, latent, latent]``), the
    losses per step and patient, the guide draws of ``z`` the twin holds (its last two
    entries: the residual's ``sigma`` and its AR(1) coefficient per ``thin`` readings), and the
    mode search's starts (their log joints, the one kept)."""

    population: Population
    loc: Float[Array, "patients latent"]
    scale_tril: Float[Array, "patients latent latent"]
    losses: np.ndarray  # [mode_steps + steps, patients]: -log p at loc, then -ELBO
    z: Float[Array, "patients draws latent"]
    start_log_joint: np.ndarray  # [patients, starts]: each start's log p after the mode search
    best: np.ndarray  # [patients]: the start kept


class Guides(NamedTuple):
    """What :func:`fit_guides` returns: every patient's final guide, the losses per step and
    patient (``-log p`` at the kept start's ``loc``, then ``-ELBO``), each start's log joint at
    the end of the mode search and the index of the start kept."""

    state: GuideState
    losses: np.ndarray  # [mode_steps + steps, patients]
    start_log_joint: np.ndarray  # [patients, starts]
    best: np.ndarray  # [patients]


def fit_guides(
    key: Key[Array, ""], pop: Population, data: PatientData, *, step: int, mode_steps: int = 300,
    steps: int = 300, starts: int = 3, mode_lr: float = 0.05, lr: float = 0.01, samples: int = 1,
    substeps: int = 1, thin: int = THIN, progress: bool = False,
) -> Guides:  # fmt: skip
    """Fits every patient's guide: ``mode_steps`` Adam steps of ``loc`` towards the posterior
    mode from each of ``starts`` points (:func:`start_points`: the population mean, then prior
    draws; all of them one vmapped program), the start with the highest log joint kept
    (:func:`keep_best`), the Laplace approximation there (:func:`laplace`), then ``steps`` Adam
    steps of the whole guide on the ELBO (step sizes on a cosine decay to a tenth), the
    likelihood reading every ``thin``-th reading."""
    n = pop.mean.shape[0]
    k_start, k_elbo = jax.random.split(key)
    state = jax.vmap(jax.vmap(init))(start_points(k_start, n, starts))
    opts = {"step": step, "substeps": substeps, "thin": thin}
    mode_losses = []
    schedule = optax.cosine_decay_schedule(mode_lr, max(mode_steps, 1), alpha=0.1)
    for s in range(mode_steps):
        state, loss = _cohort_mode_update(state, pop, data, schedule(s), **opts)
        mode_losses.append(loss)
        if progress:
            _report(progress, "mode", s, mode_steps, loss.min(1))
    start_lp = _cohort_start_log_joint(state.loc, pop, data, **opts)
    state, best = keep_best(state, start_lp)
    losses = list(jnp.stack(mode_losses)[:, jnp.arange(n), best]) if mode_losses else []
    state = _cohort_laplace(state, pop, data, **opts)
    schedule = optax.cosine_decay_schedule(lr, max(steps, 1), alpha=0.1)
    for s in range(steps):
        keys = jax.random.split(jax.random.fold_in(k_elbo, s), n)
        state, loss = _cohort_update(state, keys, pop, data, schedule(s), samples=samples, **opts)
        losses.append(loss)
        _report(progress, "ELBO", s, steps, loss)
    losses = np.asarray(jnp.stack(losses)) if losses else np.zeros((0, n))
    return Guides(state, losses, np.asarray(start_lp), np.asarray(best))


def _report(progress: bool, phase: str, s: int, steps: int, loss) -> None:
    if progress and (s + 1) % max(steps // 5, 1) == 0:
        log.info("population fit, %s: step %d/%d, mean loss %.1f", phase, s + 1, steps,
                 float(jnp.mean(loss)))  # fmt: skip


@partial(jax.jit, static_argnames=("draws",))
def guide_draws(key, state: GuideState, *, draws: int) -> Float[Array, "patients draws latent"]:
    """``draws`` draws of ``z`` from each patient's guide."""
    eps = jax.random.normal(key, (state.loc.shape[0], draws, state.loc.shape[1]))
    chol = jax.vmap(scale_tril)(state.raw)
    return state.loc[:, None] + jnp.einsum("pdl,pkl->pdk", eps, chol)


def twin_of(pop: Population, z, basal, subject_ids, *, thin: int = THIN) -> MechanisticTwin:
    """The twin holding the parameter draws ``z`` ``[patients, draws, latent]`` (its
    ``noise_ar`` per reading: the fitted coefficient per ``thin`` readings to the ``1 / thin``)."""
    one = jax.vmap(patient_theta, in_axes=(None, 0, None))  # over draws
    theta, x0 = jax.vmap(one)(pop, z, jnp.asarray(basal))
    sigma, phi = jax.vmap(jax.vmap(noise_of))(z[..., len(FREE) :])
    return MechanisticTwin(theta=theta, x0=x0, noise_sd=sigma, subject_ids=tuple(subject_ids),
                           estimated=FREE, noise_ar=phi ** (1.0 / thin))  # fmt: skip


def fit_population(
    key: Key[Array, ""],
    cohort: Cohort | Records,
    *,
    fit_days: float = 2.0,
    mode_steps: int = 300,
    steps: int = 300,
    starts: int = 3,
    mode_lr: float = 0.05,
    lr: float = 0.01,
    samples: int = 1,
    draws: int = 64,
    substeps: int = 1,
    thin: int = THIN,
    prior: Population | None = None,
    progress: bool = False,
) -> tuple[MechanisticTwin, PopulationFit]:
    """Identifies every patient's twin, all parameters under the population prior.

    Args:
        key: PRNG key (the ELBO's draws and the posterior draws).
        cohort: the records (a glucose :class:`~twinjax.data.Cohort` or its :class:`Records`).
        fit_days: days fitted, from the start of the records.
        mode_steps: Adam steps towards the posterior mode (:func:`fit_guides`).
        starts: points the mode search starts from (the population mean, then prior draws);
            each patient keeps the one with the highest log joint.
        steps: Adam steps on the ELBO, from the Laplace approximation at the mode.
        mode_lr: Adam's initial step size towards the mode.
        lr: Adam's initial step size on the ELBO.
        samples: draws of ``z`` per ELBO gradient.
        draws: posterior draws kept in the twin.
        substeps: RK4 steps per minute.
        thin: the likelihood reads every ``thin``-th reading, from the first (module docstring).
        prior: the patients' priors (default :func:`~twinjax.glucose.population.population` of
            the records' patients and body weights, each left out of its own).
        progress: log the mean ``-ELBO`` ten times.

    Returns:
        The :class:`MechanisticTwin` (every free parameter varies over draws; ``estimated`` is
        :data:`~twinjax.glucose.population.FREE`) and the :class:`PopulationFit`.
    """
    recs = cohort if isinstance(cohort, Records) else records(cohort)
    pop = population(recs.subject_ids, recs.bw) if prior is None else prior
    if pop.mean.shape[0] != len(recs.subject_ids):
        raise ValueError(f"prior has {pop.mean.shape[0]} patients, records {len(recs.subject_ids)}")
    data = patient_data(recs.head(fit_days))
    k_fit, k_draw = jax.random.split(key)
    fit = fit_guides(k_fit, pop, data, step=int(recs.step), mode_steps=mode_steps, steps=steps,
                     starts=starts, mode_lr=mode_lr, lr=lr, samples=samples, substeps=substeps,
                     thin=thin, progress=progress)  # fmt: skip
    z = guide_draws(k_draw, fit.state, draws=draws)
    twin = twin_of(pop, z, recs.basal, recs.subject_ids, thin=thin)
    chol = jax.vmap(scale_tril)(fit.state.raw)
    return twin, PopulationFit(
        pop, fit.state.loc, chol, fit.losses, z, fit.start_log_joint, fit.best
    )
