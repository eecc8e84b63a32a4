"""OC20 family: models."""
