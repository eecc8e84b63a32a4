"""ETT family: models."""
