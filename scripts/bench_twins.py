"""Per-individual twin training steps per second: twinjax (vmap over individuals) vs a torch loop.

Workload for each of ``--n`` individuals: 8 input features, an LSTM with 32 hidden units and a
linear head predicting feature 0 of the next step (MSE), ``--windows`` windows of ``--length``
steps. One training step = forward + backward + Adam update for every individual.

    .venv/bin/python scripts/bench_twins.py --n 64 256 --repeats 5 --peer torch --json out.json
    .venv/bin/python scripts/bench_twins.py --check   # torch weights copied into JAX: same losses

twinjax builds each individual's loss from ``twinjax.twins.cells`` (unbatched, ``lax.scan`` over
time, vmapped over its windows) and trains the whole cohort in one jitted step:
``vmap(value_and_grad(loss_i))`` over the stacked parameter pytree plus a vmapped ``optax.adam``,
the individuals split over the local devices with ``jax.shard_map`` (on a CPU the bench makes one
device per core, ``--cpu-devices``, so that each core trains its share; ``--devices 1`` for one).
The torch peer is what a user would otherwise write: N separate ``torch.nn.LSTM`` +
``torch.nn.Linear`` models, each with its own ``torch.optim.Adam``, looped over per step, with
``torch.set_num_threads`` set to the machine's cores (``--torch-threads`` overrides it: on an
oversubscribed machine torch's intra-op threads spin-wait, and a 2-thread loop can be many
times slower than a 1-thread one). The first twinjax call (tracing + XLA compilation) is timed apart; steady
state is the median of ``--repeats`` timed steps, in wall and in process-CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from twinjax.train.devices import AXIS, individuals_mesh, use_cpu_devices
from twinjax.twins.cells import Dense, RecurrentParams, dense, dense_init, lstm_init, run_cell
from twinjax.twins.sequence import lstm_sequence

FEATURES = 8
HIDDEN = 32
LR = 1e-3
# Individuals per block on a CPU (the fastest of 8, 16, 32 and all at once at N=256: compare
# with --block; README "Scaling out"): a block's per-step arrays ([8, 16, 128] floats) stay in
# L2, fresh buffers do not page-fault, and no op of the time loops is split over threads (from
# 16 on, the weight gradient's per-step addition was, and waited for the other thread on a
# busy machine).
CPU_BLOCK = 8


class Batch(NamedTuple):
    """Inputs and next-step targets of a cohort (leading axis: individuals)."""

    x: Float[Array, "individuals windows length features"]
    y: Float[Array, "individuals windows length"]


class TrainState(NamedTuple):
    params: dict
    opt_state: optax.OptState


def make_batch(
    key: PRNGKeyArray, n: int, *, windows: int = 16, length: int = 96, features: int = FEATURES
) -> Batch:
    """Noisy sinusoids with per-individual frequencies; the target is feature 0 one step ahead."""
    k_freq, k_phase, k_noise = jax.random.split(key, 3)
    freq = jax.random.uniform(k_freq, (n, 1, 1, features), minval=0.05, maxval=0.3)
    phase = jax.random.uniform(k_phase, (n, windows, 1, features), maxval=2 * jnp.pi)
    t = jnp.arange(length + 1, dtype=jnp.float32)[None, None, :, None]
    noise = 0.1 * jax.random.normal(k_noise, (n, windows, length + 1, features))
    series = (jnp.sin(freq * t + phase) + noise).astype(jnp.float32)
    return Batch(series[:, :, :-1, :], series[:, :, 1:, 0])


def init_params(key: PRNGKeyArray, *, features: int = FEATURES, hidden: int = HIDDEN) -> dict:
    """One individual's LSTM + linear head."""
    k_lstm, k_head = jax.random.split(key)
    return {"lstm": lstm_init(k_lstm, features, hidden), "head": dense_init(k_head, hidden, 1)}


