"""A twin whose network is a flax module (linen or nnx), for ONE individual.

The module reads the twin's inputs at every step of a window, ``x [time, d_in]`` (values with
zeros where missing, mask, interventions, static covariates: :func:`~.gaussian.step_inputs`),
and returns features ``[time, width]``; the twin's Gaussian head turns row t into the
predictive Gaussian of the values at t+1, as it does for the built-in cells. So the module must
be causal (row t may read rows <= t only) and deterministic (its state is parameters only, no
batch statistics; its output does not depend on random streams, no dropout): both are checked
when it is built.

- linen: ``Class(**kwargs)``, initialized with ``module.init(key, x)``; its ``params``
  collection is the network's parameters.
- nnx: ``Class(d_in, **kwargs, rngs=nnx.Rngs(key))`` (``d_in`` positional, as
  ``nnx.Linear(in_features, ...)`` takes it); ``nnx.split`` gives the graph (static) and the
  ``nnx.Param`` state, kept as a plain dict (``nnx.to_pure_dict``) and merged back per call;
  random streams the module keeps (``nnx.Rngs``, e.g. for a carry initializer) are held fixed.

Either way the twin is a pure ``(init, apply)`` pair over a pytree (:class:`FlaxParams`), so a
cohort is ``jax.vmap`` over individuals' parameters, and training, personalization
(``adapt="mean"`` and ``"heads"`` keep the network shared, ``"all"`` makes it personal too),
rollouts, calibration and saving work as for the built-in twin. A rollout feeds each predicted
step back by running the module again over the window grown by that step (the module has no
carry to step), so an ``h``-step rollout costs ``h`` passes over ``history + h`` steps.

The spec names the module by an import string (``"package.module:Name"``), which is what a
saved twin stores to rebuild it: a class defined in ``__main__`` loads back in that process only.
"""

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from twinjax.data import Cohort, Series
from twinjax.twins.cells import Dense
from twinjax.twins.gaussian import head_init, predict_head, step_inputs

_PROBE_STEPS = 6  # the window the checks run on; steps from _PROBE_CUT on are changed
_PROBE_CUT = 3


