"""Flax modules the flax-twin tests name by import string (``flax_nets:Name``)."""

import flax.linen as nn
import jax.numpy as jnp
from flax import nnx


class LinenGRU(nn.Module):
    """flax's own GRU cell over the window (``nn.RNN``): the reference for the built-in GRU."""

    features: int = 8

    @nn.compact
    def __call__(self, x):
        return nn.RNN(nn.GRUCell(self.features))(x)


class NnxGRU(nnx.Module):
    """The same with nnx's GRU cell."""

    def __init__(self, d_in: int, features: int = 8, *, rngs: nnx.Rngs):
        self.rnn = nnx.RNN(nnx.GRUCell(d_in, features, rngs=rngs))

    def __call__(self, x):
        return self.rnn(x)


class NnxMLP(nnx.Module):
    """Two tanh layers applied to each step on its own (causal: a step reads only itself)."""

    def __init__(self, d_in: int, width: int = 8, *, rngs: nnx.Rngs):
        self.first = nnx.Linear(d_in, width, rngs=rngs)
        self.second = nnx.Linear(width, width, rngs=rngs)

    def __call__(self, x):
        return jnp.tanh(self.second(jnp.tanh(self.first(x))))


class Pooled(nn.Module):
    """Wrong shape: one feature vector for the whole window."""

    @nn.compact
    def __call__(self, x):
        return nn.Dense(4)(x).mean(0)


class Backwards(nn.Module):
    """Not causal: each step reads the steps after it."""

    @nn.compact
    def __call__(self, x):
        return nn.Dense(4)(jnp.cumsum(x[::-1], 0)[::-1])


class WithBatchNorm(nn.Module):
    """State other than parameters (batch statistics)."""

    @nn.compact
    def __call__(self, x):
        return nn.BatchNorm(use_running_average=True)(nn.Dense(4)(x))


class WithDropout(nnx.Module):
    """Random in its forward pass (dropout draws from the module's stream)."""

    def __init__(self, d_in: int, *, rngs: nnx.Rngs):
        self.dense = nnx.Linear(d_in, 4, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)

    def __call__(self, x):
        return self.dropout(self.dense(x))


NOT_A_MODULE = 3
