"""Recurrent twins: one individual's probabilistic forecaster as pure functions over a pytree,
with its training objectives and its predictions over a cohort (``jax.vmap`` over individuals).

A twin's network is the built-in cell with attention (:class:`TwinSpec`) or a flax module,
linen or nnx (:class:`FlaxSpec`); both end with the same Gaussian head.
"""

from twinjax.twins.attention import AttentionParams
from twinjax.twins.cells import Cell, Dense, RecurrentParams, get_cell
from twinjax.twins.flax_net import FlaxParams, FlaxSpec
from twinjax.twins.model import (
    Params,
    Spec,
    TwinParams,
    TwinSpec,
    apply,
    forecast,
    gaussian_nll,
    init_params,
    nll_loss,
)
from twinjax.twins.objectives import predict_at, segment_nll, segment_targets, window_loss
from twinjax.twins.options import ModelConfig
from twinjax.twins.predict import cohort_predictions
from twinjax.twins.rollout import path_moments, rollout_nll, sample_paths, segment_rollouts
from twinjax.twins.stream import StreamState, stream_init, stream_step

__all__ = [
    "AttentionParams",
    "Cell",
    "Dense",
    "FlaxParams",
    "FlaxSpec",
    "ModelConfig",
    "Params",
    "RecurrentParams",
    "Spec",
    "StreamState",
    "TwinParams",
    "TwinSpec",
    "apply",
    "cohort_predictions",
    "forecast",
    "gaussian_nll",
    "get_cell",
    "init_params",
    "nll_loss",
    "path_moments",
    "predict_at",
    "rollout_nll",
    "sample_paths",
    "segment_nll",
    "segment_rollouts",
    "segment_targets",
    "stream_init",
    "stream_step",
    "window_loss",
]
