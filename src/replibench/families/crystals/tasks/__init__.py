"""Crystals family: tasks."""
