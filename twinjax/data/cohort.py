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
