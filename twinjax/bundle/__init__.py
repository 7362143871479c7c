"""Trained twins that outlive their run: save/load a self-contained bundle, then forecast,
personalize new individuals and update twins with new data, without refitting the cohort.

>>> import twinjax
>>> callable(twinjax.load)
True
"""

from twinjax.bundle.align import align
from twinjax.bundle.store import TwinBundle, load, model_dir, save_bundle
from twinjax.bundle.use import forecast, one_step, personalize, update

__all__ = [
    "TwinBundle",
    "align",
    "forecast",
    "load",
    "model_dir",
    "one_step",
    "personalize",
    "save_bundle",
    "update",
]
