"""The model options (the app's ``model`` group): which twin family the default experiment
fits and the recurrent twin's architecture (:class:`twinjax.twins.TwinSpec`, or a flax module
through :class:`twinjax.twins.FlaxSpec`). A plain dataclass; the app registers it with Hydra
(``twinjax.config``) and :func:`twinjax.pipeline.twin_spec` builds the spec from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class ModelConfig:
    # which twin the default experiment fits: "recurrent" (LSTM/GRU twins), "auto" (the family
    # that forecasts the cohort best on its own visits, judged against the baselines:
    # experiments/auto_twin.py) or null: auto for data=files without data.interventions,
    # recurrent for files with interventions and for the synthetic cohort
    family: Literal["auto", "recurrent"] | None = None
    # auto: the candidate forecasters (twinjax.eval.panel.KNOWN: BASELINES, the default, and
    # "pooled", a linear AR of the changes learnt across subjects), the seasonal period in
    # visits (0: none), the visits per subject held out for the skill table and the rolling
    # origins (last visits of each subject) the choice and the calibration are measured on
    candidates: list[str] = field(
        default_factory=lambda: ["last", "drift", "seasonal", "mixed", "ets", "arima"]
    )
    period: int = 0  # seasonal period in visits (0: none)
    holdout: int = 2  # visits per subject held out for the skill table
    origins: int = 3  # rolling origins the choice and the calibration are measured at
    cell: Literal["lstm", "gru"] = "lstm"  # the recurrent cell
    hidden: int = 32  # width of the recurrent cell
    attention: bool = True  # causal temporal attention over the cell's past states
    attention_dim: int = 16  # width of the attention's queries and keys
    min_scale: float = 1e-3  # floor of the predictive SD (normalized units)
    # >0: recompute the recurrent cell's activations in chunks of this many steps in the backward
    # pass (jax.checkpoint): memory for compute; the same values. 0: keep them all.
    remat_chunk: int = 0
    # training windows through the cell: "scan" (one lax.scan per window, autodiff),
    # "sequence" (an individual's windows together, time-major, hand-written backward pass;
    # LSTM only; the same function, faster and smaller: README "Scaling out") or "auto":
    # sequence for an LSTM without remat_chunk, else scan
    layout: Literal["auto", "scan", "sequence"] = "auto"
    # dtype of the LSTM carries the sequence layout keeps for the backward pass: "bfloat16"
    # halves their memory; the forward pass, the state and the gradients' arithmetic stay
    # float32, the gradient is approximate (its measured error: README "Scaling out")
    residuals: Literal["float32", "bfloat16"] = "float32"
    # the network before the Gaussian head: "cells" (the cell and attention above) or "flax",
    # a flax module (linen or nnx) mapping an individual's window [time, d_in] to features
    # [time, width] causally: model.module names its class, "package.module:ClassName", built
    # with model.module_kwargs (model.module_kwargs={features:16}); README "A flax module as
    # a twin's network"
    network: Literal["cells", "flax"] = "cells"
    module: str | None = None  # network=flax: the module's class, "package.module:ClassName"
    module_kwargs: Any = None  # a mapping (null: none); Any, so that an override replaces it
