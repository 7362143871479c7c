"""Where a process stands in a multi-process job: the arguments of ``jax.distributed.initialize``.

Under SLURM (``hydra/launcher=slurm_multinode``: one task per GPU) every task reads them from the
variables ``srun`` sets: the coordinator is the job's first node, at a port derived from the job
id as JAX's own SLURM detection derives it (so that every task finds the same one); the process
count is ``SLURM_NTASKS`` and the process id ``SLURM_PROCID``. A task that sees all its node's GPUs
uses the one numbered by its rank on the node (``SLURM_LOCALID``); a task that sees one GPU (SLURM
bound it: ``CUDA_VISIBLE_DEVICES`` names one) uses that one.
"""

import os
from collections.abc import Mapping
from typing import NamedTuple


class ProcessPlace(NamedTuple):
    """The arguments of ``jax.distributed.initialize`` for one process."""

    coordinator_address: str  # "host:port" of process 0
    num_processes: int
    process_id: int
    local_device_ids: list[int] | None  # this process's devices on its host; None: all it sees


def first_host(nodelist: str) -> str:
    """The first host of a SLURM host list.

    >>> first_host("gpu-a[003-004,010],gpu-b7"), first_host("node7,node8"), first_host("n1")
    ('gpu-a003', 'node7', 'n1')
    """
    cut = next((i for i, ch in enumerate(nodelist) if ch in ",["), len(nodelist))
    if cut == len(nodelist) or nodelist[cut] == ",":
        return nodelist[:cut]
    inside = nodelist[cut + 1 :]
    end = next(i for i, ch in enumerate(inside) if ch in ",-]")
    return nodelist[:cut] + inside[:end]


def coordinator_port(job_id: int) -> int:
    """The port JAX's SLURM detection uses for a job (61440-65535, from the job id)."""
    return job_id % 2**12 + (65535 - 2**12 + 1)


def slurm_process(env: Mapping[str, str] | None = None) -> ProcessPlace | None:
    """This process's place in a SLURM job step; None outside one (no ``SLURM_PROCID``).

    Args:
        env: the environment (default: ``os.environ``).

    Returns:
        The coordinator address, process count and id, and local device ids.
    """
    env = os.environ if env is None else env
    if "SLURM_PROCID" not in env or "SLURM_JOB_ID" not in env:
        return None
    nodes = env.get("SLURM_STEP_NODELIST") or env["SLURM_JOB_NODELIST"]
    count = int(env.get("SLURM_NTASKS") or env["SLURM_NPROCS"])
    visible = [d for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    local = None if len(visible) == 1 else [int(env.get("SLURM_LOCALID", "0"))]
    return ProcessPlace(
        coordinator_address=f"{first_host(nodes)}:{coordinator_port(int(env['SLURM_JOB_ID']))}",
        num_processes=count,
        process_id=int(env["SLURM_PROCID"]),
        local_device_ids=local,
    )


def distributed_arguments(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    env: Mapping[str, str] | None = None,
) -> dict:
    """``jax.distributed.initialize``'s keyword arguments: those given, the rest from SLURM.

    >>> distributed_arguments("h0:1234", 2, 1, env={})
    {'coordinator_address': 'h0:1234', 'num_processes': 2, 'process_id': 1}
    """
    given = {"coordinator_address": coordinator_address, "num_processes": num_processes,
             "process_id": process_id}  # fmt: skip
    found = slurm_process(env)
    if found is None:
        return given
    out = {k: found._asdict()[k] if v is None else v for k, v in given.items()}
    if found.local_device_ids is not None:
        out["local_device_ids"] = found.local_device_ids
    return out