def init_cohort(key: PRNGKeyArray, n: int, **kwargs) -> dict:
    """Stacked parameter pytree, leading axis ``n`` (one independent twin per individual)."""
    return jax.vmap(lambda k: init_params(k, **kwargs))(jax.random.split(key, n))


def _window_loss(
    params: dict, x: Float[Array, "length features"], y: Float[Array, " length"], remat_chunk=0
) -> Float[Array, ""]:
    if remat_chunk:  # the head inside the rematerialized chunks: hidden states are not kept
        head = lambda h: dense(params["head"], h)[0]
        _, pred = run_cell("lstm", params["lstm"], x, remat_chunk=remat_chunk, emit=head)
    else:
        _, h = run_cell("lstm", params["lstm"], x)
        pred = dense(params["head"], h)[:, 0]
    return jnp.mean((pred - y) ** 2)


def loss_i(
    params: dict,
    x: Float[Array, "windows length features"],
    y: Float[Array, "windows length"],
    remat_chunk: int = 0,
    layout: str = "sequence",
    kernel: str = "xla",
    residuals: str = "float32",
) -> Float[Array, ""]:
    """MSE of one individual over all its windows (same reduction as torch's ``mse_loss``).

    ``layout="sequence"``: the individual's windows go through ``lstm_sequence`` together,
    time-major (one batched GEMM per step across individuals and windows, hand-written
    backward pass), the head applied inside its loop; ``kernel="pallas"``: its forward pass as
    the fused Pallas kernel (``twins.fused``; interpret mode on a CPU), the head outside. ``"scan"``: the reference, ``run_cell`` on each window (vmapped), autodiff;
    ``remat_chunk`` applies to it only. ``residuals``: the dtype of the carries the sequence
    layout keeps for its backward pass (``"bfloat16"``: half the memory, approximate gradient).
    """
    if layout == "sequence":
        xs = jnp.swapaxes(x, 0, 1)  # [length, windows, features]
        if kernel == "pallas":
            interpret = jax.default_backend() == "cpu"
            _, hs = lstm_sequence(params["lstm"], xs, kernel="pallas", interpret=interpret)
            pred = dense(params["head"], hs)
        else:  # the head inside the loop: [length, windows, 1]
            _, pred = lstm_sequence(params["lstm"], xs, readout=params["head"], residuals=residuals)
        return jnp.mean((pred[..., 0] - y.T) ** 2)
    if layout != "scan":
        raise ValueError(f"layout must be 'sequence' or 'scan', not {layout!r}")
    win = lambda p, x, y: _window_loss(p, x, y, remat_chunk)
    return jnp.mean(jax.vmap(win, in_axes=(None, 0, 0))(params, x, y))


cohort_loss = jax.jit(jax.vmap(loss_i))


def init_state(params: dict, optimizer: optax.GradientTransformation) -> TrainState:
    return TrainState(params, jax.vmap(optimizer.init)(params))