def _frozen(value, name: str):
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(_frozen(v, name) for v in value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(
        f"kwargs[{name!r}]={value!r}: a flax twin's module kwargs are numbers, strings, "
        "booleans, None or lists of them (they are saved as JSON with the twin)"
    )


def _pairs(kwargs) -> tuple[tuple[str, Any], ...]:
    items = kwargs.items() if hasattr(kwargs, "items") else (tuple(kv) for kv in kwargs)
    return tuple(sorted((str(k), _frozen(v, str(k))) for k, v in items))


def import_path(module: type | str) -> str:
    """``"package.module:Name"`` of a module class (a string is returned as it is)."""
    if isinstance(module, str):
        return module
    return f"{module.__module__}:{module.__qualname__}"


@dataclass(frozen=True)
class FlaxSpec:
    """A flax twin's architecture (hashable: pass as a static argument).

    Args:
      n_features, n_interventions, n_static: the cohort's sizes (:meth:`for_cohort`).
      module: the flax module class, or its import string ``"package.module:Name"``.
      kwargs: the module's constructor arguments (a dict, or ``(name, value)`` pairs; kept
        sorted as pairs so that the spec hashes).
      min_scale: floor of the predictive SD (normalized units).

    >>> spec = FlaxSpec(n_features=1, n_interventions=0, n_static=0,
    ...                 module="flax.linen:Dense", kwargs={"features": 8})
    >>> spec.module, spec.kwargs, spec.d_in, network(spec).width
    ('flax.linen:Dense', (('features', 8),), 2, 8)
    """

    n_features: int
    n_interventions: int
    n_static: int
    module: str | type  # stored as its import string
    kwargs: Mapping[str, Any] | Sequence = field(default=())  # stored as sorted pairs
    min_scale: float = 1e-3

    def __post_init__(self):
        object.__setattr__(self, "module", import_path(self.module))
        object.__setattr__(self, "kwargs", _pairs(self.kwargs))

    @classmethod
    def for_cohort(cls, cohort: Cohort, module: type | str, **options) -> "FlaxSpec":
        """The spec whose input sizes match ``cohort`` (streams, intervention kinds, covariates)."""
        return cls(
            n_features=cohort.n_features,
            n_interventions=cohort.interventions.shape[-1],
            n_static=cohort.static.shape[-1],
            module=module,
            **options,
        )

    @property
    def d_in(self) -> int:
        return 2 * self.n_features + self.n_interventions + self.n_static


class FlaxParams(NamedTuple):
    """One individual's flax twin (a cohort stacks each leaf along a leading axis); fields in
    alphabetical order, as :class:`~twinjax.twins.TwinParams`'s."""

    mean: Dense  # head: predictive mean
    network: Any  # the module's parameters (a dict of arrays)
    scale: Dense  # head: predictive scale, softplus(.) + min_scale


class Network(NamedTuple):
    """A spec's module, built once: ``kind``, the linen module or the nnx graph with its fixed
    random streams, the width of the features it returns and ``init(key) -> parameters``
    (jitted, traceable)."""

    kind: Literal["linen", "nnx"]
    module: Any
    width: int
    init: Callable[[PRNGKeyArray], Any]


def load_module(path: str) -> Any:
    """What an import string ``"package.module:Name"`` names (a flax module class, if right).

    Raises:
      ValueError: not of that form. ImportError: its module or name does not import.
    """
    modname, sep, qualname = path.partition(":")
    if not sep or not modname or not qualname:
        raise ValueError(f"flax module {path!r}: write it as 'package.module:ClassName'")
    try:
        obj = importlib.import_module(modname)
    except ImportError as e:
        raise ImportError(f"flax module {path!r}: module {modname!r} does not import ({e})") from e
    for part in qualname.split("."):
        if not hasattr(obj, part):
            raise ImportError(f"flax module {path!r}: {modname!r} has no {qualname!r}")
        obj = getattr(obj, part)
    return obj


def _initializer(spec: FlaxSpec) -> tuple[str, Callable[[PRNGKeyArray], Any]]:
    """``(kind, init)``: ``init(key)`` is the module's parameters as a plain dict, refusing a
    module whose state is not only parameters."""
    # flax is imported here, not with twinjax: only a flax twin pays for its import
    from flax import linen, nnx

    cls = load_module(spec.module)
    kwargs = dict(spec.kwargs)
    if isinstance(cls, type) and issubclass(cls, linen.Module):
        module = cls(**kwargs)

        def init(key):
            variables = module.init(key, jnp.zeros((_PROBE_STEPS, spec.d_in)))
            _refuse_state(spec, sorted(set(variables) - {"params"}))
            return variables.get("params", {})

        return "linen", jax.jit(init)
    if isinstance(cls, type) and issubclass(cls, nnx.Module):

        def init(key):
            module = cls(spec.d_in, **kwargs, rngs=nnx.Rngs(key))
            _, state, _, rest = nnx.split(module, nnx.Param, nnx.RngState, ...)
            other = {type(v).__name__ for v in jax.tree.leaves(rest, is_leaf=_is_variable)}
            _refuse_state(spec, sorted(other))
            return nnx.to_pure_dict(state)

        return "nnx", jax.jit(init)
    raise TypeError(
        f"flax module {spec.module!r} is {cls!r}, not a flax module class (a subclass of "
        "flax.linen.Module or flax.nnx.Module)"
    )


def _refuse_state(spec: FlaxSpec, other: list[str]) -> None:
    if other:
        raise ValueError(
            f"flax module {spec.module!r} has state other than parameters ({other}); a twin's "
            "network is deterministic: no batch statistics or other mutable state"
        )


def _is_variable(x) -> bool:
    from flax import nnx

    return isinstance(x, nnx.Variable)


def _applier(spec: FlaxSpec, kind: str, seed: int = 0):
    """The linen module, or the nnx graph (``nnx.split``'s static half) with the module's random
    streams (``nnx.Rngs`` it keeps, e.g. for a recurrent carry's initializer) from ``seed``,
    held fixed: the output must not depend on them (checked by :func:`network`)."""
    from flax import nnx

    if kind == "linen":
        return load_module(spec.module)(**dict(spec.kwargs))
    cls = load_module(spec.module)
    with jax.ensure_compile_time_eval():  # (building it inside a trace makes no tracers)
        module = cls(spec.d_in, **dict(spec.kwargs), rngs=nnx.Rngs(seed))
        graph, _, streams, _ = nnx.split(module, nnx.Param, nnx.RngState, ...)
    return graph, nnx.to_pure_dict(streams)


def _run(kind: str, module, params, x):
    if kind == "linen":
        return module.apply({"params": params}, x)
    from flax import nnx

    graph, streams = module
    return nnx.merge(graph, params, streams)(x)  # a fresh module: the streams stay as given


@cache
def network(spec: FlaxSpec) -> Network:
    """Builds ``spec``'s module once and checks it: it must map ``x [time, d_in]`` to features
    ``[time, width]`` causally (row t unchanged when only rows after t change).

    The checks run compiled executables on concrete arrays, so they give numbers even when the
    first call comes from inside a ``jax.jit`` trace.

    Raises:
      ImportError, ValueError, TypeError: naming the module, when it does not import, is not a
        flax module, has state other than parameters, returns another shape or is not causal.
    """
    kind, init = _initializer(spec)
    module = _applier(spec, kind)
    with jax.ensure_compile_time_eval():
        key, x = jax.random.key(0), jax.random.normal(jax.random.key(1), (_PROBE_STEPS, spec.d_in))
        later = x.at[_PROBE_CUT:].set(jax.random.normal(jax.random.key(2), x[_PROBE_CUT:].shape))
    params = init.lower(key).compile()(key)
    run = jax.jit(partial(_run, kind, module)).lower(params, x).compile()
    z = run(params, x)
    shape = getattr(z, "shape", None)
    if shape is None or len(shape) != 2 or shape[0] != _PROBE_STEPS:
        raise ValueError(
            f"flax module {spec.module!r} maps a window [time={_PROBE_STEPS}, d_in="
            f"{spec.d_in}] to {shape if shape is not None else type(z).__name__}; a twin's "
            "network returns features [time, width] (one row per step)"
        )
    z = np.asarray(z)
    if kind == "nnx":  # the same with other random streams
        other = jax.jit(partial(_run, kind, _applier(spec, kind, seed=1)))
        drawn = np.abs(np.asarray(other.lower(params, x).compile()(params, x)) - z).max()
        if not drawn <= 1e-5 * (1.0 + float(np.abs(z).max())):
            raise ValueError(
                f"flax module {spec.module!r} draws random numbers in its forward pass (its "
                f"features changed with its nnx.Rngs streams, by {drawn:.3g}): a twin's network "
                "is deterministic (no dropout)"
            )
    moved = np.abs(np.asarray(run(params, later))[:_PROBE_CUT] - z[:_PROBE_CUT]).max()
    if not moved <= 1e-5 * (1.0 + float(np.abs(z).max())):
        raise ValueError(
            f"flax module {spec.module!r} is not causal: its features at steps before "
            f"{_PROBE_CUT} changed when only later inputs did (by {moved:.3g}); row t of a "
            "twin's network may read steps <= t only (row t predicts step t + 1)"
        )
    return Network(kind, module, int(shape[1]), init)


def init(key: PRNGKeyArray, spec: FlaxSpec) -> FlaxParams:
    """Parameters of one individual's flax twin (the heads as the built-in twin's)."""
    net = network(spec)
    k_net, k_mean, k_scale = jax.random.split(key, 3)
    mean, scale = head_init(k_mean, k_scale, net.width, spec.n_features)
    return FlaxParams(mean, net.init(k_net), scale)


def features(
    params: FlaxParams, spec: FlaxSpec, x: Float[Array, "time d_in"]
) -> Float[Array, "time width"]:
    """The module's features of every step of one individual's window."""
    net = network(spec)
    return _run(net.kind, net.module, params.network, x)


def apply(
    params: FlaxParams, spec: FlaxSpec, series: Series
) -> tuple[Float[Array, "time features"], Float[Array, "time features"]]:
    """One-step-ahead ``mean, scale [time, features]`` (row t: the Gaussian of step t + 1)."""
    return predict_head(params, spec, features(params, spec, step_inputs(series)))


class FlaxStart(NamedTuple):
    """A flax twin after reading a history of ``t`` steps: its inputs ``[t + horizon, d_in]``
    (zero beyond t, filled in as the rollout goes) and the predictive Gaussian of step t."""

    inputs: Float[Array, "steps d_in"]
    first: tuple[Float[Array, " features"], Float[Array, " features"]]
    t: int  # history length (static)


def rollout_start(params: FlaxParams, spec: FlaxSpec, series: Series, horizon: int) -> FlaxStart:
    """Reads one individual's history (teacher forced) before a ``horizon``-step rollout."""
    x = step_inputs(series)
    t = x.shape[0]
    first = predict_head(params, spec, features(params, spec, x)[-1])
    return FlaxStart(jnp.concatenate([x, jnp.zeros((horizon, x.shape[1]), x.dtype)]), first, t)


def rollout_from(
    params: FlaxParams,
    spec: FlaxSpec,
    start: FlaxStart,
    static: Float[ArrayLike, " covariates"],
    future_interventions: Float[ArrayLike, "horizon kinds"],
    *,
    key: PRNGKeyArray | None = None,
) -> tuple[Float[Array, "horizon features"], Float[Array, "horizon features"]]:
    """The rollout of :func:`~twinjax.twins.forecast` from :func:`rollout_start`: step k's
    predicted mean (or, with ``key``, a draw) enters the window as observed, with the planned
    interventions, and the module reads the window again."""
    t, horizon = start.t, future_interventions.shape[0]
    keys = jax.random.split(key, horizon) if key is not None else jnp.zeros((horizon, 0))

    def _step(state, inp):
        x, (mean, scale) = state
        k, (plan, sample_key) = inp
        y = mean if key is None else mean + scale * jax.random.normal(sample_key, mean.shape)
        x = x.at[t + k].set(jnp.concatenate([y, jnp.ones_like(y), plan, static]))
        pred = predict_head(params, spec, features(params, spec, x)[t + k])
        return (x, pred), pred

    first = start.first
    steps = (jnp.arange(horizon - 1), (future_interventions[:-1], keys[: horizon - 1]))
    _, (means, scales) = jax.lax.scan(_step, (start.inputs, first), steps)
    return (jnp.concatenate([first[0][None], means]), jnp.concatenate([first[1][None], scales]))
