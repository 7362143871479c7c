"""A replay-style baseline twin: maximum a posteriori identification, patient by patient.

ReplayBG identifies each patient on its own, with fixed population priors, and replays a point
of the posterior. This baseline does the same for the parameters of
:func:`~twinjax.glucose.mechanistic.fit_mechanistic` (:data:`~.mechanistic.ESTIMATED`,
the other parameters at the same leave-one-out reference values, the same AR(1) CGM likelihood)
with no hierarchy: each patient's log deviation from the reference has the fixed prior
``Normal(0, PRIOR_SD)``, with ``PRIOR_SD`` the marginal scale of the hierarchical prior
(``sqrt(0.5^2 + 0.5^2)`` for ``mu ~ Normal(0, 0.5)`` plus ``omega ~ HalfNormal(0.5)`` times a
unit normal), and the posterior mode is found by Adam on an ``AutoDelta`` guide (SVI with a
point-mass guide is MAP estimation). Patients share no latent, so fitting them together is
fitting each alone.
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from jaxtyping import Array, Key
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoDelta
from numpyro.infer.initialization import init_to_median

from twinjax.glucose.mechanistic import (
    ESTIMATED,
    cgm_likelihood,
    deviated_theta,
    fasting_paths,
    reference_theta,
)
from twinjax.glucose.records import Records, steady_state
from twinjax.glucose.twin import MechanisticTwin
from twinjax.physiology import PARAM_NAMES

PRIOR_SD = float(np.sqrt(0.5**2 + 0.5**2))


def map_model(ref, basal, carbs, insulin, cgm, *, idx, step, substeps=1):
    """Each patient alone: ``dev ~ Normal(0, PRIOR_SD)`` per estimated parameter, the AR(1)
    noise's ``sigma`` and ``phi`` with the hierarchical model's priors."""
    n, k = ref.shape[0], len(idx)
    with numpyro.plate("patients", n):
        dev = numpyro.sample("dev", dist.Normal(0.0, PRIOR_SD).expand([k]).to_event(1))
        sigma = numpyro.sample("sigma", dist.LogNormal(jnp.log(10.0), 0.7))
        phi = numpyro.sample("phi", dist.Uniform(0.0, 0.999))
    g = fasting_paths(
        deviated_theta(ref, dev, idx, basal), basal, carbs, insulin, step=step, substeps=substeps
    )
    cgm_likelihood(g, cgm, sigma, phi)


def fit_map(
    key: Key[Array, ""],
    recs: Records,
    *,
    fit_days: float = 2.0,
    estimated: tuple[str, ...] = ESTIMATED,
    steps: int = 800,
    lr: float = 0.02,
    substeps: int = 1,
) -> tuple[MechanisticTwin, np.ndarray]:
    """Each patient's MAP parameters from its first ``fit_days`` days.

    Returns:
        A :class:`MechanisticTwin` with one draw per patient (the mode) and the loss per step.
    """
    ref = jnp.asarray(reference_theta(recs.subject_ids, recs.bw), jnp.float32)
    head = recs.head(fit_days)
    idx = np.array([PARAM_NAMES.index(p) for p in estimated])
    basal = jnp.asarray(head.basal)
    args = (ref, basal, jnp.asarray(head.carbs), jnp.asarray(head.insulin), jnp.asarray(head.cgm))
    opts = {"idx": idx, "step": int(recs.step), "substeps": substeps}
    guide = AutoDelta(map_model, init_loc_fn=init_to_median(num_samples=15))
    svi = SVI(map_model, guide, optax.adam(lr), Trace_ELBO())
    result = svi.run(key, steps, *args, progress_bar=False, **opts)
    mode = guide.median(result.params)
    theta = deviated_theta(ref, mode["dev"], idx, basal)[:, None]  # [patients, 1, params]
    x0 = jax.vmap(jax.vmap(steady_state))(theta, basal[:, None])
    twin = MechanisticTwin(theta, x0, mode["sigma"][:, None], recs.subject_ids, tuple(estimated),
                           noise_ar=mode["phi"][:, None])  # fmt: skip
    return twin, np.asarray(result.losses)
