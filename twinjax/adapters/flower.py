"""Deprecated: the Flower apps moved to :mod:`twinjax.integrations.flower`.

This alias re-exports that module's names so that code written against
``twinjax.adapters.flower`` keeps working; importing it warns (``DeprecationWarning``), and it
will be removed in a later release. Import ``from twinjax.integrations import flower`` instead.
"""

import warnings

from twinjax.integrations.flower import (
    ROW_FIELDS,
    ClientHandler,
    LoadData,
    LocalGrid,
    MakeAlgorithm,
    SecAggPlusStrategy,
    ServerRun,
    TwinjaxStrategy,
    client_app,
    client_round,
    from_arrays,
    run_local,
    secaggplus_server_app,
    server_app,
    strategy,
    to_arrays,
)

warnings.warn(
    "twinjax.adapters.flower is deprecated: import twinjax.integrations.flower instead",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "ROW_FIELDS",
    "ClientHandler",
    "LoadData",
    "LocalGrid",
    "MakeAlgorithm",
    "SecAggPlusStrategy",
    "ServerRun",
    "TwinjaxStrategy",
    "client_app",
    "client_round",
    "from_arrays",
    "run_local",
    "secaggplus_server_app",
    "server_app",
    "strategy",
    "to_arrays",
]
