"""OC20 (Open Catalyst 2020) archives: URLs and the MD5s fairchem publishes for them.

Source of every URL and checksum: fairchem ``docs/core/datasets/oc20.md`` at FAIR-Chem/fairchem
commit 31c0963 (2025-04-15), copied into ``shared/research/oc20.md`` §1.3. Only MD5s and rounded
sizes ("344M", "3.4G") are published, so ``RemoteFile.size`` is ``None`` (an exact byte count
was never published) and the rounded size is kept in :data:`PUBLISHED_SIZES` for humans.

Licence: OC20 data is CC BY 4.0; cite Chanussot et al., ACS Catal. 2021.
"""

from __future__ import annotations

from replibench.data.download import RemoteFile
from replibench.families.oc20.types import VAL_SPLITS  # re-exported: the validation splits the files come in

FAMILY = "oc20"
LICENSE = "CC-BY-4.0"
CITATION = (
    "Chanussot, Das, Goyal et al., The Open Catalyst 2020 (OC20) Dataset and Community Challenges, "
    "ACS Catalysis 11, 6059-6072 (2021), doi:10.1021/acscatal.0c04525"
)
BASE_URL = "https://dl.fbaipublicfiles.com/opencatalystproject/data"
#: mirror folder of every OC20 file (``<mirror>/oc20/<file>``)
MIRROR_FOLDER = "oc20"



def _oc20_file(name: str, md5: str) -> RemoteFile:
    return RemoteFile(name=name, url=f"{BASE_URL}/{name}", mirror_path=f"{MIRROR_FOLDER}/{name}",
                      size=None, checksum=f"md5:{md5}", license=LICENSE)


S2EF_TRAIN_200K = _oc20_file("s2ef_train_200K.tar", "f8d0909c2623a393148435dede7d3a46")
S2EF_TRAIN_2M = _oc20_file("s2ef_train_2M.tar", "953474cb93f0b08cdc523399f03f7c36")
S2EF_VAL = {
    "val_id": _oc20_file("s2ef_val_id.tar", "f57f7f5c1302637940f2cc858e789410"),
    "val_ood_ads": _oc20_file("s2ef_val_ood_ads.tar", "431ab0d7557a4639605ba8b67793f053"),
    "val_ood_cat": _oc20_file("s2ef_val_ood_cat.tar", "532d6cd1fe541a0ddb0aa0f99962b7db"),
    "val_ood_both": _oc20_file("s2ef_val_ood_both.tar", "5731862978d80502bbf7017d68c2c729"),
}
IS2RES_LMDBS = _oc20_file("is2res_train_val_test_lmdbs.tar.gz", "cfc04dd2f87b4102ab2f607240d25fb1")

#: Published (rounded) compressed / uncompressed sizes, for planning disk space only.
PUBLISHED_SIZES: dict[str, tuple[str, str]] = {
    "s2ef_train_200K.tar": ("344M", "1.7G"),
    "s2ef_train_2M.tar": ("3.4G", "17G"),
    "s2ef_val_id.tar": ("1.7G", "8.3G"),
    "s2ef_val_ood_ads.tar": ("1.7G", "8.2G"),
    "s2ef_val_ood_cat.tar": ("1.7G", "8.3G"),
    "s2ef_val_ood_both.tar": ("1.9G", "9.5G"),
    "is2res_train_val_test_lmdbs.tar.gz": ("8.1G", "97G"),
}

#: Published frame / system counts (fairchem ``download_data.py`` count table; notes §1.2).
S2EF_FRAME_COUNTS: dict[str, int] = {
    "train_200k": 200_000,
    "train_2m": 2_000_000,
    "val_id": 999_866,
    "val_ood_ads": 999_838,
    "val_ood_cat": 999_809,
    "val_ood_both": 999_944,
}
IS2RE_SYSTEM_COUNTS: dict[str, int] = {
    "train_all": 460_328,
    "val_id": 24_943,
    "val_ood_ads": 24_961,
    "val_ood_cat": 24_963,
    "val_ood_both": 24_987,
}
