"""Mechanistic twins: a fixed-step ODE solver and one simulate / fit / forecast protocol.

A model is a :class:`MechanisticModel` (``param_names``, ``init_state``, ``rhs``, ``observe`` and
an optional ``event``); :func:`simulate` runs one individual over a time grid with inputs
piecewise constant per interval, :func:`fit` finds its posterior mode and Laplace covariance,
:func:`forecast` gives predictive means and intervals. ``jax.vmap`` over individuals for a cohort.
Models: :mod:`twinjax.mechanistic.models` (compartmental PK) and ``twinjax.physiology.UVA_PADOVA``.
The solver (:mod:`twinjax.mechanistic.ode`) imports nothing of twinjax.
"""

from twinjax.mechanistic.fit import Fit, Prior, fit, neg_log_posterior
from twinjax.mechanistic.forecast import Prediction, forecast, posterior_draws
from twinjax.mechanistic.ode import odeint_fixed, rk4, rk4_step
from twinjax.mechanistic.protocol import MechanisticModel, on_grid, simulate, step

__all__ = [
    "Fit",
    "MechanisticModel",
    "Prediction",
    "Prior",
    "fit",
    "forecast",
    "neg_log_posterior",
    "odeint_fixed",
    "on_grid",
    "posterior_draws",
    "rk4",
    "rk4_step",
    "simulate",
    "step",
]
