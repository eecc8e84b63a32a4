"""OC20 family: datasets."""