def make_step(
    optimizer: optax.GradientTransformation,
    *,
    remat_chunk: int = 0,
    layout: str = "sequence",
    kernel: str = "xla",
    block: int = 0,
    mesh: jax.sharding.Mesh | None = None,
    residuals: str = "float32",
) -> Callable[[TrainState, Batch], tuple[TrainState, Float[Array, " individuals"]]]:
    """Jitted cohort step: per-individual loss, gradient and optimizer update, all vmapped.

    ``layout``: see :func:`loss_i`. ``remat_chunk`` (``layout="scan"``): recompute the LSTM's
    activations in chunks of that many steps in the backward pass (``run_cell``), keeping only
    chunk-boundary carries and hidden states. ``block > 0``: individuals in blocks of that many,
    one block after another (``lax.map(..., batch_size=block)``, vmapped within a block), so
    that a time step's arrays stay in the CPU's caches; 0: all at once (one ``vmap``).
    ``mesh`` (one axis, ``train.devices.individuals_mesh``): the individuals split over its
    devices with ``jax.shard_map``, each device running the above on its share (the cohort size
    must be a multiple of the device count); on a CPU with one device per core
    (``jax_num_cpu_devices``) each core then runs its own share."""
    if remat_chunk and layout != "scan":
        raise ValueError("remat_chunk applies to layout='scan' only")
    if residuals != "float32" and layout != "sequence":
        raise ValueError("residuals applies to layout='sequence' only")
    if block < 0:
        raise ValueError(f"block must be >= 0, not {block}")

    def _update(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_i)(
            params, x, y, remat_chunk, layout, kernel, residuals
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def _cohort(*args):
        if block:
            return jax.lax.map(lambda a: _update(*a), args, batch_size=min(block, len(args[-1])))
        return jax.vmap(_update)(*args)

    if mesh is not None:
        if mesh.axis_names != (AXIS,):
            raise ValueError(f"mesh must have the one axis {AXIS!r}, not {mesh.axis_names}")
        ind = jax.sharding.PartitionSpec(AXIS)
        _cohort = jax.shard_map(  # the twins' scans start from constant carries
            _cohort, mesh=mesh, in_specs=ind, out_specs=ind, check_vma=False
        )

    @jax.jit
    def step(state: TrainState, batch: Batch):
        n, d = len(batch.y), 1 if mesh is None else mesh.size
        if n % d:
            raise ValueError(f"{n} individuals cannot be split evenly over {d} devices")
        params, opt_state, loss = _cohort(state.params, state.opt_state, *batch)
        return TrainState(params, opt_state), loss

    return step


def _timed(step: Callable[[], object], n: int, repeats: int) -> dict:
    """Wall and process-CPU seconds of ``repeats`` calls; medians and individual-steps/s.

    CPU seconds (all threads of this process) are less sensitive than wall time to other
    processes on a shared machine, and reveal threads that spin while waiting.
    """
    walls, cpus = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        step()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    median = statistics.median(walls)
    return {
        "median_step_s": median,
        "median_step_cpu_s": statistics.median(cpus),
        "step_times_s": walls,
        "step_cpu_times_s": cpus,
        "individual_steps_per_s": n / median,
    }


def time_twinjax(
    n: int,
    *,
    windows: int,
    length: int,
    repeats: int,
    seed: int = 0,
    remat_chunk: int = 0,
    layout: str = "sequence",
    kernel: str = "xla",
    block: int = 0,
    devices: int = 1,
    residuals: str = "float32",
) -> dict:
    """First call (incl. compile) and the median of ``repeats`` steady-state steps, the cohort
    split over the first ``devices`` local devices (1: no ``shard_map``)."""
    k_data, k_params = jax.random.split(jax.random.key(seed))
    batch = make_batch(k_data, n, windows=windows, length=length)
    optimizer = optax.adam(LR)
    state = init_state(init_cohort(k_params, n), optimizer)
    mesh = individuals_mesh(jax.local_devices()[:devices]) if devices > 1 else None
    step = make_step(
        optimizer,
        remat_chunk=remat_chunk,
        layout=layout,
        kernel=kernel,
        block=block,
        mesh=mesh,
        residuals=residuals,
    )
    jax.block_until_ready((state, batch))
    t0 = time.perf_counter()
    step = step.lower(state, batch).compile()  # ahead of time: its memory analysis, then run it
    compile_s = time.perf_counter() - t0
    state, loss = jax.block_until_ready(step(state, batch))
    first = time.perf_counter() - t0
    losses = [float(loss.mean())]
    memory = step.memory_analysis()  # one device's program: its share of the individuals

    def _step():
        nonlocal state
        state, loss = jax.block_until_ready(step(state, batch))
        losses.append(float(loss.mean()))

    out = _timed(_step, n, repeats)
    out.update(
        compile_s=compile_s,
        first_call_with_compile_s=first,
        temp_bytes_per_device=memory.temp_size_in_bytes,
        temp_bytes_per_individual=memory.temp_size_in_bytes * devices / n,
        mean_loss_first_step=losses[0],
        mean_loss_last_step=losses[-1],
    )
    return out


# ---------------------------------------------------------------- torch peer (imported lazily)


def torch_models(n: int, *, seed: int = 0, features: int = FEATURES, hidden: int = HIDDEN):
    """``n`` independent (LSTM, Linear, Adam) triples, as a user would write them."""
    import torch

    torch.manual_seed(seed)
    models = []
    for _ in range(n):
        lstm = torch.nn.LSTM(features, hidden, batch_first=True)
        head = torch.nn.Linear(hidden, 1)
        opt = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=LR)
        models.append((lstm, head, opt))
    return models


