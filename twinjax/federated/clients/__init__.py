"""Client updates as ``(init, update)`` pairs: SGD/FedProx, SCAFFOLD, personalized."""

from twinjax.federated.clients.base import ClientOutput, ClientStates, ClientTask, ClientUpdate
from twinjax.federated.clients.personal import (
    PersonalConfig,
    fine_tune,
    personal_params,
    personal_update,
)
from twinjax.federated.clients.scaffold import scaffold_update
from twinjax.federated.clients.sgd import sgd_update

__all__ = [
    "ClientOutput", "ClientStates", "ClientTask", "ClientUpdate", "PersonalConfig",
    "fine_tune", "personal_params", "personal_update", "scaffold_update", "sgd_update",
]  # fmt: skip
