"""The Bayesian mechanistic twin's fit as ArviZ InferenceData, named by parameter and patient.

Groups (:func:`twinjax.bayes.idata.svi_inference_data`: the guide's draws as one chain, no
``sample_stats``, since SVI has no energy, tree depth or divergences):

- ``posterior``: ``mu``, ``omega`` over ``parameter`` (the estimated UVa/Padova parameters),
  ``z`` and ``theta`` (each patient's value of each estimated parameter, in the simulator's
  units) over ``subject`` and ``parameter``, the CGM residual's ``sigma`` and ``phi`` over
  ``subject``;
- ``log_likelihood`` and ``posterior_predictive``: each CGM reading ``y`` of the fitted days
  over ``subject`` and ``time`` (minutes from the start of the records), from the model
  itself (:func:`twinjax.bayes.idata.observed_sites`). The residual is AR(1), so a reading's
  density and predictive draw are given the reading before it (one-step conditional, as the
  model's likelihood factorizes);
- ``observed_data``: ``y``; ``constant_data``: the recorded ``carbs`` (g) and ``insulin``
  (U/min) over ``subject`` and ``minute``, ``basal`` and ``bw`` over ``subject``, and the prior
  centre ``reference`` of each estimated parameter over ``subject`` and ``parameter``.
"""

import jax
import numpy as np

from twinjax.bayes.idata import observed_sites, svi_inference_data
from twinjax.glucose.mechanistic import MechanisticFit, glucose_model
from twinjax.glucose.twin import MechanisticTwin
from twinjax.physiology import PARAM_NAMES

LATENT = ("mu", "omega", "z", "sigma", "phi")
DIMS = {"mu": ["parameter"], "omega": ["parameter"], "z": ["subject", "parameter"],
        "theta": ["subject", "parameter"], "sigma": ["subject"], "phi": ["subject"],
        "y": ["subject", "time"], "carbs": ["subject", "minute"], "insulin": ["subject", "minute"],
        "basal": ["subject"], "bw": ["subject"], "reference": ["subject", "parameter"]}  # fmt: skip


def mechanistic_inference_data(
    twin: MechanisticTwin, fit: MechanisticFit, *, key: jax.Array, attrs: dict | None = None
):
    """The ``arviz.InferenceData`` of :func:`~twinjax.glucose.fit_mechanistic`'s fit
    (module docstring): its draws (those the twin holds), with every fitted CGM reading's log
    density and predictive draw under each.

    Args:
        twin: the fitted twin (patients, estimated parameters, their values by draw).
        fit: the fit that made it (the guide's draws and the model's arguments).
        key: PRNG key of the predictive draws.
        attrs: attributes recorded in every group.
    """
    draws = {k: fit.draws[k] for k in LATENT}
    loglik, pp = observed_sites(glucose_model, draws, *fit.model_args, key=key,
                                **fit.model_kwargs)  # fmt: skip
    ref, basal, carbs, insulin, cgm = (np.asarray(a) for a in fit.model_args)
    idx, step = np.asarray(fit.model_kwargs["idx"]), int(fit.model_kwargs["step"])
    theta = np.swapaxes(np.asarray(twin.theta)[..., idx], 0, 1)  # [draws, patients, k]
    coords = {"subject": list(twin.subject_ids), "parameter": list(twin.estimated),
              "time": np.arange(cgm.shape[1]) * step, "minute": np.arange(carbs.shape[1])}  # fmt: skip
    return svi_inference_data(
        draws | {"theta": theta}, observed_data={"y": cgm}, log_likelihood=loglik,
        posterior_predictive=pp, coords=coords, dims=DIMS,
        constant_data={"carbs": carbs, "insulin": insulin, "basal": basal,
                       "bw": ref[:, PARAM_NAMES.index("BW")], "reference": ref[:, idx]},
        attrs={"model": "UVa/Padova hierarchical, AR(1) CGM residual", "units": "mg/dL",
               "time": "minutes from the start of the records",
               "log_likelihood": "each reading given the one before it (AR(1) residual)"}
        | (attrs or {}),
    )  # fmt: skip
