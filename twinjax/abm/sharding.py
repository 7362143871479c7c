"""Agents sharded across devices with ``jax.shard_map``: one block of agents per device.

Each device runs :func:`twinjax.abm.epidemic.step` on its block with ``axis_name`` set:
population totals (infectious counts) are ``psum``-ed, edge lists are split across devices by
edge and their per-agent sums ``psum_scatter``-ed back to the owning blocks, and per-agent
random numbers are drawn per block (:func:`twinjax.abm.agents.agent_uniforms`), so a sharded run
equals a serial run with ``n_blocks`` equal to the number of devices.
"""

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from jaxtyping import PRNGKeyArray

from twinjax.abm.agents import Agents
from twinjax.abm.contacts import Layer
from twinjax.abm.epidemic import EpidemicState, SEIRParams, StepOutput, simulate
from twinjax.abm.interventions import Policy
from twinjax.abm.networks import EdgeList


def agent_mesh(n_devices: int | None = None, axis: str = "agents") -> Mesh:
    """A 1-D mesh over the first ``n_devices`` devices (all by default)."""
    n = n_devices or len(jax.devices())
    return jax.make_mesh((n,), (axis,), devices=jax.devices()[:n])


def pad_edges(edges: EdgeList, multiple: int) -> EdgeList:
    """Pads an edge list with weight-0 edges to a length divisible by ``multiple``."""
    pad = (-edges.src.shape[0]) % multiple
    z = jnp.zeros(pad, jnp.int32)
    return EdgeList(
        jnp.concatenate([edges.src, z]),
        jnp.concatenate([edges.dst, z]),
        jnp.concatenate([edges.weight, jnp.zeros(pad, edges.weight.dtype)]),
    )


def simulate_sharded(
    key: PRNGKeyArray,
    agents: Agents,
    params: SEIRParams,
    layers: tuple[Layer, ...],
    n_steps: int,
    *,
    mesh: Mesh,
    dt: float = 1.0,
    n_groups: int = 1,
    policy: Policy | None = None,
) -> tuple[EpidemicState, StepOutput]:
    """:func:`twinjax.abm.epidemic.simulate` with agents (and edges) split over ``mesh``.

    The number of agents must be divisible by the mesh size. Step outputs are population totals.
    """
    (axis,) = mesh.axis_names
    n_dev = mesh.shape[axis]
    if agents.status.shape[0] % n_dev:
        raise ValueError(f"{agents.status.shape[0]} agents do not split over {n_dev} devices")
    layers = tuple(
        ly._replace(network=pad_edges(ly.network, n_dev))
        if isinstance(ly.network, EdgeList)
        else ly
        for ly in layers
    )
    agent_spec = jax.tree.map(lambda _: P(axis), agents)
    layer_spec = jax.tree.map(lambda _: P(), layers)
    layer_spec = tuple(
        spec._replace(network=EdgeList(P(axis), P(axis), P(axis)))
        if isinstance(ly.network, EdgeList)
        else spec
        for ly, spec in zip(layers, layer_spec, strict=True)
    )

    def local(key, agents, params, layers, policy):
        return simulate(
            key, agents, params, layers, n_steps, dt=dt, n_groups=n_groups, policy=policy,
            axis_name=axis,
        )  # fmt: skip

    state_spec = EpidemicState(agent_spec, P())
    fn = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(P(), agent_spec, P(), layer_spec, P()),
        out_specs=(state_spec, P()),
        check_vma=False,
    )
    args = (key, agents, params, layers, policy)
    specs = (P(), agent_spec, P(), layer_spec, P())
    place = lambda spec, tree: jax.tree.map(
        lambda x: jax.device_put(x, NamedSharding(mesh, spec)), tree
    )
    args = tuple(
        jax.tree.map(lambda sp, t: place(sp, t), spec, arg, is_leaf=lambda x: isinstance(x, P))
        if arg is not None
        else None
        for spec, arg in zip(specs, args, strict=True)
    )
    return jax.jit(fn)(*args)
