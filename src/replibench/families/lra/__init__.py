"""LRA family (Long Range Arena, state tracking; S4/S4D/S5, Transformer, Mamba, DeltaNet): one package."""
