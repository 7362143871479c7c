"""A process's place in a multi-node job, from SLURM's variables (a fake environment here), and
the ``slurm_multinode`` launcher config that starts one process per GPU."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from twinjax.config import register_configs
from twinjax.federated.execution import DistributedConfig
from twinjax.runtime.cluster import distributed_arguments, first_host, slurm_process

ROOT = Path(__file__).resolve().parents[2]


def _slurm(nodes: int, gpus: int, rank: int, **extra) -> dict:
    """What srun sets in task ``rank`` of a job of ``nodes`` nodes x ``gpus`` tasks."""
    return {
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NODELIST": f"gpu-a[003-{2 + nodes:03d}]",
        "SLURM_STEP_NODELIST": f"gpu-a[003-{2 + nodes:03d}]",
        "SLURM_NTASKS": str(nodes * gpus),
        "SLURM_PROCID": str(rank),
        "SLURM_LOCALID": str(rank % gpus),
        "SLURM_NODEID": str(rank // gpus),
        **extra,
    }


def test_every_task_finds_the_same_coordinator_and_its_own_rank_and_gpu():
    places = [slurm_process(_slurm(2, 4, r)) for r in range(8)]
    # JAX's own SLURM detection: port 61440 + job id mod 4096, on the step's first node
    assert {p.coordinator_address for p in places} == {f"gpu-a003:{61440 + 4242 % 4096}"}
    assert [p.process_id for p in places] == list(range(8))
    assert {p.num_processes for p in places} == {8}
    assert [p.local_device_ids for p in places] == [[r % 4] for r in range(8)]
    # SLURM bound one GPU to the task: it is the process's only (visible) device
    bound = slurm_process(_slurm(2, 4, 5, CUDA_VISIBLE_DEVICES="1"))
    assert bound.local_device_ids is None and bound.process_id == 5
    assert slurm_process({"PATH": "/bin"}) is None  # not in a SLURM job


@pytest.mark.parametrize(
    ("nodelist", "host"),
    [("n1", "n1"), ("node7,node8", "node7"), ("gpu[12-15]", "gpu12"), ("a[3,5]-x,b", "a3")],
)
def test_first_host_of_a_slurm_host_list(nodelist, host):
    assert first_host(nodelist) == host


def test_given_settings_win_over_slurm():
    env = _slurm(1, 2, 1)
    cfg = DistributedConfig(enabled=True, coordinator_address="head:1234")
    args = distributed_arguments(cfg.coordinator_address, cfg.num_processes, cfg.process_id, env)
    assert args == {"coordinator_address": "head:1234", "num_processes": 2, "process_id": 1,
                    "local_device_ids": [1]}  # fmt: skip
    assert distributed_arguments(env={}) == {
        "coordinator_address": None, "num_processes": None, "process_id": None
    }  # fmt: skip


def test_slurm_multinode_launcher_starts_one_process_per_gpu():
    register_configs()
    overrides = ["hydra/launcher=slurm_multinode", "hydra.launcher.partition=gpu",
                 "hydra.launcher.nodes=3", "hydra.launcher.gpus_per_node=8"]  # fmt: skip
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert "SlurmLauncher" in launcher["_target_"] and launcher["partition"] == "gpu"
    assert (launcher["nodes"], launcher["gpus_per_node"], launcher["tasks_per_node"]) == (3, 8, 8)
    assert launcher["gpus_per_task"] is None  # every task sees its node's GPUs, and picks one
    # the environment the job's last task would get, and what it hands jax.distributed
    n = launcher["nodes"] * launcher["tasks_per_node"]
    place = slurm_process(_slurm(launcher["nodes"], launcher["gpus_per_node"], n - 1))
    assert (place.num_processes, place.process_id, place.local_device_ids) == (24, 23, [7])
