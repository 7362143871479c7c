"""The four arrays that travel together: an individual's (or a cohort's) model-ready series."""

from typing import NamedTuple

from jaxtyping import Array, Bool, Float


class Series(NamedTuple):
    """Streams on a regular grid with their masks, interventions and static covariates.

    For one individual the arrays are ``values, mask [time, features]``, ``interventions
    [time, kinds]`` and ``static [covariates]``; a cohort adds a leading individuals axis to
    each (so ``jax.vmap`` over a ``Series`` maps over individuals). ``values`` are zero where
    ``mask`` is False and never enter a loss there; ``interventions[t]`` is what was given at
    step t (in model units).
    """

    values: Float[Array, "*individuals time features"]
    mask: Bool[Array, "*individuals time features"]
    interventions: Float[Array, "*individuals time kinds"]
    static: Float[Array, "*individuals covariates"]

    def at(self, index) -> "Series":
        """The same index (an individual, a slice of individuals) taken from every array."""
        return Series(*(x[index] for x in self))

    def window(self, start: int, stop: int) -> "Series":
        """Steps ``start:stop`` of one individual's series (``static`` unchanged)."""
        return Series(
            self.values[start:stop],
            self.mask[start:stop],
            self.interventions[start:stop],
            self.static,
        )
