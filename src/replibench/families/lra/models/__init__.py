"""LRA family: models."""
