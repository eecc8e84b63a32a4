"""ETT family: datasets."""
