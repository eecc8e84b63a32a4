"""LRA family: metrics."""