def torch_step(models, x, y) -> list[float]:
    """One step for every individual: a Python loop over separate models."""
    import torch

    losses = []
    for i, (lstm, head, opt) in enumerate(models):
        opt.zero_grad(set_to_none=True)
        h, _ = lstm(x[i])
        loss = torch.nn.functional.mse_loss(head(h)[..., 0], y[i])
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return [float(v) for v in torch.stack(losses)]


def _to_torch(batch: Batch):
    import torch

    return tuple(torch.from_numpy(np.asarray(a, dtype=np.float32).copy()) for a in batch)


def time_torch(
    n: int, *, windows: int, length: int, repeats: int, seed: int = 0, threads: int | None = None
) -> dict:
    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)
    x, y = _to_torch(make_batch(jax.random.key(seed), n, windows=windows, length=length))
    models = torch_models(n, seed=seed)
    t0 = time.perf_counter()
    torch_step(models, x, y)  # warm-up
    first = time.perf_counter() - t0
    out = _timed(lambda: torch_step(models, x, y), n, repeats)
    out.update(first_step_s=first, threads=torch.get_num_threads())
    return out


def params_from_torch(lstm, head) -> dict:
    """Maps torch weights onto twinjax's layout.

    torch stacks gates as rows (i, f, g, o) of ``weight_ih`` (4H, F) and ``weight_hh`` (4H, H)
    and adds two biases; ``lstm_step`` computes ``x @ wx + h @ wh + b`` and splits the columns
    as (i, f, g, o), so ``wx = weight_ih.T``, ``wh = weight_hh.T``, ``b = b_ih + b_hh``.
    """
    arr = lambda t: jnp.asarray(t.detach().numpy())
    return {
        "lstm": RecurrentParams(
            b=arr(lstm.bias_ih_l0) + arr(lstm.bias_hh_l0),
            wh=arr(lstm.weight_hh_l0).T,
            wx=arr(lstm.weight_ih_l0).T,
        ),
        "head": Dense(b=arr(head.bias), w=arr(head.weight).T),
    }


def grads_from_torch(lstm, head) -> dict:
    """torch's ``.grad`` in twinjax's layout. ``d b = d b_ih = d b_hh`` (b is their sum)."""
    arr = lambda t: np.asarray(t.grad.numpy())
    np.testing.assert_array_equal(arr(lstm.bias_ih_l0), arr(lstm.bias_hh_l0))
    return {
        "lstm": RecurrentParams(
            b=arr(lstm.bias_ih_l0), wh=arr(lstm.weight_hh_l0).T, wx=arr(lstm.weight_ih_l0).T
        ),
        "head": Dense(b=arr(head.bias), w=arr(head.weight).T),
    }


