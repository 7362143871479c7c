"""The UVa/Padova model through the mechanistic twin protocol
(:class:`twinjax.mechanistic.MechanisticModel`).

``params`` is one patient's :class:`~twinjax.physiology.params.PatientParams`, the state a
:class:`~twinjax.physiology.uva_padova.PatientState`, the grid's intervals are minutes and the
inputs per minute ``(meal grams announced, insulin U/min)``. The event is the minute's meal
bookkeeping (:func:`~twinjax.physiology.uva_padova.eat`), the right-hand side moves only the 13
compartments, the observation is subcutaneous glucose (mg/dL). ``mechanistic.simulate(UVA_PADOVA,
p, jnp.arange(T + 1.0), (meals, insulin))[0][1:]`` is :func:`~twinjax.physiology.simulate`'s
glucose (``tests/physiology/test_model.py``); ``simulate`` itself stays the fast path (it unpacks
the parameters once, not in every RK4 stage).
"""

import jax
import jax.numpy as jnp

from twinjax.mechanistic.protocol import MechanisticModel
from twinjax.physiology.params import PARAM_NAMES, PatientParams
from twinjax.physiology.uva_padova import (
    PatientState,
    eat,
    glucose,
    initial_state,
    minute_dynamics,
    unpack,
)


def _event(state: PatientState, p: PatientParams, u) -> PatientState:
    return eat(state, u[0])


def _rhs(state: PatientState, p: PatientParams, u) -> PatientState:
    dx = minute_dynamics(state, u[1], unpack(p.theta))
    return jax.tree.map(jnp.zeros_like, state)._replace(x=dx)


UVA_PADOVA = MechanisticModel(
    param_names=PARAM_NAMES,
    init_state=initial_state,
    rhs=_rhs,
    observe=lambda state, p: glucose(state.x, p),
    event=_event,
)
