"""EquiformerV2 + Gaunt-Selfmix: the Gaunt paper's OC20 model (its Table 1, L = 4 and 6).

Luo, Chen, Krishnapriyan, ICLR 2024 (arXiv:2401.10216). fairchem's EquiformerV2
(:mod:`replibench.families.oc20.models.equiformer_v2`, golden-tested against fairchem) with one
Gaunt-Selfmix block per transformer block (:mod:`replibench.families.oc20.models.gaunt_selfmix`,
which lists what the paper leaves open and what we chose). Every other hyper-parameter is
EquiformerV2's: the paper adds the block and states no other change. Registry name
``equiformer-v2-gaunt-selfmix``.
"""

from __future__ import annotations

from dataclasses import dataclass

from replibench.families.oc20.models.equiformer_v2 import EquiformerV2, EquiformerV2Config


@dataclass
class EquiformerV2GauntSelfmixConfig(EquiformerV2Config):
    gaunt_selfmix: bool = True  # the Gaunt paper's block after each transformer block's FFN


class EquiformerV2GauntSelfmix(EquiformerV2):
    """EquiformerV2 with Gaunt-Selfmix blocks: ``forward(graph) -> (energy (B,), forces (N, 3))``."""

    TASKS = ("s2ef",)
    Config = EquiformerV2GauntSelfmixConfig

    def __init__(self, config: EquiformerV2GauntSelfmixConfig) -> None:
        if not config.gaunt_selfmix:
            raise ValueError("equiformer-v2-gaunt-selfmix is EquiformerV2 with gaunt_selfmix=True; "
                             "for the plain model use equiformer-v2")
        super().__init__(config)
