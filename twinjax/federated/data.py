"""Client datasets in a ragged, flat layout.

Every client's samples are stored contiguously in one array per leaf, so that clients of very
different sizes cost memory in proportion to their data (no padding to the largest client).
Client ``k`` owns samples ``offset[k] : offset[k] + count[k]``.
"""

from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int

# local shuffles compute ``(a * position) mod count`` in int32; keep it exact
MAX_CLIENT_SAMPLES = 46_000


class ClientData(NamedTuple):
    """Samples of all clients: ``samples`` is a pytree whose leaves have a leading samples axis."""

    samples: Any
    offset: Int[Array, " clients"]
    count: Int[Array, " clients"]

    @property
    def num_clients(self) -> int:
        return int(self.count.shape[0])


def from_client_lists(per_client: list) -> ClientData:
    """Builds :class:`ClientData` from a list with one pytree of arrays per client."""
    import jax

    counts = np.array([len(jax.tree.leaves(c)[0]) for c in per_client], dtype=np.int32)
    if counts.max(initial=0) > MAX_CLIENT_SAMPLES:
        raise ValueError(f"a client has {counts.max()} samples; the limit is {MAX_CLIENT_SAMPLES}")
    offset = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
    samples = jax.tree.map(lambda *leaves: jnp.asarray(np.concatenate(leaves)), *per_client)
    return ClientData(samples=samples, offset=jnp.asarray(offset), count=jnp.asarray(counts))


def client_ids(data: ClientData) -> Int[Array, " samples"]:
    """The owning client of every sample."""
    total = int(data.count.sum())
    return jnp.repeat(jnp.arange(data.num_clients), data.count, total_repeat_length=total)
