"""The mechanistic glucose twin that the identification produces and the bolus advisor uses.

A :class:`MechanisticTwin` is a set of posterior draws of each patient's UVa/Padova parameters
(:mod:`twinjax.physiology`), identified from the records alone (CGM, insulin, carbohydrates):
the estimated parameters vary over the draws, the others are held at fixed values the twin
states. ``jax.vmap`` over patients and draws to simulate it with :func:`twinjax.physiology.simulate`.
"""

from typing import NamedTuple

import jax
from jaxtyping import Array, Float

from twinjax.physiology import PatientParams


class MechanisticTwin(NamedTuple):
    """Posterior draws of every patient's parameters.

    theta: ``[patients, draws, len(PARAM_NAMES)]`` in :data:`~twinjax.physiology.PARAM_NAMES`
      order (the ``estimated`` entries vary over draws; the rest are fixed).
    x0: ``[patients, draws, 13]``, each draw's state at the records' time 0.
    noise_sd: ``[patients, draws]``, the CGM measurement-error scale (mg/dL) of each draw.
    subject_ids: the patients, in order.
    estimated: the names of the estimated parameters.
    noise_ar: ``[patients, draws]``, the per-reading AR(1) coefficient of the CGM residual
      (``noise_sd`` is then its stationary SD), or None for independent errors.
    """

    theta: Float[Array, "patients draws params"]
    x0: Float[Array, "patients draws 13"]
    noise_sd: Float[Array, "patients draws"]
    subject_ids: tuple[str, ...]
    estimated: tuple[str, ...]
    noise_ar: Float[Array, "patients draws"] | None = None

    def patient(self, i: int) -> PatientParams:
        """Patient ``i``'s draws as a :class:`~twinjax.physiology.PatientParams` with a leading
        draws axis (``jax.vmap`` over it)."""
        return PatientParams(self.theta[i], self.x0[i])

    def take(self, rows) -> "MechanisticTwin":
        """The twin of the patients ``rows`` (indices)."""
        ids = tuple(self.subject_ids[int(r)] for r in jax.numpy.atleast_1d(jax.numpy.asarray(rows)))
        ar = None if self.noise_ar is None else self.noise_ar[rows]
        return self._replace(
            theta=self.theta[rows], x0=self.x0[rows], noise_sd=self.noise_sd[rows],
            subject_ids=ids, noise_ar=ar,
        )  # fmt: skip
