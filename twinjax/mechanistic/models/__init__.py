"""Mechanistic models written to the protocol (the UVa/Padova glucose model is
``twinjax.physiology.UVA_PADOVA``)."""

from twinjax.mechanistic.models.pk import ONE_COMPARTMENT_ORAL, TWO_COMPARTMENT, Dosing, dosing
from twinjax.mechanistic.models.seir import SEIR

__all__ = ["ONE_COMPARTMENT_ORAL", "SEIR", "TWO_COMPARTMENT", "Dosing", "dosing"]
