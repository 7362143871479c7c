"""The mechanistic twin protocol: a model is four functions of a state, its parameters and its
inputs, and one :func:`simulate` runs any of them.

A model (:class:`MechanisticModel`) is an ODE ``dx/dt = rhs(x, params, u)`` whose inputs ``u`` are
piecewise constant over the intervals of a time grid, an optional ``event(x, params, u)`` applied
at the start of each interval (a bolus dose, a meal's bookkeeping) and an observation ``y =
observe(x, params)``. ``params`` is whatever the model's functions take: :func:`~twinjax.
mechanistic.fit.fit` needs a vector (``len(param_names)``, usually log rates and volumes), a
simulator may take a richer pytree (the UVa/Padova model takes ``PatientParams``).

One individual is the unit: :func:`simulate` is a ``lax.scan`` over the grid's intervals
(:func:`~twinjax.mechanistic.ode.rk4` inside each); a cohort is ``jax.vmap`` over params, grids and
inputs.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from twinjax.mechanistic.ode import rk4


class MechanisticModel(NamedTuple):
    """A mechanistic model: its parameter names and four pure functions.

    Attributes:
        param_names: the names of the parameter vector's entries (what :func:`fit` estimates).
        init_state: ``params -> x0``, the state at the grid's first time.
        rhs: ``(x, params, u) -> dx/dt`` for inputs ``u`` constant over an interval.
        observe: ``(x, params) -> y``, what is measured (a scalar or a vector per time).
        event: ``(x, params, u) -> x`` at the start of each interval, or None for none.
    """

    param_names: tuple[str, ...]
    init_state: Callable[[Any], Any]
    rhs: Callable[[Any, Any, Any], Any]
    observe: Callable[[Any, Any], Any]
    event: Callable[[Any, Any, Any], Any] | None = None


def step(model: MechanisticModel, x, params, u, t0, t1, *, substeps: int):
    """One interval ``[t0, t1]``: the event, then ``substeps`` RK4 steps with inputs ``u``."""
    if model.event is not None:
        x = model.event(x, params, u)
    return rk4(lambda t, y, _: model.rhs(y, params, u), x, t0, t1 - t0, substeps)


def simulate(
    model: MechanisticModel,
    params: Any,
    times: Float[ArrayLike, " times"],
    inputs: Any,
    *,
    substeps: int = 4,
    state: Any = None,
) -> tuple[Float[Array, "times ..."], Any]:
    """The observations at every grid time for one individual.

    Args:
        model: the model.
        params: its parameters (one individual; ``jax.vmap`` for a cohort).
        times: the grid, increasing (``T`` times, ``T - 1`` intervals; a zero-length interval
            applies its event and leaves the ODE state as it is).
        inputs: a pytree of per-interval inputs, each leaf with a leading axis ``T - 1``.
        substeps: RK4 steps per interval (static).
        state: the state at ``times[0]`` (default ``model.init_state(params)``).

    Returns:
        ``(y, final_state)``: ``y[0]`` observes the starting state, ``y[i]`` the state at
        ``times[i]`` before that time's event (a dose at ``times[i]`` shows from ``y[i + 1]``:
        an observation at a dose's time is its trough).

    Example:
        >>> import jax.numpy as jnp
        >>> decay = MechanisticModel(("lk",), lambda p: jnp.array(1.0),
        ...                          lambda x, p, u: -jnp.exp(p[0]) * x, lambda x, p: x)
        >>> y, _ = simulate(decay, jnp.array([0.0]), jnp.arange(4.0), jnp.zeros(3))
        >>> bool(jnp.allclose(y, jnp.exp(-jnp.arange(4.0)), atol=1e-4))
        True
    """
    times = jnp.asarray(times)
    x0 = model.init_state(params) if state is None else state

    def _step(x, per):
        t0, t1, u = per
        x = step(model, x, params, u, t0, t1, substeps=substeps)
        return x, model.observe(x, params)

    final, ys = jax.lax.scan(_step, x0, (times[:-1], times[1:], inputs))
    y0 = jnp.asarray(model.observe(x0, params))
    return jnp.concatenate([y0[None], ys]), final


def on_grid(
    times: Float[ArrayLike, " times"],
    event_times: Float[ArrayLike, " events"],
    amounts: Float[ArrayLike, " events"],
) -> Float[Array, " intervals"]:
    """Per-interval inputs from events at grid times: ``out[i]`` sums the ``amounts`` given at
    ``times[i]`` (the start of interval ``i``). Event times must be grid times (padding events
    have amount 0)."""
    times, event_times = jnp.asarray(times), jnp.asarray(event_times)
    at = times[:-1, None] == event_times[None, :]
    return jnp.where(at, jnp.asarray(amounts)[None, :], 0.0).sum(-1)
