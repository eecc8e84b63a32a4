"""Models: one file each, a config dataclass (defaults = the paper's) and a plain nn.Module."""
