"""Families: each expands its config section into runs and resolves each run's settings."""
