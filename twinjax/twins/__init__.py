"""Recurrent twins: one individual's probabilistic forecaster as pure functions over a pytree."""

from twinjax.twins.model import TwinSpec, apply, forecast, gaussian_nll, init_params, nll_loss

__all__ = ["TwinSpec", "apply", "forecast", "gaussian_nll", "init_params", "nll_loss"]
