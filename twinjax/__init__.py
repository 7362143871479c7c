"""twinjax: per-individual probabilistic digital twins in JAX.

Subpackages: ``twinjax.data`` (cohort tables to aligned arrays), ``twinjax.twins`` (neural twins),
``twinjax.train`` (population training and personalization), ``twinjax.bayes`` (Bayesian twins),
``twinjax.abm`` (agent-based simulation), ``twinjax.federated`` (federated training) and
``twinjax.eval`` (metrics and plots). This module imports none of them, so ``import twinjax`` is cheap.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("twinjax")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
