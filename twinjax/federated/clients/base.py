"""The client update pair: what one client does with the global parameters in a round."""

from collections.abc import Callable
from typing import Any, NamedTuple

from jaxtyping import Array, Int, PRNGKeyArray

Params = Any


class ClientTask(NamedTuple):
    """One client's data and the work the server assigned it this round."""

    samples: Any  # every client's samples (flat layout of :class:`ClientData`)
    offset: Int[Array, ""]
    count: Int[Array, ""]
    epochs: Int[Array, ""]  # 0: no work (dropped out or padding)
    id: Int[Array, ""]


class ClientOutput(NamedTuple):
    """What a client sends back: its parameter change, the local steps it ran, its new state."""

    delta: Params
    steps: Int[Array, ""]
    state: Any


class ClientStates(NamedTuple):
    """Client state kept by the server: ``clients`` holds one row per client of the population;
    every entry of ``shared`` is broadcast to the clients and kept equal to the population mean
    of the ``clients`` entry of the same name (SCAFFOLD's server control variate)."""

    shared: dict
    clients: dict


class ClientUpdate(NamedTuple):
    """A client update as an ``(init, update)`` pair.

    ``init(params) -> (shared, client)``: the broadcast state and the state of one client
    before round 0 (empty dicts for a stateless client). ``update(params, shared, client,
    task, key) -> ClientOutput``: one client's round, for ONE client (the round maps it over
    the sampled clients). ``key`` is the client's key of the round.
    """

    init: Callable[[Params], tuple[dict, dict]]
    update: Callable[[Params, dict, dict, ClientTask, PRNGKeyArray], ClientOutput]
