"""Federated twins, then the same rounds on Flower.

Six people's sensor records (the synthetic cohort) never leave their devices: each is one
federated client holding windows of its own record. A population twin is trained by FedAdam:
first with twinjax's own rounds (clients vmapped in one process), then with the same algorithm
as a Flower ClientApp + ServerApp, run here in one process by `flower.run_local` (the same
apps and messages as Flower's simulation engine, and as `flwr run` on real machines: README,
"Deploy with Flower"). Both give the same twin.

    python examples/federated_flower.py
"""

import jax
import numpy as np

from twinjax import federated as fl
from twinjax.adapters import federated_twins as ft
from twinjax.config import DataConfig, ModelConfig
from twinjax.data import synthetic_cohort
from twinjax.integrations import flower
from twinjax.pipeline import prepare_cohort, twin_spec
from twinjax.twins import init_params

ROUNDS = 3
k_data, k_init, k_fed = jax.random.split(jax.random.key(0), 3)
cohort = synthetic_cohort(k_data, n_individuals=6, n_steps=64)
arrays, _ = prepare_cohort(cohort, DataConfig(n_individuals=6, n_steps=64))
spec = twin_spec(cohort, ModelConfig(hidden=8, attention=False))
data = ft.window_client_data(arrays, length=16, stride=16)  # client k: person k's windows


def make():
    """The server's algorithm and the twin it starts from (the same on every machine)."""
    algo = fl.fedadam(ft.twin_loss(spec), server_lr=0.05, clients_per_round=3, local_lr=0.05,
                      batch_size=2, local_epochs=1, weighting="samples")  # fmt: skip
    return algo, init_params(k_init, spec)


def load_client(cid: int):
    """What client ``cid`` holds: its own windows, nothing else."""
    o, n = int(data.offset[cid]), int(data.count[cid])
    return jax.tree.map(lambda a: a[o : o + n], data.samples)


# 1. twinjax's own rounds
algo, params = make()
state, history = fl.run_rounds(algo, algo.init(params, num_clients=data.num_clients), data,
                               k_fed, rounds=ROUNDS, progress=False)  # fmt: skip

# 2. the same rounds as Flower apps
runs = []
server = flower.server_app(make, num_clients=data.num_clients, rounds=ROUNDS, key=k_fed,
                           done=runs.append)  # fmt: skip
flower.run_local(server, flower.client_app(make, load_client), num_clients=data.num_clients)

gap = max(float(np.abs(a - b).max())
          for a, b in zip(jax.tree.leaves(runs[0].state.params), jax.tree.leaves(state.params),
                          strict=True))  # fmt: skip
print(f"{ROUNDS} FedAdam rounds over {data.num_clients} clients; the twin from Flower differs "
      f"from twinjax's by at most {gap:.1e}")  # fmt: skip
for h in runs[0].history:
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in h.items()})
assert gap < 1e-5
