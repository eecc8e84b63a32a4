"""Datasets: one module (or package) per family, each declaring its files and preprocessing."""
