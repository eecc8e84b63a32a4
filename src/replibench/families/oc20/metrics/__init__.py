"""OC20 family: metrics."""