def cross_check(*, n: int = 2, windows: int = 16, length: int = 96, seed: int = 0) -> dict:
    """One training step from the same weights: twinjax vs torch losses and gradients.

    Only the first step is comparable: torch keeps ``b_ih`` and ``b_hh`` as two parameters that
    Adam moves separately (about 2 lr per step on their sum), twinjax has one bias ``b``.
    Returns per-individual losses (n,) of both and the largest absolute gradient difference.
    """
    batch = make_batch(jax.random.key(seed), n, windows=windows, length=length)
    models = torch_models(n, seed=seed)
    params = jax.tree.map(lambda *a: jnp.stack(a), *[params_from_torch(m, h) for m, h, _ in models])
    jax_loss, jax_grads = jax.jit(jax.vmap(jax.value_and_grad(loss_i)))(params, *batch)
    torch_loss = np.asarray(torch_step(models, *_to_torch(batch)), dtype=np.float32)
    torch_grads = jax.tree.map(
        lambda *a: np.stack(a), *[grads_from_torch(m, h) for m, h, _ in models]
    )
    diffs = jax.tree.map(
        lambda a, b: float(np.max(np.abs(np.asarray(a) - b))), jax_grads, torch_grads
    )
    return {
        "jax_loss": np.asarray(jax_loss),
        "torch_loss": torch_loss,
        "grad_max_abs_diff": max(jax.tree.leaves(diffs)),
        "grad_max_abs": max(float(np.max(np.abs(g))) for g in jax.tree.leaves(torch_grads)),
    }


# ---------------------------------------------------------------- command line


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def _most_devices(n: int, available: int) -> int:
    """The most of ``available`` devices that split ``n`` individuals evenly.

    >>> _most_devices(256, 2), _most_devices(2, 8), _most_devices(100, 8), _most_devices(7, 2)
    (2, 2, 5, 1)
    """
    return max(d for d in range(1, available + 1) if n % d == 0)


def _env() -> dict:
    env = {
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "jax_devices": len(jax.devices()),
        "jax_device_kind": jax.devices()[0].device_kind,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "machine": platform.processor() or platform.machine(),
    }
    try:
        import torch

        env["torch"] = torch.__version__
    except ImportError:
        pass
    return env


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[64], help="individuals (several allowed)")
    ap.add_argument("--layout", choices=["sequence", "scan"], default="sequence",
                    help="sequence: lstm_sequence, time-major; scan: run_cell per window")  # fmt: skip
    ap.add_argument("--kernel", choices=["xla", "pallas"], default="xla",
                    help="(--layout sequence) pallas: the fused forward kernel (GPU)")  # fmt: skip
    ap.add_argument("--block", type=int, default=None,
                    help="individuals per block, one block after another (0: all at once; "
                    f"default: {CPU_BLOCK} on a CPU, where a block's arrays stay in cache, else 0)")  # fmt: skip
    ap.add_argument("--residuals", choices=["float32", "bfloat16"], default="float32",
                    help="(--layout sequence) dtype of the carries kept for the backward pass")  # fmt: skip
    ap.add_argument("--devices", type=int, default=None,
                    help="local devices to split the individuals over (shard_map; default: the "
                    "most of them that divide N evenly)")  # fmt: skip
    ap.add_argument("--cpu-devices", type=int, default=os.cpu_count() or 1,
                    help="on a CPU, host devices to make (jax_num_cpu_devices): one per core "
                    "lets each core run its share of the individuals (default: os.cpu_count())")  # fmt: skip
    ap.add_argument("--remat-chunk", type=int, default=0,
                    help="(--layout scan) recompute LSTM activations in chunks of this many steps")  # fmt: skip
    ap.add_argument("--repeats", type=int, default=5, help="timed steps; the median is reported")
    ap.add_argument("--windows", type=int, default=16)
    ap.add_argument("--length", type=int, default=96)
    ap.add_argument("--peer", choices=["torch"], default=None)
    ap.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch.set_num_threads (default: os.cpu_count(); on a loaded machine try 1)",
    )
    ap.add_argument("--check", action="store_true", help="N=2 loss cross-check against torch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write all results to this file")
    args = ap.parse_args(argv)
    use_cpu_devices(args.cpu_devices)  # before JAX starts (a note in the log if it has)
    if args.block is None:
        args.block = CPU_BLOCK if jax.default_backend() == "cpu" else 0

    results = {"env": _env(), "workload": vars(args) | {"features": FEATURES, "hidden": HIDDEN}}
    print(f"env: {json.dumps(results['env'])}", flush=True)
    if args.check:
        c = cross_check(windows=args.windows, length=args.length, seed=args.seed)
        loss_err = float(np.max(np.abs(c["jax_loss"] - c["torch_loss"])))
        ok = loss_err < 1e-4 and c["grad_max_abs_diff"] < 1e-4
        results["check"] = {
            "twinjax_loss": c["jax_loss"].tolist(),
            "torch_loss": c["torch_loss"].tolist(),
            "loss_max_abs_diff": loss_err,
            "grad_max_abs_diff": c["grad_max_abs_diff"],
            "grad_max_abs": c["grad_max_abs"],
            "ok": ok,
        }
        print(
            f"check N=2 losses: twinjax {c['jax_loss'].tolist()} torch {c['torch_loss'].tolist()}"
        )
        print(
            f"check max |loss diff| = {loss_err:.2e}, max |grad diff| = "
            f"{c['grad_max_abs_diff']:.2e} (largest |grad| {c['grad_max_abs']:.2e}): "
            f"{'OK' if ok else 'FAIL'} at 1e-4"
        )
        if not ok:
            raise SystemExit(1)

    print(HEADER, flush=True)
    results["runs"] = []
    sizes = {"windows": args.windows, "length": args.length, "repeats": args.repeats}
    for n in args.n:
        devices = args.devices or _most_devices(n, jax.local_device_count())
        row = {"n": n, "devices": devices, "load_before": _load()}
        row["twinjax"] = time_twinjax(
            n,
            seed=args.seed,
            remat_chunk=args.remat_chunk,
            layout=args.layout,
            kernel=args.kernel,
            block=args.block,
            devices=devices,
            residuals=args.residuals,
            **sizes,
        )
        if args.peer == "torch":
            row["torch"] = time_torch(n, seed=args.seed, threads=args.torch_threads, **sizes)
            tj, th = row["twinjax"], row["torch"]
            row["ratio_torch_over_twinjax"] = th["median_step_s"] / tj["median_step_s"]
            row["ratio_torch_over_twinjax_cpu"] = th["median_step_cpu_s"] / tj["median_step_cpu_s"]
        row["load_after"] = _load()
        results["runs"].append(row)
        _print_row(row)
        if args.json:  # rewritten after each N so that a long run leaves its finished rows
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
    return results


