"""Mean models by name, for hierarchical twins configured from options (the command line).

Growth models are polynomials in (optionally centred) time with named coefficients; PK models are
one-compartment (:mod:`twinjax.bayes.pk_routes`), two- or three-compartment
(:mod:`twinjax.bayes.pk_compartments`) with bolus, oral and infusion doses, steady state included.
"""

from collections.abc import Callable
from typing import Literal, NamedTuple

from jaxtyping import Array, Float

from twinjax.bayes.pk_compartments import pk2_iv_predict, pk2_oral_predict, pk3_iv_predict
from twinjax.bayes.pk_routes import iv_cl_v_predict, oral_cl_v_ka_predict, oral_ke_ka_cl_predict

GROWTH_NAMES = ("intercept", "slope", "quadratic")


class MeanModel(NamedTuple):
    predict: Callable  # predict(t, theta, regimen) for one individual
    params: tuple[str, ...]
    kind: Literal["growth", "pk"]
    absorption: bool = False  # has lKa (accepts oral doses)


def quadratic_predict(t: Float[Array, " time"], theta: dict, regimen=None) -> Float[Array, " time"]:
    """``intercept + slope t + quadratic t^2`` (the regimen is ignored)."""
    return theta["intercept"] + t * (theta["slope"] + theta["quadratic"] * t)


def _linear(t: Float[Array, " time"], theta: dict, regimen=None) -> Float[Array, " time"]:
    return theta["intercept"] + theta["slope"] * t


MEAN_MODELS: dict[str, MeanModel] = {
    "linear": MeanModel(_linear, GROWTH_NAMES[:2], "growth"),
    "quadratic": MeanModel(quadratic_predict, GROWTH_NAMES, "growth"),
    "pk_iv": MeanModel(iv_cl_v_predict, ("lCl", "lV"), "pk"),
    "pk_oral": MeanModel(oral_cl_v_ka_predict, ("lCl", "lV", "lKa"), "pk", True),
    "pk_oral_ke": MeanModel(oral_ke_ka_cl_predict, ("lKe", "lKa", "lCl"), "pk", True),
    "pk2_iv": MeanModel(pk2_iv_predict, ("lCl", "lV1", "lQ", "lV2"), "pk"),
    "pk2_oral": MeanModel(pk2_oral_predict, ("lCl", "lV1", "lQ", "lV2", "lKa"), "pk", True),
    "pk3_iv": MeanModel(pk3_iv_predict, ("lCl", "lV1", "lQ2", "lV2", "lQ3", "lV3"), "pk"),
}
MeanModelName = Literal[
    "linear", "quadratic", "pk_iv", "pk_oral", "pk_oral_ke", "pk2_iv", "pk2_oral", "pk3_iv"
]


def mean_model(name: str) -> MeanModel:
    """The mean model called ``name`` (one of :data:`MEAN_MODELS`)."""
    if name not in MEAN_MODELS:
        raise ValueError(f"unknown mean model {name!r}; choose one of {tuple(MEAN_MODELS)}")
    return MEAN_MODELS[name]
