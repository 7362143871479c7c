"""Running rounds: evaluation history, progress bar, and orbax checkpoints that resume exactly.

Round ``r`` uses the key ``fold_in(key, r)``, so a run restored at round ``r`` continues with
the same randomness as an uninterrupted one. A checkpoint holds the server state (parameters,
optimizer state, control variates, client states, clip norm, round), the base PRNG key and the
evaluation history so far.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from jaxtyping import PRNGKeyArray
from tqdm.auto import tqdm

from twinjax.federated.algorithm import FederatedAlgorithm, ServerState
from twinjax.federated.data import ClientData


def checkpoint_manager(directory: str | Path, *, keep: int = 3) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
    return ocp.CheckpointManager(Path(directory).absolute(), options=options)


def _save(manager, state: ServerState, key: PRNGKeyArray, history: list) -> None:
    tree = {"state": state, "key": jax.random.key_data(key)}
    args = ocp.args.Composite(state=ocp.args.StandardSave(tree), history=ocp.args.JsonSave(history))
    manager.save(int(state.round), args=args)


def restore(
    manager: ocp.CheckpointManager, like: ServerState, key: PRNGKeyArray
) -> tuple[ServerState, PRNGKeyArray, list] | None:
    """The latest checkpoint restored into the structure of ``like`` (None if there is none)."""
    step = manager.latest_step()
    if step is None:
        return None
    target = jax.eval_shape(lambda: {"state": like, "key": jax.random.key_data(key)})
    args = ocp.args.Composite(
        state=ocp.args.StandardRestore(target), history=ocp.args.JsonRestore()
    )
    out = manager.restore(step, args=args)
    tree = out["state"]
    return tree["state"], jax.random.wrap_key_data(tree["key"]), list(out["history"])


def run_rounds(
    algo: FederatedAlgorithm,
    state: ServerState,
    data: ClientData,
    key: PRNGKeyArray,
    *,
    rounds: int,
    evaluate: Callable[[Any], dict] | None = None,
    eval_every: int = 1,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 10,
    keep: int = 3,
    stop_after: int | None = None,
    progress: bool = True,
    desc: str = "rounds",
) -> tuple[ServerState, list[dict]]:
    """Runs rounds until ``state.round == rounds`` (resuming from ``checkpoint_dir`` if it holds
    a checkpoint); ``stop_after`` ends early after that many rounds of this call (an
    interruption, for tests). ``evaluate(params)`` results are recorded every ``eval_every``."""
    history: list[dict] = []
    manager = checkpoint_manager(checkpoint_dir, keep=keep) if checkpoint_dir else None
    if manager is not None and (found := restore(manager, state, key)) is not None:
        state, key, history = found
    start = int(state.round)
    done = 0
    for r in tqdm(range(start, rounds), desc=desc, disable=not progress, leave=False):
        if r == 0 and evaluate is not None:
            history.append({"round": 0, **_to_float(evaluate(state.params))})
        state, metrics = algo.round(state, data, jax.random.fold_in(key, r))
        done += 1
        if evaluate is not None and ((r + 1) % eval_every == 0 or r + 1 == rounds):
            history.append({"round": r + 1, **_to_float(evaluate(state.params)),
                            **_to_float(metrics)})  # fmt: skip
        last = r + 1 == rounds or (stop_after is not None and done >= stop_after)
        if manager is not None and ((r + 1) % checkpoint_every == 0 or last):
            _save(manager, state, key, history)
        if stop_after is not None and done >= stop_after:
            break
    if manager is not None:
        manager.wait_until_finished()
        manager.close()
    return state, history


def _to_float(d: dict) -> dict:
    return {k: float(np.asarray(v)) for k, v in d.items()}
