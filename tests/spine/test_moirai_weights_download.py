"""Moirai-MoE's released weights are downloads like any other (issue 17): pinned checksums, the local
mirror, a checksum mismatch refused, an interrupted transfer resumed, then loaded from safetensors."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
import torch

from replibench.data.download import fetch
from replibench.errors import ChecksumError
from replibench.families.ett.family import FAMILY
from replibench.families.ett.models.moirai_moe import (MoiraiMoE, MoiraiMoEConfig, hub_config, load_released_weights,
                                                       write_checkpoint)
from replibench.families.ett.models.moirai_moe_files import ARCHITECTURES, moirai_moe_files
from replibench.registry import remote_file


def test_every_released_file_is_declared_with_its_mirror_path_and_resolves_by_name():
    names = {remote.name for remote in FAMILY.released_files()}
    assert names == {"moirai-moe-1.0-R-small.config.json", "moirai-moe-1.0-R-small.model.safetensors",
                     "moirai-moe-1.0-R-base.config.json", "moirai-moe-1.0-R-base.model.safetensors"}
    small = moirai_moe_files("small")
    assert small["weights"].checksum == "sha256:da1ecb289814183deeade34c0a16110c0314a0fa55f313b7c185a156b8213372"
    assert small["weights"].mirror_path == "ett/moirai-moe-1.0-R-small/model.safetensors"
    assert remote_file("ett", "moirai-moe-1.0-R-base.model.safetensors").checksum is None  # must be pinned


@pytest.mark.parametrize("size", ["small", "base"])
def test_the_config_checksums_are_those_of_the_released_architectures(size):
    """The pinned config.json hashes are of what save_pretrained writes for the hub's values: the byte
    counts the hub lists (665 / 667) are reproduced exactly."""
    config = MoiraiMoEConfig(**ARCHITECTURES[size])
    text = json.dumps(hub_config(config), sort_keys=True, indent=2).encode()
    remote = moirai_moe_files(size)["config"]
    assert len(text) == remote.size and remote.checksum == f"sha256:{hashlib.sha256(text).hexdigest()}"


def _tiny_checkpoint(folder):
    torch.manual_seed(0)
    model = MoiraiMoE(MoiraiMoEConfig(d_model=64, d_ff=16, num_layers=1))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_()
    write_checkpoint(model, folder)
    return model


def test_a_mismatched_config_is_refused_and_a_cut_transfer_resumes_to_loadable_weights(file_server, tmp_path):
    served = file_server.root / "ett" / "moirai-moe-1.0-R-small"
    model = _tiny_checkpoint(served)  # a tiny checkpoint in the released format, under the real paths
    remotes = moirai_moe_files("small")
    raw = tmp_path / "raw"
    # the tiny config.json is not the released one: its checksum fails, nothing is kept under the name
    with pytest.raises(ChecksumError):
        fetch(remotes["config"], raw / remotes["config"].name, mirror=file_server.url, progress=False)
    assert not (raw / remotes["config"].name).exists()
    # the real spec, re-pinned to the tiny files (what `data.checksums` does), through the same path
    payload = (served / "model.safetensors").read_bytes()
    weights = dataclasses.replace(remotes["weights"], size=len(payload),
                                  checksum=f"sha256:{hashlib.sha256(payload).hexdigest()}")
    config_bytes = (served / "config.json").read_bytes()
    config = dataclasses.replace(remotes["config"], size=len(config_bytes),
                                 checksum=f"sha256:{hashlib.sha256(config_bytes).hexdigest()}")
    file_server.behaviour.cut_after_bytes = len(payload) // 3
    result = fetch(weights, raw / weights.name, mirror=file_server.url, backoff_s=0.01, progress=False)
    assert result.downloaded and result.bytes == len(payload)
    ranges = [r["range"] for r in file_server.behaviour.requests if r["path"].endswith("model.safetensors")]
    assert ranges[0] is None and ranges[1].startswith("bytes=")  # the second request resumed
    file_server.behaviour.cut_after_bytes = None
    fetch(config, raw / config.name, mirror=file_server.url, progress=False)
    loaded = MoiraiMoE(MoiraiMoEConfig(d_model=64, d_ff=16, num_layers=1))
    load_released_weights(loaded, raw / config.name, raw / weights.name)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