HEADER = (
    f"{'N':>5} {'engine':>8} {'first/compile s':>15} {'median step s':>14} "
    f"{'(cpu s)':>8} {'indiv-steps/s':>14} {'temp MB/indiv':>13}"
)


def _print_row(row: dict) -> None:
    tj = row["twinjax"]
    print(
        f"{row['n']:>5} {'twinjax':>8} {tj['first_call_with_compile_s']:>15.3f} "
        f"{tj['median_step_s']:>14.4f} {tj['median_step_cpu_s']:>8.3f} "
        f"{tj['individual_steps_per_s']:>14.1f} {tj['temp_bytes_per_individual'] / 1e6:>13.3f}"
        f"   ({row['devices']} devices)"
    )
    if "torch" in row:
        th = row["torch"]
        print(
            f"{row['n']:>5} {'torch':>8} {th['first_step_s']:>15.3f} "
            f"{th['median_step_s']:>14.4f} {th['median_step_cpu_s']:>8.3f} "
            f"{th['individual_steps_per_s']:>14.1f}"
            f"   ({th['threads']} threads)"
        )
        print(
            f"{'':>5} ratio torch_time/twinjax_time = {row['ratio_torch_over_twinjax']:.2f}x "
            f"(process CPU time: {row['ratio_torch_over_twinjax_cpu']:.2f}x)"
        )
    print(
        f"{'':>5} load average before {row['load_before']}, after {row['load_after']}", flush=True
    )


if __name__ == "__main__":
    main()
