"""The twins' validation NLL over a cohort: one definition for the population and personal fits,
evaluated in blocks that fit memory (an evaluation outside a training step is not part of the
step's memory analysis, so it is sized on its own)."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from twinjax.data import CohortArrays
from twinjax.train.devices import rows_that_fit
from twinjax.twins import segment_nll


def max_segment(mask) -> int:
    """The longest segment (validation or test steps) of any individual."""
    return int(np.asarray(mask).sum(1).max())


@partial(jax.jit, static_argnums=(2, 3, 4))
def val_nll(params, arrays: CohortArrays, spec, history, size):
    """Each individual's mean one-step NLL on its validation period ``[N]`` (``params`` with a
    leading individuals axis; forecasts from the ``history`` steps before each target)."""
    start, end = jnp.argmax(arrays.val, 1), jnp.sum(arrays.train | arrays.val, 1)
    fn = partial(segment_nll, spec=spec, size=size, history=history)
    return jax.vmap(lambda p, d, s, e: fn(p, series=d, start=s, end=e))(
        params, arrays.series, start, end
    )


def val_nll_blocks(params, arrays: CohortArrays, spec, history, size, rows: int):
    """:func:`val_nll` over blocks of ``rows`` individuals (0: all at once); the last block is
    the last ``rows`` individuals, so every call has one compiled shape."""
    n = arrays.n_individuals
    if not rows or rows >= n:
        return val_nll(params, arrays, spec, history, size)
    # on one device first: slicing rows of arrays sharded over several CPU devices is an eager
    # all-gather, which can stall in XLA's rendezvous on a busy host (the process aborts)
    params, arrays = jax.device_put((params, arrays), jax.local_devices()[0])
    out, done = [], 0
    while done < n:
        lo = min(done, n - rows)
        part = slice(lo, lo + rows)
        val = val_nll(jax.tree.map(lambda x, p=part: x[p], params), arrays.take(part), spec,
                       history, size)  # fmt: skip
        # one block at a time: dispatched together, the CPU ran blocks side by side (12.9 GB
        # peak at 4,096 individuals with 1,220-individual blocks sized for 5.3 GB)
        out.append(jax.block_until_ready(val)[done - lo :])
        done = lo + rows
    return jnp.concatenate(out)


def validation_rows(pop_params, arrays: CohortArrays, spec, history, size, chunk, fraction) -> int:
    """Individuals per validation-NLL call that fit ``fraction`` of a device's free memory
    (0: a whole chunk at once); see :func:`~twinjax.train.devices.rows_that_fit`."""

    def compile_for(rows):
        like = lambda x: jax.ShapeDtypeStruct((rows, *x.shape[1:]), x.dtype)
        params = jax.tree.map(lambda x: jax.ShapeDtypeStruct((rows, *x.shape), x.dtype), pop_params)
        return val_nll.lower(params, jax.tree.map(like, arrays), spec, history, size).compile()

    return rows_that_fit(compile_for, chunk, fraction=fraction)
