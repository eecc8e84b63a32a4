"""LRA family: datasets."""
