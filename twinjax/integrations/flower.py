"""Any twinjax federated algorithm as a Flower app: a ``ClientApp`` and a ``ServerApp``.

The algorithm is the one :func:`~twinjax.federated.federated_averaging` builds, unchanged: its
``parts`` (client update, aggregator, server optimizer, sampling, weighting, simulation) are
split at the place where a round crosses the network.

- :class:`TwinjaxStrategy` (server, a Flower message ``Strategy``; :func:`server_app` runs
  it): draws the round exactly as ``FederatedAlgorithm.apply`` does (round key
  ``fold_in(key, r)`` as in :func:`~twinjax.federated.run_rounds`, the sampled client ids,
  their assigned epochs, which of them the simulation drops, their aggregation weights and
  keys), sends each live client one ``train`` message, then runs the aggregator (robust rules,
  DP noise and adaptive clipping, secure aggregation's unmasking), the server optimizer and the
  client-state write-back on the replies.
- :func:`client_app`: a client runs the client update on its OWN data only (``offset = 0``, its
  own sample count) with the key and epochs the server assigned, encodes its update as the
  aggregator asks (secure aggregation masks it on the client) and replies.

Clients are twinjax client ids ``0 .. num_clients-1``, read from the node's ``partition-id``
(set by the simulation engine, or ``flower-supernode --node-config "partition-id=3"``). Before
round 1 the server asks every node for its id and sample count (a ``query`` message): the
counts drive ``size`` sampling and ``samples`` weighting as ``ClientData.count`` does.

With the same seed this computes what twinjax's serial backend computes: the same sampled
clients, keys and weights, one client's work on its own data (its samples start at offset 0,
which the local shuffle never sees), and the same aggregation; only float rounding differs.

What maps and what does not:
- per-client state (SCAFFOLD's control variates, FedPer's personal layers) stays with the
  server, as in twinjax, and travels in the client's train message and reply;
- Differential privacy (``dp_mean``): clipping and noise run in the server's aggregate, as in
  twinjax (central DP, trusted server); :func:`~twinjax.federated.epsilon` accounts for it;
- secure aggregation: twinjax's ``secure_mean`` runs as written (the client masks its update,
  the server only sums masked vectors), but its pairwise seeds come from the round key the
  server holds, so against the server it is a simulation. Flower's SecAgg+ is the real
  protocol (key agreement, secret-shared seeds, dropout recovery): :func:`secaggplus_server_app`
  with ``client_app(..., secaggplus=True)`` aggregates through it
  (``flwr.server.workflow.SecAggPlusWorkflow`` and ``flwr.client.mod.secaggplus_mod``, Flower's
  legacy ``FitIns`` workflow). It computes a weighted mean of clipped, quantized updates, so it
  stands for ``mean()``/``secure_mean()`` with stateless clients; robust rules (they need each
  update), ``screen``'s check, server-side DP noise and adaptive clipping (they need the
  updates' norms) and client state (SCAFFOLD, personal layers) do not map to it;
- the simulation's dropouts and stragglers are drawn by the server (a real dropout is a
  missing reply: the round is then refused, see :class:`TwinjaxStrategy`); its Byzantine
  attackers are the clients it names, corrupting their own updates in their ``ClientApp``.

Flower is an optional dependency (``pip install "twinjax[flower]"``): this module imports it at
its top, and no other twinjax module imports this one.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from uuid import uuid4

try:
    import flwr.compat.common.recorddict_compat as compat
    from flwr.app import (
        Array,
        ArrayRecord,
        ConfigRecord,
        Context,
        Message,
        MessageType,
        MetricRecord,
        RecordDict,
    )
    from flwr.client.mod import secaggplus_mod
    from flwr.clientapp import ClientApp
    from flwr.common import (
        Code,
        FitIns,
        FitRes,
        Status,
        ndarrays_to_parameters,
        parameters_to_ndarrays,
    )
    from flwr.common.serde import message_from_proto, message_to_proto
    from flwr.server import ServerConfig
    from flwr.server.compat import LegacyContext
    from flwr.server.strategy import Strategy as LegacyStrategy
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import Strategy as FlowerStrategy
    from flwr.supercore.run import Run
    from flwr.supercore.task_identity import TaskIdentity
except ImportError as err:  # flwr absent, or a version without these modules: fail first
    raise ImportError(
        "twinjax.integrations.flower needs Flower 1.42 or later (below 2): "
        'pip install "twinjax[flower]"'
    ) from err

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from twinjax import federated as fl
from twinjax.federated.algorithm import (
    Parts,
    client_update,
    finish_round,
    plan_round,
    round_cohort,
    with_simulation,
)

# (algorithm, initial global params); called once on each side, so it must be deterministic
MakeAlgorithm = Callable[[], tuple[fl.FederatedAlgorithm, Any]]
# a client's own samples (a pytree with a leading samples axis), from its id
LoadData = Callable[[int], Any]

# a slot's fields a client receives (with its key); the whole cohort's when the aggregator encodes
ROW_FIELDS = ("id", "count", "epochs", "weight", "group", "live")


def _parts(algorithm: fl.FederatedAlgorithm) -> Parts:
    if algorithm.parts is None:
        raise ValueError("the algorithm has no parts: build it with federated_averaging(...)")
    return algorithm.parts


def client_round(
    algorithm: fl.FederatedAlgorithm,
    num_clients: int,
    samples: Any,
    shared: dict,
    row: dict,
) -> dict:
    """One client's round on its own ``samples``: its update (encoded for the aggregator), local
    steps and new state. ``shared``: params, client (broadcast state), and for an encoding
    aggregator the round's cohort and key; ``row``: this client's slot."""
    parts = _parts(algorithm)
    fn = client_update(
        with_simulation(parts.client, parts.simulation, num_clients), parts.aggregator
    )
    return fn({**shared, "samples": samples}, {**row, "offset": jnp.int32(0)})


# ---- records: pytrees as numbered arrays, flat dicts as named ones -------------------------


def to_arrays(tree: Any) -> dict[str, np.ndarray]:
    """The leaves of ``tree`` as ``{"0": leaf, "1": ...}`` numpy arrays (tree order)."""
    return {str(i): np.asarray(x) for i, x in enumerate(jax.tree.leaves(tree))}


def from_arrays(arrays: dict[str, np.ndarray], like: Any) -> Any:
    """The inverse of :func:`to_arrays`, shaped as ``like``."""
    leaves, treedef = jax.tree.flatten(like)
    if len(arrays) != len(leaves):
        raise ValueError(f"expected {len(leaves)} arrays, received {len(arrays)}")
    return jax.tree.unflatten(treedef, [jnp.asarray(arrays[str(i)]) for i in range(len(leaves))])


def _record(arrays: dict[str, Any]) -> ArrayRecord:
    return ArrayRecord({k: Array(np.asarray(v)) for k, v in arrays.items()})


def _unrecord(record) -> dict[str, Any]:
    return {k: jnp.asarray(v.numpy()) for k, v in record.items()}


def _tree_record(tree: Any):
    return _record(to_arrays(tree))


def _untree_record(record, like: Any) -> Any:
    return from_arrays({k: v.numpy() for k, v in record.items()}, like)


def _take(tree: Any, i: int) -> Any:
    return jax.tree.map(lambda a: a[i], tree)


# ---- server ---------------------------------------------------------------------------------


@dataclass
class ServerRun:
    """What the server holds between rounds: the twinjax server state and the client map."""

    state: fl.ServerState
    count: Any = None  # samples per client id
    nodes: dict = field(default_factory=dict)  # client id -> Flower node id
    history: list = field(default_factory=list)  # the rounds' metrics


class TwinjaxStrategy(FlowerStrategy):
    """The server side of a twinjax algorithm as a Flower message ``Strategy``: it runs
    ``make()``'s algorithm over ``num_clients`` client nodes (sampling, the clients' keys and
    weights, aggregation, server optimizer), round ``r`` with the key ``fold_in(key, r)`` as
    :func:`~twinjax.federated.run_rounds` does; ``key`` defaults to ``jax.random.key(seed)``.

    Its ``run`` attribute (:class:`ServerRun`) holds the twinjax server state after each round;
    a round whose live clients do not all reply is refused (``RuntimeError``).
    """

    def __init__(
        self,
        make: MakeAlgorithm,
        *,
        num_clients: int,
        seed: int = 0,
        key: Any = None,
        timeout: float = 600.0,
    ) -> None:
        algorithm, params = make()
        parts = _parts(algorithm)
        self.parts, self.params, self.num_clients, self.timeout = (
            parts,
            params,
            num_clients,
            timeout,
        )
        self.key = jax.random.key(seed) if key is None else key
        self._finish = jax.jit(lambda state, rows, sent, key: finish_round(
            parts, state, rows, sent, key, num_clients))  # fmt: skip
        flat = ravel_pytree(params)[0]
        self._update_shape = flat.shape
        self._update_dtype = jnp.uint32 if parts.aggregator.encode is not None else flat.dtype
        self.run = ServerRun(algorithm.init(params, num_clients=num_clients))
        self._round: dict = {}

    def summary(self) -> None:
        logging.getLogger(__name__).info(
            "twinjax strategy: %d clients, %d a round",
            self.num_clients,
            self.parts.clients_per_round,
        )

    def discover(self, grid: Grid) -> None:
        """Each node's client id and sample count (one ``query`` message each), once every
        client node has connected."""
        num_clients, timeout = self.num_clients, self.timeout
        waited = 0.0
        while (connected := len(list(grid.get_node_ids()))) < num_clients:
            if waited > timeout:
                raise TimeoutError(f"{connected} of {num_clients} nodes connected in "
                                   f"{timeout:.0f} s")  # fmt: skip
            time.sleep(0.5)
            waited += 0.5
        asks = [Message(RecordDict({"config": ConfigRecord({})}), node, MessageType.QUERY)
                for node in grid.get_node_ids()]  # fmt: skip
        count = np.zeros(num_clients, np.int32)
        for reply in grid.send_and_receive(asks, timeout=timeout):
            if reply.has_error():
                raise RuntimeError(f"node {reply.metadata.src_node_id}: {reply.error.reason}")
            cid, n = (int(reply.content["config"][k]) for k in ("client-id", "count"))
            if not 0 <= cid < num_clients or cid in self.run.nodes:
                raise ValueError(f"client id {cid} repeated or outside 0..{num_clients - 1}")
            self.run.nodes[cid], count[cid] = reply.metadata.src_node_id, n
        if len(self.run.nodes) != num_clients:
            raise RuntimeError(f"{len(self.run.nodes)} of {num_clients} clients answered")
        self.run.count = jnp.asarray(count)

    def configure_train(self, server_round, arrays, config, grid):
        if self.run.count is None:
            self.discover(grid)
        state = self.run.state
        key = jax.random.fold_in(self.key, state.round)
        rows = plan_round(self.parts, state, self.run.count, key)
        self._round = {"rows": rows, "key": key}
        shared = {"params": _tree_record(state.params),
                  "client": _tree_record(state.clients.shared)}  # fmt: skip
        if self.parts.aggregator.encode is not None:
            shared["cohort"] = _record({k: rows[k] for k in ROW_FIELDS})
            shared["round-key"] = _record({"key": jax.random.key_data(key)})
        messages = []
        for i in np.flatnonzero(np.asarray(rows["live"])).tolist():
            row = {k: rows[k][i] for k in ROW_FIELDS}
            row["key"] = jax.random.key_data(rows["key"][i])
            content = RecordDict({
                **shared, "row": _record(row), "state": _tree_record(_take(rows["state"], i)),
                "config": ConfigRecord({"server-round": server_round, "slot": i,
                                        "num-clients": self.num_clients}),
            })  # fmt: skip
            node = self.run.nodes[int(rows["id"][i])]
            messages.append(Message(content, node, MessageType.TRAIN))
        return messages

    def aggregate_train(self, server_round, replies):
        rows, key = self._round["rows"], self._round["key"]
        sent = self._collect(rows, list(replies))
        self.run.state, metrics = self._finish(self.run.state, rows, sent, key)
        metrics = {k: float(v) for k, v in metrics.items()}
        self.run.history.append({"round": int(self.run.state.round), **metrics})
        return _tree_record(self.run.state.params), MetricRecord(metrics)

    def _collect(self, rows: dict, replies: list) -> dict:
        """The replies stacked in slot order as the round's ``sent``; dropped slots get
        placeholders (zero update, no steps, old state) that the aggregator never reads."""
        live = np.asarray(rows["live"])
        errors = [r.error.reason for r in replies if r.has_error()]
        if errors or len(replies) != int(live.sum()):
            raise RuntimeError(f"{len(replies)} of {int(live.sum())} live clients replied; "
                               f"errors: {errors}")  # fmt: skip
        per = {}
        for r in replies:
            i = int(r.content["config"]["slot"])
            old = _take(rows["state"], i)
            per[i] = {**_unrecord(r.content["out"]),
                      "state": _untree_record(r.content["state"], old)}  # fmt: skip
        slots = [per.get(i) or self._placeholder(rows, i) for i in range(live.shape[0])]
        return jax.tree.map(lambda *xs: jnp.stack(xs), *slots)

    def _placeholder(self, rows: dict, i: int) -> dict:
        return {"update": jnp.zeros(self._update_shape, self._update_dtype),
                "steps": jnp.int32(0), "state": _take(rows["state"], i)}  # fmt: skip

    def configure_evaluate(self, server_round, arrays, config, grid):
        return []  # evaluation is the ServerApp's ``evaluate`` (central)

    def aggregate_evaluate(self, server_round, replies):
        return None


def strategy(
    make: MakeAlgorithm, *, num_clients: int, seed: int = 0, key: Any = None, timeout: float = 600.0
) -> TwinjaxStrategy:
    """A :class:`TwinjaxStrategy` running ``make()``'s algorithm over ``num_clients`` nodes
    (kept for the code that built one this way; the class takes the same arguments)."""
    return TwinjaxStrategy(make, num_clients=num_clients, seed=seed, key=key, timeout=timeout)


def server_app(
    make: MakeAlgorithm,
    *,
    num_clients: int,
    rounds: int,
    seed: int = 0,
    key: Any = None,
    evaluate: Callable[[Any], dict] | None = None,
    done: Callable[[ServerRun], None] | None = None,
    timeout: float = 600.0,
):
    """A Flower ``ServerApp`` running ``rounds`` rounds of ``make()``'s algorithm.

    The run config (``pyproject.toml`` ``[tool.flwr.app.config]`` or ``flwr run
    --run-config``) may override ``num-server-rounds`` and ``seed``.

    Args:
        make: ``() -> (algorithm, initial params)``, deterministic (clients call it too).
        num_clients: the client population (client ids ``0..num_clients-1``).
        rounds: rounds to run.
        seed: the base key's seed (round ``r`` uses ``fold_in(key(seed), r)``).
        key: the base key itself (instead of ``seed``; a run config ``seed`` still wins).
        evaluate: ``evaluate(params) -> dict`` of scalars, run on the server before round 1
            and after every round (Flower's ``evaluate_fn``).
        done: called with the :class:`ServerRun` at the end (e.g. to save the state).
        timeout: seconds to wait for the clients' replies.

    Returns:
        A ``flwr.serverapp.ServerApp``.
    """
    app = ServerApp()

    @app.main()
    def main(grid, context) -> None:
        cfg = context.run_config
        base = jax.random.key(int(cfg["seed"])) if "seed" in cfg else key
        s = TwinjaxStrategy(make, num_clients=num_clients, seed=seed, key=base, timeout=timeout)
        like = s.run.state.params

        def central(server_round, arrays):
            if evaluate is None:
                return None
            values = evaluate(_untree_record(arrays, like))
            return MetricRecord({k: float(v) for k, v in values.items()})

        s.start(grid, _tree_record(like), num_rounds=int(cfg.get("num-server-rounds", rounds)),
                timeout=timeout, evaluate_fn=central)  # fmt: skip
        if done is not None:
            done(s.run)

    return app


def secaggplus_server_app(
    make: MakeAlgorithm,
    *,
    num_clients: int,
    rounds: int,
    seed: int = 0,
    key: Any = None,
    num_shares: float = 1.0,
    reconstruction_threshold: float = 0.7,
    clipping_range: float = 1.0,
    quantization_range: int = 2**22,
    done: Callable[[ServerRun], None] | None = None,
    timeout: float = 600.0,
):
    """A ``ServerApp`` aggregating through Flower's SecAgg+ (Bell et al. 2020): the server
    learns only the weighted mean of the clients' updates, never one update.

    It runs ``make()``'s rounds as :func:`server_app` does (same sampling, keys, weights and
    server optimizer) for algorithms whose aggregate is the weighted mean (``mean()`` or
    ``secure_mean()``, with or without ``screen``'s non-finite check, which SecAgg+ cannot run)
    and whose clients keep no state. SecAgg+ clips each update to ``clipping_range`` and
    quantizes it to ``quantization_range`` levels, so the result equals twinjax's up to about
    ``2 * clipping_range / quantization_range`` per coordinate. The clients are
    :func:`client_app` ``(..., secaggplus=True)``; ``num_shares`` and
    ``reconstruction_threshold`` are SecAgg+'s (fractions of the round's clients).
    """
    app = ServerApp()

    @app.main()
    def main(grid, context) -> None:
        cfg = context.run_config
        base = jax.random.key(int(cfg["seed"])) if "seed" in cfg else key
        s = TwinjaxStrategy(make, num_clients=num_clients, seed=seed, key=base, timeout=timeout)
        if jax.tree.leaves(s.run.state.clients):
            raise ValueError("SecAgg+ returns only the mean update: clients cannot keep state")
        s.discover(grid)
        max_weight = float(np.asarray(s.run.count).max())
        workflow = DefaultWorkflow(fit_workflow=SecAggPlusWorkflow(
            num_shares, reconstruction_threshold, max_weight=max_weight,
            clipping_range=clipping_range, quantization_range=quantization_range,
            timeout=timeout))  # fmt: skip
        rounds_ = int(cfg.get("num-server-rounds", rounds))
        workflow(grid, LegacyContext(context, ServerConfig(num_rounds=rounds_),
                                     SecAggPlusStrategy(s)))  # fmt: skip
        if done is not None:
            done(s.run)

    return app


class SecAggPlusStrategy(LegacyStrategy):
    """The rounds of a :class:`TwinjaxStrategy` (``server``: its sampling, keys, weights, server
    optimizer and state) in Flower's legacy ``FitIns`` workflow, which SecAgg+ runs in: it sends
    each live client its slot and receives only the weighted mean of their updates.

    ``server`` must already know its clients (:meth:`TwinjaxStrategy.discover`).
    """

    def __init__(self, server: TwinjaxStrategy) -> None:
        self.server = server
        self.rows: dict = {}
        self._unravel = ravel_pytree(server.params)[1]

    def initialize_parameters(self, client_manager):
        return ndarrays_to_parameters([np.asarray(a) for a in jax.tree.leaves(self.server.params)])

    def configure_fit(self, server_round, parameters, client_manager):
        run = self.server.run
        state = run.state
        key_r = jax.random.fold_in(self.server.key, state.round)
        self.rows = rows = plan_round(self.server.parts, state, run.count, key_r)
        proxies = client_manager.all()
        leaves = [np.asarray(a) for a in jax.tree.leaves(state.params)]
        out = []
        for i in np.flatnonzero(np.asarray(rows["live"])).tolist():
            conf = {k: rows[k][i].item() for k in ROW_FIELDS}
            conf["weight"] = int(rows["weight"][i])
            conf["key"] = np.asarray(jax.random.key_data(rows["key"][i])).tobytes()
            conf["num-clients"] = self.server.num_clients
            node = run.nodes[int(rows["id"][i])]
            out.append((proxies[str(node)], FitIns(ndarrays_to_parameters(leaves), conf)))
        return out

    def aggregate_fit(self, server_round, results, failures):
        if failures or not results:
            raise RuntimeError(f"SecAgg+ round {server_round} failed: {failures}")
        mean = jnp.asarray(parameters_to_ndarrays(results[0][1].parameters)[0])
        run = self.server.run
        state = run.state
        grads = jax.tree.map(jnp.negative, self._unravel(mean))
        optimizer = self.server.parts.server_optimizer
        updates, opt = optimizer.update(grads, state.opt_state, state.params)
        new = optax.apply_updates(state.params, updates)
        run.state = state._replace(params=new, opt_state=opt, round=state.round + 1)
        live = int(np.asarray(self.rows["live"]).sum())
        run.history.append({"round": int(run.state.round), "clients_live": live})
        leaves = [np.asarray(a) for a in jax.tree.leaves(new)]
        return ndarrays_to_parameters(leaves), {"clients_live": live}

    def configure_evaluate(self, server_round, parameters, client_manager):
        return []

    def aggregate_evaluate(self, server_round, results, failures):
        return None, {}

    def evaluate(self, server_round, parameters):
        return None


# ---- client ---------------------------------------------------------------------------------


def _padded(samples: Any, count: int) -> Any:
    """Samples padded with zeros to the next power of two (fewer distinct shapes to compile;
    local SGD never reads past ``count``)."""
    size = 1 << max(count - 1, 0).bit_length()
    return jax.tree.map(
        lambda a: jnp.concatenate([a, jnp.zeros((size - count, *a.shape[1:]), a.dtype)]), samples
    )


# what a worker process builds once (algorithm, compiled round, each client's samples): Flower's
# simulation engine pickles the app with every message, so it cannot live in the app
_CACHE: dict = {}


def _name(fn: Callable) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


@dataclass(frozen=True)
class ClientHandler:
    """The client side: answers ``query`` (client id and sample count) and ``train`` (one round
    of the client update on the client's own samples). Plain data, so it pickles."""

    make: MakeAlgorithm
    load_data: LoadData

    def _setup(self, context) -> tuple[dict, int, Any, int]:
        cache = _CACHE.setdefault((_name(self.make), _name(self.load_data)), {})
        if "algorithm" not in cache:
            algorithm, params = self.make()
            shared, one = _parts(algorithm).client.init(params)
            cache.update(algorithm=algorithm, like=(params, shared, one))
            cache["round"] = jax.jit(partial(client_round, algorithm), static_argnums=0)
            plain = algorithm._replace(parts=_parts(algorithm)._replace(aggregator=fl.mean()))
            cache["plain-round"] = jax.jit(partial(client_round, plain), static_argnums=0)
        cid = int(context.node_config["partition-id"])
        if cid not in cache:
            samples = self.load_data(cid)
            count = int(jax.tree.leaves(samples)[0].shape[0])
            cache[cid] = (_padded(samples, count), count)
        return cache, cid, *cache[cid]

    def query(self, msg: Message, context: Context) -> Message:
        _, cid, _, count = self._setup(context)
        return Message(RecordDict({"config": ConfigRecord({"client-id": cid, "count": count})}),
                       reply_to=msg)  # fmt: skip

    def train(self, msg: Message, context: Context) -> Message:
        cache, cid, samples, count = self._setup(context)
        params_like, shared_like, one_like = cache["like"]
        c = msg.content
        row = _unrecord(c["row"])
        if int(row["id"]) != cid or int(row["count"]) != count:
            raise ValueError(f"client {cid} ({count} samples) got the slot of client "
                             f"{int(row['id'])} ({int(row['count'])} samples)")  # fmt: skip
        row["key"] = jax.random.wrap_key_data(row["key"])
        row["state"] = _untree_record(c["state"], one_like)
        shared = {"params": _untree_record(c["params"], params_like),
                  "client": _untree_record(c["client"], shared_like)}  # fmt: skip
        if "cohort" in c:
            shared["cohort"] = round_cohort(_unrecord(c["cohort"]))
            shared["key"] = jax.random.wrap_key_data(_unrecord(c["round-key"])["key"])
        out = cache["round"](int(c["config"]["num-clients"]), samples, shared, row)
        content = RecordDict({
            "out": _record({"update": out["update"], "steps": out["steps"]}),
            "state": _tree_record(out["state"]),
            "config": ConfigRecord({"slot": int(c["config"]["slot"])}),
        })  # fmt: skip
        return Message(content, reply_to=msg)


def _fitins_train(handler: ClientHandler, msg: Message, context: Context) -> Message:
    """``train`` under Flower's ``secaggplus_mod``: the slot travels in a legacy ``FitIns``; the
    reply is the plain update (the mod weights, clips, quantizes and masks it) and its weight."""
    cache, cid, samples, count = handler._setup(context)
    params_like, _, _ = cache["like"]
    fitins = compat.recorddict_to_fitins(msg.content, keep_input=True)
    cfg = fitins.config
    if int(cfg["id"]) != cid or int(cfg["count"]) != count:
        raise ValueError(f"client {cid} ({count} samples) got the slot of client {cfg['id']}")
    row = {k: jnp.asarray(cfg[k]) for k in ROW_FIELDS}
    row["key"] = jax.random.wrap_key_data(jnp.asarray(np.frombuffer(cfg["key"], np.uint32)))
    row["state"] = {}
    leaves = parameters_to_ndarrays(fitins.parameters)
    params = from_arrays({str(i): a for i, a in enumerate(leaves)}, params_like)
    shared = {"params": params, "client": {}}
    out = cache["plain-round"](int(cfg["num-clients"]), samples, shared, row)
    res = FitRes(Status(Code.OK, ""), ndarrays_to_parameters([np.asarray(out["update"])]),
                 int(cfg["weight"]), {"steps": int(out["steps"])})  # fmt: skip
    return Message(compat.fitres_to_recorddict(res, keep_input=True), reply_to=msg)


def client_app(make: MakeAlgorithm, load_data: LoadData, *, secaggplus: bool = False):
    """A Flower ``ClientApp``: the node whose config says ``partition-id = k`` is client ``k``
    and runs the client update of ``make()``'s algorithm on ``load_data(k)``, its own samples.

    ``make`` and ``load_data`` must be importable functions (module-level), since Flower's
    simulation engine pickles the app for its worker processes.

    Args:
        make: the server's ``() -> (algorithm, initial params)``.
        load_data: ``client id -> samples`` (a pytree with a leading samples axis).

        secaggplus: the client side of :func:`secaggplus_server_app` (Flower's SecAgg+).

    Returns:
        A ``flwr.clientapp.ClientApp`` answering ``query`` and ``train`` messages.
    """
    handler = ClientHandler(make, load_data)
    app = ClientApp()
    app.query()(handler.query)
    if secaggplus:
        app.train(mods=[secaggplus_mod])(partial(_fitins_train, handler))
    else:
        app.train()(handler.train)
    return app


# ---- in-process engine --------------------------------------------------------------------


def run_local(server, client, *, num_clients: int, run_config: dict | None = None) -> None:
    """Runs a ``ServerApp`` against ``num_clients`` nodes of a ``ClientApp`` in this process,
    one message at a time (no Ray): the same app objects and messages as
    ``flwr.simulation.run_simulation``, for tests and debugging. Every message is
    serialized to Flower's wire format (protobuf) and back on its way, in both directions.
    """
    grid = LocalGrid(client, num_clients)
    context = Context(run_id=0, node_id=1, node_config={}, state=RecordDict(),
                      run_config=dict(run_config or {}))  # fmt: skip
    names = ("_task_id", "_run_id", "_node_id")
    saved = [getattr(TaskIdentity, n) for n in names]
    for n, v in zip(names, (0, 0, 1), strict=True):  # what a SuperLink sets for its ServerApp
        setattr(TaskIdentity, n, v)
    try:
        server(grid, context)
    finally:
        for n, v in zip(names, saved, strict=True):
            setattr(TaskIdentity, n, v)


def _wire(message: Message) -> Message:
    """``message`` serialized to Flower's wire format (protobuf) and back."""
    return message_from_proto(message_to_proto(message))


class LocalGrid(Grid):
    """A Flower ``Grid`` with ``num_clients`` nodes that are calls of the ``ClientApp``
    ``client`` in this process (node ``k``'s config: ``partition-id = k``)."""

    def __init__(self, client: ClientApp, num_clients: int) -> None:
        self._client, self._replies = client, {}
        self._run = Run.create_empty(0)
        self._nodes = {
            1000 + k: Context(run_id=0, node_id=1000 + k, state=RecordDict(), run_config={},
                              node_config={"partition-id": k, "num-partitions": num_clients})
            for k in range(num_clients)
        }  # fmt: skip

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> list[int]:
        return list(self._nodes)

    def push_messages(self, messages) -> list[str]:
        ids = []
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = str(uuid4())
            msg.metadata.__dict__["_src_node_id"] = 1
            msg = _wire(msg)
            reply = self._client(msg, self._nodes[msg.metadata.dst_node_id])
            reply.metadata.__dict__["_src_node_id"] = msg.metadata.dst_node_id
            self._replies[msg.metadata.message_id] = _wire(reply)
            ids.append(msg.metadata.message_id)
        return ids

    def pull_messages(self, message_ids) -> list[Message]:
        return [self._replies.pop(i) for i in message_ids if i in self._replies]

    def send_and_receive(self, messages, *, timeout=None) -> list[Message]:
        return self.pull_messages(self.push_messages(messages))
