"""ETT family: metrics."""
