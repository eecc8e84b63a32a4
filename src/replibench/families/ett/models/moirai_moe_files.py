"""Where Moirai-MoE's released weights live, and their checksums (torch-free: read while planning).

Salesforce published each size on the Hugging Face hub as a ``PyTorchModelHubMixin`` folder:
``config.json`` (the architecture) and ``model.safetensors`` (the tensors, a Git-LFS object). What
was read from the hub's pages (search corpus, stored copies of huggingface.co):

* ``moirai-moe-1.0-R-small``: ``model.safetensors`` LFS SHA-256
  ``da1ecb289814183deeade34c0a16110c0314a0fa55f313b7c185a156b8213372``, 469 MB (commit 57dc5e1);
  ``config.json`` 665 bytes (commit aaafc49): d_model 384, d_ff 512, 6 layers, patch 16.
* ``moirai-moe-1.0-R-base``: ``model.safetensors`` 3.74 GB, its SHA-256 was **not** found;
  ``config.json`` 667 bytes (commit eb27dbc): d_model 768, d_ff 1024, 12 layers, patch 16.

The config.json checksums are the SHA-256 of the file ``save_pretrained`` writes for those values
(``json.dumps(config, sort_keys=True, indent=2)``): exactly 665 and 667 bytes, the sizes the hub
lists, so the bytes are pinned even though the page's own hash was not read. The base weights have
no published checksum here: ``data.checksums`` in config.yaml must pin one before they are fetched
(the download refuses an unverified file). The hub's full 40-hex revisions were not found either,
so the URLs use ``main``; the checksums, not the URL, pin the bytes — a changed upload fails the
check instead of changing the numbers.
"""

from __future__ import annotations

from replibench.data.download import RemoteFile

HUB = "https://huggingface.co"
LICENSE = "CC-BY-NC-4.0"

#: size → (hub repository, {file: (checksum or None, size in bytes or None)})
MOIRAI_MOE_FILES: dict[str, tuple[str, dict[str, tuple[str | None, int | None]]]] = {
    "small": ("Salesforce/moirai-moe-1.0-R-small", {
        "config.json": ("sha256:0d3fb9630e2aacbf2de5c747825858ca51d7c9583988c9574481112931cb98a0", 665),
        "model.safetensors": ("sha256:da1ecb289814183deeade34c0a16110c0314a0fa55f313b7c185a156b8213372", None),
    }),
    "base": ("Salesforce/moirai-moe-1.0-R-base", {
        "config.json": ("sha256:95feb218ab5b7217ee1cd757d8032ccd5f20e6dfba5e18b4171ca1ef94d4c769", 667),
        "model.safetensors": (None, None),
    }),
}

#: architecture of each released size (their config.json; checked again when the weights load)
ARCHITECTURES = {"small": {"d_model": 384, "d_ff": 512, "num_layers": 6},
                 "base": {"d_model": 768, "d_ff": 1024, "num_layers": 12}}


def moirai_moe_files(size: str) -> dict[str, RemoteFile]:
    """``{"config": …, "weights": …}`` of one released size. On disk each is named
    ``moirai-moe-1.0-R-<size>.<upstream name>`` (both sizes share ``data/raw/ett/``); the mirror path
    is ``ett/moirai-moe-1.0-R-<size>/<upstream name>``."""
    if size not in MOIRAI_MOE_FILES:
        raise KeyError(f"no released Moirai-MoE size {size!r}; known: {sorted(MOIRAI_MOE_FILES)}")
    repository, files = MOIRAI_MOE_FILES[size]
    folder = repository.split("/")[1]
    out = {}
    for upstream_name, (checksum, byte_size) in files.items():
        key = "config" if upstream_name == "config.json" else "weights"
        out[key] = RemoteFile(name=f"{folder}.{upstream_name}", url=f"{HUB}/{repository}/resolve/main/{upstream_name}",
                              mirror_path=f"ett/{folder}/{upstream_name}", size=byte_size, checksum=checksum,
                              license=LICENSE)
    return out
