"""Server aggregation rules as ``(init, aggregate)`` pairs, and wrappers that compose them."""

from twinjax.federated.aggregators.base import Aggregator, RoundClients, RoundKeys, round_keys
from twinjax.federated.aggregators.bucketing import bucket_means, bucketed
from twinjax.federated.aggregators.dp import DPState, dp_mean
from twinjax.federated.aggregators.krum import krum, krum_scores, multi_krum, multi_krum_mean
from twinjax.federated.aggregators.mean import mean, weighted_mean
from twinjax.federated.aggregators.median import coordinate_median, median
from twinjax.federated.aggregators.per_step import per_step
from twinjax.federated.aggregators.screen import screen, screen_updates
from twinjax.federated.aggregators.secure import secure_mean
from twinjax.federated.aggregators.trimmed_mean import coordinate_trimmed_mean, trimmed_mean

__all__ = [
    "Aggregator", "RoundClients", "DPState", "RoundKeys", "bucket_means", "bucketed",
    "coordinate_median", "coordinate_trimmed_mean", "dp_mean", "krum", "krum_scores", "mean",
    "median", "multi_krum", "multi_krum_mean", "per_step", "round_keys", "screen",
    "screen_updates", "secure_mean", "trimmed_mean", "weighted_mean",
]  # fmt: skip
