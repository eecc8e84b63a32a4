"""Tasks: how batches are built from Parquet, the loss, how predictions are made and scored."""
