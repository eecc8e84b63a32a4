"""Datasets: remote files, readers and preprocessing into Parquet, one module per concept."""
