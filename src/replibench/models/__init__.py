"""Model implementations: one file per model, each a config dataclass plus an nn.Module."""
