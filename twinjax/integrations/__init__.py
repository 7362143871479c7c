"""Integrations: twinjax run by another framework, each module importing that framework at its
top, so each needs its own optional dependency.

- :mod:`twinjax.integrations.flower`: any federated algorithm of :mod:`twinjax.federated` as a
  Flower ``ClientApp`` and ``ServerApp`` (``pip install "twinjax[flower]"``).

This package imports none of them, and no other twinjax package imports them (an import
contract in ``pyproject.toml``): ``import twinjax.integrations.flower`` is the one line that
needs Flower.
"""
