"""Crystals family: models."""
