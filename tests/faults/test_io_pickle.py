"""Malicious pickles (already refused; kept refused): the OC20 LMDB record unpickler
(families/oc20/datasets/unpickle.py) and the CIFAR-10 batch unpickler (families/lra/datasets/unpickle.py) resolve
only their allow-lists, so no payload runs — whatever the pickle protocol, however the callable is
spelled, and nested inside an otherwise valid record. Each case asserts the named refusal and that
the payload's side effect (a marker file) never happened."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

from replibench.families.lra.datasets.readers import read_cifar_batch
from replibench.families.oc20.datasets.unpickle import UnsafePickleError, restricted_loads
from replibench.errors import DataError


def _payloads(marker: Path) -> dict[str, object]:
    command = f"touch {marker}"

    class System:
        def __reduce__(self):
            return os.system, (command,)

    class Eval:
        def __reduce__(self):
            return builtins.eval, (f"__import__('os').system({command!r})",)

    class Popen:
        def __reduce__(self):
            return subprocess.Popen, (["touch", str(marker)],)

    class Import:  # __import__('os') — the first step of a two-step gadget
        def __reduce__(self):
            return builtins.__import__, ("os",)

    return {"os.system": System(), "builtins.eval": Eval(), "subprocess.Popen": Popen(),
            "builtins.__import__": Import(), "nested-in-a-record": {"data": [1, 2], "labels": [System()]}}


CASES = ["os.system", "builtins.eval", "subprocess.Popen", "builtins.__import__", "nested-in-a-record"]
PROTOCOLS = [0, 2, 4, 5]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("case", CASES)
def test_the_oc20_record_unpickler_refuses_without_running(tmp_path, case, protocol):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_payloads(marker)[case], protocol=protocol)
    with pytest.raises(UnsafePickleError, match=r"LMDB key '7': pickle asks for global .* not on the allow-list"):
        restricted_loads(payload, key="7")
    assert not marker.exists()


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("case", CASES)
def test_the_cifar_batch_unpickler_refuses_without_running(tmp_path, case, protocol):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_payloads(marker)[case], protocol=protocol)
    with pytest.raises(DataError, match=r"cifar/data_batch_1: refused or malformed pickle: global .* is not allowed"):
        read_cifar_batch(payload, source="cifar/data_batch_1")
    assert not marker.exists()


def test_a_torch_payload_smuggled_through_load_from_bytes_is_refused(tmp_path):
    """torch's own `_load_from_bytes` runs `torch.load(weights_only=False)`; ours is weights-only."""
    import torch

    marker = tmp_path / "pwned"
    inner = io.BytesIO()
    torch.save(_payloads(marker)["os.system"], inner, _use_new_zipfile_serialization=False)

    class Smuggled:
        def __reduce__(self):
            from torch.storage import _load_from_bytes
            return _load_from_bytes, (inner.getvalue(),)

    with pytest.raises(pickle.UnpicklingError):
        restricted_loads(pickle.dumps({"pos": Smuggled()}, protocol=4), key="3")
    assert not marker.exists()


def test_a_hand_written_global_of_an_uninstalled_module_is_never_imported(tmp_path):
    evil = b"cos\nsystem\n(Vtouch " + str(tmp_path / "pwned").encode() + b"\ntR."  # protocol 0, by hand
    with pytest.raises(UnsafePickleError, match="os.system"):
        restricted_loads(evil)
    with pytest.raises(DataError, match="global os.system is not allowed"):
        read_cifar_batch(evil, source="batch")
    assert not (tmp_path / "pwned").exists()


def test_a_genuine_cifar_batch_still_loads():
    data = np.repeat(np.array([10, 20, 30], dtype=np.uint8), 1024)[None].repeat(2, axis=0)  # R, G, B planes
    images, labels = read_cifar_batch(pickle.dumps({b"data": data, b"labels": [3, 9]}, protocol=2), source="batch")
    assert images.shape == (2, 32, 32, 3) and labels.tolist() == [3, 9]
    assert images[1, 31, 31].tolist() == [10, 20, 30]  # channel-major rows → pixels of (R, G, B)
