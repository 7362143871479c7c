"""Adapters that join two layers: recurrent twins as federated clients, and agents driven by
their own twins inside the epidemic step. Generic packages (``federated``, ``abm``) never import
``twins``; the glue lives here."""

from twinjax.adapters import federated_twins, twin_agents

__all__ = ["federated_twins", "twin_agents"]
