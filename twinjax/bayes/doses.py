"""A dosing regimen: :class:`Doses` and the route codes, shared by the one-compartment
(:mod:`twinjax.bayes.pk_routes`) and the multi-compartment (:mod:`twinjax.bayes.pk_compartments`)
models and the tables that read doses (:mod:`twinjax.bayes.tables`)."""

from typing import NamedTuple

from jaxtyping import ArrayLike, Float

ROUTES = ("bolus", "oral", "infusion")  # route codes 0, 1, 2
BOLUS, ORAL, INFUSION = range(3)


class Doses(NamedTuple):
    """One individual's doses (or a cohort's, with a leading individuals axis); padding doses
    have amount 0.

    ``route`` None: every dose is oral. The model then runs the oral closed form alone, the same
    computation as :func:`~twinjax.bayes.pk.oral_one_compartment` (an oral-only cohort read from
    files reproduces the built-in fits draw for draw).
    """

    times: Float[ArrayLike, "*batch doses"]
    amounts: Float[ArrayLike, "*batch doses"]
    route: Float[ArrayLike, "*batch doses"] | None = None  # 0 bolus, 1 oral, 2 infusion
    duration: Float[ArrayLike, "*batch doses"] | None = None  # infusion duration, else 0
    # steady state (NONMEM SS=1 / II): 1 where the dose repeats every ``ii`` since long before;
    # None: no steady-state dose (see twinjax.bayes.pk_compartments)
    ss: Float[ArrayLike, "*batch doses"] | None = None
    ii: Float[ArrayLike, "*batch doses"] | None = None
