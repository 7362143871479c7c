"""twinjax: per-individual probabilistic digital twins in JAX.

Subpackages: ``twinjax.data`` (cohort tables to aligned arrays), ``twinjax.twins`` (neural twins),
``twinjax.train`` (population training and personalization), ``twinjax.bayes`` (Bayesian twins),
``twinjax.abm`` (agent-based simulation), ``twinjax.federated`` (federated training) and
``twinjax.eval`` (metrics and plots), ``twinjax.bundle`` (saved twins: forecast, personalize,
update), and ``twinjax.Twins`` the estimator over them all (:mod:`twinjax.estimator`). This
module imports none of them, so ``import twinjax`` is cheap; :func:`load` imports
``twinjax.bundle`` when called.
"""

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    __version__ = version("twinjax")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0+unknown"


def __getattr__(name):
    if name == "Twins":  # the estimator imports JAX and the pipeline: only when asked for
        from twinjax.estimator import Twins

        return Twins
    raise AttributeError(f"module 'twinjax' has no attribute {name!r}")


def load(path: str | Path):
    """The twins saved by a run (its directory or ``model/`` folder): a ``TwinBundle``."""
    from twinjax.bundle import load as _load

    return _load(path)


__all__ = ["Twins", "__version__", "load"]
