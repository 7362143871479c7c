"""The aligned cohort: dense per-individual arrays on a regular time grid, with masks."""

from dataclasses import dataclass, field, replace

import numpy as np
from jaxtyping import Bool, Float, Int


@dataclass(frozen=True)
class Cohort:
    """A cohort aligned to a regular grid (host-side numpy arrays).

    ``values[i, t, f]`` is stream ``f`` of individual ``i`` at grid time ``t0[i] + t * step``;
    ``mask`` is True where it was observed (missing values are 0 and never enter a loss);
    ``interventions[i, t, u]`` is the total amount of kind ``u`` given in that grid cell;
    grid steps at or beyond ``lengths[i]`` are padding (mask False, interventions 0).
    ``truth`` optionally holds noise-free values (synthetic cohorts only).
    """

    values: Float[np.ndarray, "individuals time features"]
    mask: Bool[np.ndarray, "individuals time features"]
    interventions: Float[np.ndarray, "individuals time kinds"]
    static: Float[np.ndarray, "individuals covariates"]
    lengths: Int[np.ndarray, " individuals"]
    subject_ids: tuple = ()
    variables: tuple = ()
    intervention_kinds: tuple = ()
    static_names: tuple = ()
    t0: Float[np.ndarray, " individuals"] | None = None
    step: float = 1.0
    truth: Float[np.ndarray, "individuals time features"] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        n, t, f = self.values.shape
        if self.mask.shape != (n, t, f):
            raise ValueError(f"mask shape {self.mask.shape} != values shape {(n, t, f)}")
        if self.interventions.shape[:2] != (n, t):
            raise ValueError(f"interventions shape {self.interventions.shape} != {(n, t, '*')}")
        if self.static.shape[0] != n or self.lengths.shape != (n,):
            raise ValueError("static and lengths must have one row per individual")

    @property
    def n_individuals(self) -> int:
        return self.values.shape[0]

    @property
    def n_steps(self) -> int:
        return self.values.shape[1]

    @property
    def n_features(self) -> int:
        return self.values.shape[2]

    def valid(self) -> Bool[np.ndarray, "individuals time"]:
        """True on grid steps inside each individual's observed span."""
        return np.arange(self.n_steps)[None, :] < self.lengths[:, None]

    def take(self, idx) -> "Cohort":
        """The sub-cohort of individuals ``idx`` (an index array or slice)."""
        idx = np.arange(self.n_individuals)[idx]
        pick = lambda a: None if a is None else a[idx]
        return replace(
            self,
            values=self.values[idx],
            mask=self.mask[idx],
            interventions=self.interventions[idx],
            static=self.static[idx],
            lengths=self.lengths[idx],
            subject_ids=tuple(self.subject_ids[i] for i in idx) if self.subject_ids else (),
            t0=pick(self.t0),
            truth=pick(self.truth),
        )

    def coarsen(self, factor: int) -> "Cohort":
        """The cohort on a grid ``factor`` times coarser: the values (and ``truth``) at every
        ``factor``-th grid time (readings at those instants, as a sensor would report them),
        the interventions summed over the ``factor`` cells each coarse cell spans (totals stay
        totals; the last coarse cell sums the cells the record still has). ``factor`` must
        divide ``n_steps - 1``, so that the last grid time is kept.

        >>> import numpy as np
        >>> c = Cohort(values=np.arange(7.0).reshape(1, 7, 1), mask=np.ones((1, 7, 1), bool),
        ...            interventions=np.ones((1, 7, 1)), static=np.zeros((1, 0)),
        ...            lengths=np.array([7]), step=3.0)
        >>> d = c.coarsen(3)
        >>> d.values[0, :, 0].tolist(), d.interventions[0, :, 0].tolist(), d.step, d.lengths
        ([0.0, 3.0, 6.0], [3.0, 3.0, 1.0], 9.0, array([3]))
        """
        if factor < 1 or (self.n_steps - 1) % factor:
            raise ValueError(
                f"cannot coarsen {self.n_steps} grid steps by {factor}: the factor must divide "
                f"{self.n_steps - 1} (the span between the first and last grid time)"
            )
        n, t, k = self.interventions.shape
        keep = slice(0, t, factor)
        padded = np.concatenate(
            [self.interventions, np.zeros((n, -t % factor, k), self.interventions.dtype)], 1
        )
        summed = padded.reshape(n, -1, factor, k).sum(2)
        return replace(
            self,
            values=self.values[:, keep],
            mask=self.mask[:, keep],
            interventions=summed,
            lengths=(self.lengths - 1) // factor + 1,
            step=self.step * factor,
            truth=None if self.truth is None else self.truth[:, keep],
        )
