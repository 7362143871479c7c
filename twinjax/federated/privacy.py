"""DP-FedAvg: per-client clipping (fixed or adaptive), Gaussian noise, privacy accounting.

The mechanism follows McMahan et al. (2018, "Learning differentially private recurrent language
models"): clip every client update to L2 norm ``C``, sum, add ``N(0, (z C)^2)`` and divide by
the expected number of clients. Adaptive clipping follows Andrew et al. (2021, "Differentially
private learning with adaptive clipping"): ``C <- C exp(-eta (b - gamma))`` where ``b`` is the
noised fraction of clients with norm at most ``C`` (bits shifted to +-1/2, sensitivity 1/2);
the update noise is then raised to
``z_delta = (z^-2 - (2 sigma_b)^-2)^-1/2`` so that both queries together cost noise ``z``.
Accounting uses Google's ``dp_accounting`` (RDP and PLD) for Poisson-sampled Gaussian rounds.
"""

from dataclasses import dataclass
from typing import Literal

import dp_accounting
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray


@dataclass(frozen=True)
class DPConfig:
    noise_multiplier: float = 1.0  # z: total noise of a round, used for accounting
    clip_norm: float = 1.0  # C (initial value when adaptive)
    adaptive: bool = False
    target_quantile: float = 0.5  # gamma
    clip_learning_rate: float = 0.2  # eta
    quantile_noise: float = 5.0  # sigma_b, noise on the count of unclipped clients
    delta: float = 1e-5


def update_noise_multiplier(cfg: DPConfig) -> float:
    """The noise multiplier applied to the summed updates."""
    if not cfg.adaptive:
        return cfg.noise_multiplier
    rest = cfg.noise_multiplier**-2 - (2.0 * cfg.quantile_noise) ** -2
    if rest <= 0:
        raise ValueError(
            f"quantile_noise {cfg.quantile_noise:g} leaves no noise for the updates at "
            f"noise_multiplier {cfg.noise_multiplier:g}: it must exceed noise_multiplier / 2"
        )
    return rest**-0.5


def clip_updates(
    updates: Float[Array, "clients params"], clip_norm: Float[Array, ""]
) -> tuple[Float[Array, "clients params"], Bool[Array, " clients"]]:
    """Scales each row to norm at most ``clip_norm``; also returns which rows were unclipped."""
    norm = jnp.sqrt(jnp.sum(updates**2, axis=1))
    scale = jnp.minimum(1.0, clip_norm / jnp.maximum(norm, 1e-12))
    return updates * scale[:, None], norm <= clip_norm


def noisy_mean(
    clipped_sum: Float[Array, " params"],
    clip_norm: Float[Array, ""],
    expected_clients: float,
    key: PRNGKeyArray,
    cfg: DPConfig,
) -> Float[Array, " params"]:
    z = update_noise_multiplier(cfg)
    noise = z * clip_norm * jax.random.normal(key, clipped_sum.shape)
    return (clipped_sum + noise) / expected_clients


def adapt_clip_norm(
    clip_norm: Float[Array, ""],
    unclipped: Bool[Array, " clients"],
    live: Bool[Array, " clients"],
    expected_clients: float,
    key: PRNGKeyArray,
    cfg: DPConfig,
) -> Float[Array, ""]:
    """Geometric update of the clip norm towards the ``target_quantile`` of update norms."""
    if not cfg.adaptive:
        return clip_norm
    # bits shifted to +-1/2: adding or removing a client moves the sum by at most 1/2, the
    # sensitivity the noise split of :func:`update_noise_multiplier` assumes (Andrew et al.)
    shifted = jnp.sum(jnp.where(live, unclipped - 0.5, 0.0))
    frac = (shifted + cfg.quantile_noise * jax.random.normal(key)) / expected_clients + 0.5
    return clip_norm * jnp.exp(-cfg.clip_learning_rate * (frac - cfg.target_quantile))


def round_event(cfg: DPConfig, sampling_rate: float) -> dp_accounting.DpEvent:
    """One DP-FedAvg round as applied: Poisson sampling of the Gaussian sum of clipped updates
    (noise multiplier :func:`update_noise_multiplier`) and, when ``cfg.adaptive``, the Gaussian
    count of unclipped clients (sensitivity 1/2, noise ``sigma_b``: multiplier ``2 sigma_b``).

    Together the two queries are one Gaussian mechanism of multiplier
    ``cfg.noise_multiplier`` (what :func:`epsilon` accounts); this event spells them out
    (RDP accountant only: dp_accounting's PLD takes a single Gaussian under sampling).
    """
    update = dp_accounting.GaussianDpEvent(update_noise_multiplier(cfg))
    if not cfg.adaptive:
        return dp_accounting.PoissonSampledDpEvent(sampling_rate, update)
    count = dp_accounting.GaussianDpEvent(2.0 * cfg.quantile_noise)
    return dp_accounting.PoissonSampledDpEvent(
        sampling_rate, dp_accounting.ComposedDpEvent([update, count])
    )


def calibrate_noise(
    target_epsilon: float,
    sampling_rate: float,
    rounds: int,
    *,
    delta: float = 1e-5,
    accountant: Literal["rdp", "pld"] = "rdp",
) -> float:
    """The smallest noise multiplier whose ``rounds`` Poisson-sampled Gaussian rounds spend at
    most ``target_epsilon`` at ``delta`` (dp_accounting's ``calibrate_dp_mechanism``).

    >>> z = calibrate_noise(3.0, 0.1, 100)
    >>> epsilon(z, 0.1, 100) <= 3.0 < epsilon(0.98 * z, 0.1, 100)
    True
    """
    if target_epsilon <= 0 or not 0 < sampling_rate <= 1 or rounds < 1:
        raise ValueError(
            f"need target_epsilon > 0, 0 < sampling_rate <= 1 and rounds >= 1; got "
            f"{target_epsilon}, {sampling_rate}, {rounds}"
        )
    return float(
        dp_accounting.calibrate_dp_mechanism(
            lambda: _accountant(accountant),
            lambda z: _event(z, sampling_rate, rounds),
            target_epsilon,
            delta,
            bracket_interval=dp_accounting.ExplicitBracketInterval(0.3, 100.0),
        )
    )


def _accountant(name: str) -> dp_accounting.PrivacyAccountant:
    if name == "rdp":
        return dp_accounting.rdp.RdpAccountant()
    if name == "pld":
        return dp_accounting.pld.PLDAccountant()
    raise ValueError(f"unknown accountant {name!r}; expected 'rdp' or 'pld'")


def _event(noise_multiplier: float, sampling_rate: float, rounds: int) -> dp_accounting.DpEvent:
    round_event = dp_accounting.PoissonSampledDpEvent(
        sampling_rate, dp_accounting.GaussianDpEvent(noise_multiplier)
    )
    return dp_accounting.SelfComposedDpEvent(round_event, rounds)


def epsilon(
    noise_multiplier: float,
    sampling_rate: float,
    rounds: int,
    *,
    delta: float = 1e-5,
    accountant: Literal["rdp", "pld"] = "rdp",
) -> float:
    """Epsilon at ``delta`` of ``rounds`` Poisson-sampled Gaussian rounds (RDP or PLD)."""
    acc = _accountant(accountant)
    acc.compose(_event(noise_multiplier, sampling_rate, rounds))
    return float(acc.get_epsilon(delta))
