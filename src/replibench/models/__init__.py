"""Models: one file per model, a config dataclass with the paper's defaults and an nn.Module."""
