"""Running rounds: evaluation history, progress bar and orbax checkpoints that resume exactly,
through the checkpointed loop of :func:`twinjax.runtime.run_loop`.

Round ``r`` uses the key ``fold_in(key, r)``, so a run restored at round ``r`` continues with
the same randomness as an uninterrupted one. A checkpoint holds the server state (parameters,
optimizer, client and aggregator states, round), the base PRNG key and the evaluation history.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from jaxtyping import Array, PRNGKeyArray, UInt32

from twinjax.federated.algorithm import FederatedAlgorithm, ServerState
from twinjax.federated.data import ClientData
from twinjax.runtime.loop import run_loop
from twinjax.runtime.scalars import current


class _Run(NamedTuple):
    server: ServerState
    key: UInt32[Array, "..."]  # the base key's data (orbax saves plain arrays)


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
    """Runs rounds of ``algo`` until ``state.round == rounds``.

    Args:
        algo: the federated algorithm.
        state: the initial server state (a checkpoint in ``checkpoint_dir`` replaces it).
        data: the client population.
        key: the base key; round ``r`` uses ``fold_in(key, r)``.
        rounds: the round to stop at.
        evaluate: ``evaluate(params) -> dict`` of scalars, recorded before round 0, every
            ``eval_every`` rounds and after the last, with the round's metrics.
        eval_every: rounds between evaluations.
        checkpoint_dir: where to save and resume (None: no checkpoints).
        checkpoint_every: rounds between checkpoints (and one after the last).
        keep: checkpoints kept.
        stop_after: end early after that many rounds of this call (an interruption, for tests).
        progress: show a progress bar.
        desc: the progress bar's label.

    Returns:
        The final server state and the evaluation history (one dict per evaluation).
    """
    history: list[dict] = []
    writer, tag = current(), desc.replace(" ", "_")  # curves when the app opened a writer

    def step(run: _Run) -> tuple[_Run, dict]:
        r = run.server.round
        server, metrics = algo.apply(
            run.server, data, jax.random.fold_in(jax.random.wrap_key_data(run.key), r)
        )
        return run._replace(server=server), metrics

    def evaluated(done: int, run: _Run, metrics: dict | None) -> dict | None:
        if evaluate is None:
            return None
        if metrics is None:
            return {"round": 0, **_to_float(evaluate(run.server.params))}
        if done % eval_every == 0 or done == rounds:
            return {"round": done, **_to_float(evaluate(run.server.params)), **_to_float(metrics)}
        return None

    def record(done: int, run: _Run, metrics: dict | None) -> dict | None:
        out = evaluated(done, run, metrics)
        if out is not None and writer is not None:
            writer.scalars({k: v for k, v in out.items() if k != "round"}, done, prefix=tag)
        return out

    run, _ = run_loop(
        _Run(state, jax.random.key_data(key)), step, rounds,
        checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None, every=checkpoint_every,
        keep=keep, name=desc, progress=progress, check_every=None,
        step_of=lambda run: run.server.round, stop_after=stop_after, on_step=record,
        records=history,
    )  # fmt: skip
    return run.server, history


def _to_float(d: dict) -> dict:
    return {k: float(np.asarray(v)) for k, v in d.items()}
