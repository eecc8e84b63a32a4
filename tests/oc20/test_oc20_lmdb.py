"""IS2RE/IS2RS LMDB converter and the restricted unpickler, on an LMDB built here.

The records imitate fairchem's: ``pickle.dumps(Data, protocol=-1)`` where ``Data`` is
``torch_geometric.data.data.Data``. PyG is not installed, so a stand-in module of that name is
registered only while the records are pickled (pickle stores the class by module and name).
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from replibench.families.oc20.datasets.lmdb import convert_lmdb_in_subprocess, is2re_schema
from replibench.families.oc20.datasets.unpickle import (
    ALLOWED_GLOBALS, PygDataRecord, UnsafePickleError, restricted_loads,
)

lmdb = pytest.importorskip("lmdb")


@contextlib.contextmanager
def fake_pyg():
    """Register stand-in ``torch_geometric.data.{data,storage}`` modules while pickling."""
    data_mod = types.ModuleType("torch_geometric.data.data")
    storage_mod = types.ModuleType("torch_geometric.data.storage")

    class Data:  # PyG < 2: attributes live in __dict__
        pass

    class GlobalStorage:  # PyG >= 2: Data._store holds the mapping
        pass

    Data.__module__, Data.__qualname__ = "torch_geometric.data.data", "Data"
    GlobalStorage.__module__, GlobalStorage.__qualname__ = "torch_geometric.data.storage", "GlobalStorage"
    data_mod.Data, storage_mod.GlobalStorage = Data, GlobalStorage
    names = ["torch_geometric", "torch_geometric.data", "torch_geometric.data.data", "torch_geometric.data.storage"]
    saved = {n: sys.modules.get(n) for n in names}
    sys.modules.update({"torch_geometric": types.ModuleType("torch_geometric"),
                        "torch_geometric.data": types.ModuleType("torch_geometric.data"),
                        "torch_geometric.data.data": data_mod, "torch_geometric.data.storage": storage_mod})
    try:
        yield Data, GlobalStorage
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def system_fields(seed: int, *, relaxed: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    n = 5
    fields = {
        "atomic_numbers": torch.tensor([29.0, 29.0, 29.0, 8.0, 1.0]),  # fairchem stores floats
        "pos": torch.tensor(rng.normal(size=(n, 3)) + 5.0, dtype=torch.float32),
        "cell": torch.tensor(np.diag([7.0, 7.0, 20.0])[None], dtype=torch.float32),  # (1, 3, 3)
        "natoms": n, "tags": torch.tensor([0, 1, 1, 2, 2]), "fixed": torch.tensor([1.0, 0, 0, 0, 0]),
        "sid": 1000 + seed, "y_init": -1.5 + seed,
    }
    if relaxed:
        fields["y_relaxed"] = -0.25 * seed
        fields["pos_relaxed"] = fields["pos"] + 0.1
    return fields


class Malicious:
    def __reduce__(self):
        return os.system, (f"touch {MARKER}",)


MARKER = Path("/tmp") / f"replibench-pwned-{os.getpid()}"


def write_lmdb(path: Path, records: dict[str, bytes]) -> None:
    env = lmdb.open(str(path), subdir=False, map_size=1 << 26)
    with env.begin(write=True) as txn:
        for key, value in records.items():
            txn.put(key.encode("ascii"), value)
    env.close()


def pyg1_record(fields: dict) -> bytes:
    with fake_pyg() as (Data, _):
        data = Data()
        data.__dict__.update(fields, x=None, edge_index=None)
        return pickle.dumps(data, protocol=-1)


def pyg2_record(fields: dict) -> bytes:
    with fake_pyg() as (Data, GlobalStorage):
        data, store = Data(), GlobalStorage()
        store.__dict__.update(_mapping=dict(fields), _parent=data)
        data.__dict__.update(_store=store)
        return pickle.dumps(data, protocol=4)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("is2re")
    torch_payload = io.BytesIO()
    torch.save(Malicious(), torch_payload, _use_new_zipfile_serialization=False)

    class EvilStorage:  # asks torch.storage._load_from_bytes to unpickle a code-running payload
        def __reduce__(self):
            from torch.storage import _load_from_bytes
            return _load_from_bytes, (torch_payload.getvalue(),)

    missing = system_fields(5)
    del missing["pos"]
    records = {
        "0": pyg1_record(system_fields(0)),
        "1": pickle.dumps(Malicious(), protocol=-1),
        "2": pyg2_record(system_fields(2)),
        "3": pickle.dumps({"payload": EvilStorage()}, protocol=-1),
        "4": pyg1_record(missing),
        "5": pyg1_record(system_fields(6, relaxed=False)),
        "10": pyg1_record(system_fields(10)),
        "length": pickle.dumps(7, protocol=-1),
    }
    lmdb_path = folder / "data.lmdb"
    write_lmdb(lmdb_path, records)
    summary = convert_lmdb_in_subprocess(lmdb_path, folder / "out.parquet", folder / "rejects.parquet", timeout_s=120)
    return summary, pq.read_table(folder / "out.parquet"), pq.read_table(folder / "rejects.parquet").to_pylist()


def test_good_records_converted(converted):
    summary, table, _ = converted
    assert summary["records"] == 7 and summary["declared_length"] == 7 and summary["rows"] == 4
    assert table.schema.remove_metadata() == is2re_schema()
    rows = table.to_pylist()
    assert [r["lmdb_key"] for r in rows] == [0, 2, 5, 10]  # numeric key order, not "10" < "2"
    first = rows[0]
    expected = system_fields(0)
    assert first["sid"] == 1000 and first["natoms"] == 5
    assert first["atomic_numbers"] == [29, 29, 29, 8, 1] and first["tags"] == [0, 1, 1, 2, 2]
    assert first["fixed"] == [True, False, False, False, False]
    np.testing.assert_allclose(first["pos"], expected["pos"].numpy().reshape(-1))
    np.testing.assert_allclose(first["pos_relaxed"], expected["pos_relaxed"].numpy().reshape(-1))
    assert first["cell"] == [7.0, 0, 0, 0, 7.0, 0, 0, 0, 20.0]
    assert first["energy_init"] == -1.5 and first["energy_relaxed"] == 0.0
    assert rows[1]["sid"] == 1002 and rows[1]["energy_relaxed"] == -0.5  # PyG >= 2 layout
    assert rows[2]["energy_relaxed"] is None and rows[2]["pos_relaxed"] is None  # test-split style


def test_malicious_records_refused_with_key_and_class(converted):
    _, _, rejects = converted
    assert not MARKER.exists(), "a malicious record ran code"
    by_row = {r["row"]: r for r in rejects}
    assert set(by_row) == {2, 4, 5}  # keys 1, 3, 4 (row = key + 1)
    assert "LMDB key '1'" in by_row[2]["reason"] and by_row[2]["raw"] in ("posix.system", "os.system")
    assert "allow-list" in by_row[2]["reason"]
    assert "LMDB key '3'" in by_row[4]["reason"] and "UnpicklingError" in by_row[4]["reason"]  # weights_only refused
    assert "fields missing: ['pos']" in by_row[5]["reason"]


def test_restricted_unpickler_units():
    value = {"t": torch.arange(4, dtype=torch.float64).reshape(2, 2), "n": 3, "s": "x", "l": [1.5, None]}
    decoded = restricted_loads(pickle.dumps(value, protocol=4))
    assert torch.equal(decoded["t"], value["t"]) and decoded["n"] == 3 and decoded["l"] == [1.5, None]
    with pytest.raises(UnsafePickleError) as caught:
        restricted_loads(pickle.dumps(Malicious()), key="9")
    assert caught.value.key == "9" and caught.value.name == "system"
    for dangerous in (eval, exec, __import__, getattr, os.system, pickle.loads, torch.load):
        with pytest.raises(UnsafePickleError):
            restricted_loads(pickle.dumps(dangerous))
    # a global of a module that is not even installed is refused, never imported
    evil = b"creplibench_evil\nrun\n(tR."  # GLOBAL replibench_evil.run, then call it
    with pytest.raises(UnsafePickleError, match="replibench_evil.run"):
        restricted_loads(evil)
    assert "replibench_evil" not in sys.modules
    assert set(ALLOWED_GLOBALS) == {
        ("torch_geometric.data.data", "Data"), ("torch_geometric.data.data", "DataEdgeAttr"),
        ("torch_geometric.data.data", "DataTensorAttr"), ("torch_geometric.data.storage", "GlobalStorage"),
        ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor"),
        ("torch.storage", "_load_from_bytes"), ("collections", "OrderedDict"),
    }


def test_pyg_record_stand_in(tmp_path):
    record = restricted_loads(pyg1_record(system_fields(1)))
    assert isinstance(record, PygDataRecord)
    assert set(record.fields()) >= {"atomic_numbers", "pos", "cell", "tags", "fixed", "sid", "y_relaxed"}
    record2 = restricted_loads(pyg2_record(system_fields(2)))
    assert record2.fields()["sid"] == 1002
    # nothing of PyG is imported to decode (PyG is installed, so check in a fresh interpreter)
    import subprocess

    payload = tmp_path / "record.pkl"
    payload.write_bytes(pyg1_record(system_fields(1)))
    code = ("import sys; from replibench.families.oc20.datasets.unpickle import restricted_loads; "
            "record = restricted_loads(open(sys.argv[1], 'rb').read()); "
            "print(record.fields()['sid'], 'torch_geometric' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(payload)], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1001", "False"]


def test_record_pickled_by_the_installed_pyg(tmp_path):
    """A real ``torch_geometric.data.Data`` (PyG 2.x pickle: DataEdgeAttr, GlobalStorage, storages
    via _load_from_bytes) decodes with the allow-list alone, in the converter's child process."""
    from torch_geometric.data import Data

    fields = system_fields(3)
    path = tmp_path / "pyg.lmdb"
    write_lmdb(path, {"0": pickle.dumps(Data(**fields), protocol=-1), "length": pickle.dumps(1)})
    summary = convert_lmdb_in_subprocess(path, tmp_path / "out.parquet", tmp_path / "rejects.parquet")
    assert summary["rows"] == 1 and summary["rejected"] == 0
    [row] = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert row["sid"] == 1003 and row["energy_relaxed"] == pytest.approx(-0.75)
    np.testing.assert_allclose(row["pos_relaxed"], fields["pos_relaxed"].numpy().reshape(-1), rtol=1e-6)


def test_is2re_dataset_preprocess(tmp_path):
    """The tarball layout data/is2re/<subset>/<split>/data.lmdb → one Parquet folder per split."""
    import tarfile

    from replibench.data.tables import read_data_card
    from replibench.families.oc20.datasets.is2re import IS2RE_10K

    members = {}
    for index, (subset, split) in enumerate([("10k", "train"), ("100k", "train"), ("all", "val_id"),
                                             ("all", "val_ood_ads"), ("all", "val_ood_cat"), ("all", "val_ood_both"),
                                             ("all", "test_id")]):
        path = tmp_path / f"{index}.lmdb"
        write_lmdb(path, {"0": pyg1_record(system_fields(index)), "1": pyg2_record(system_fields(index + 20)),
                          "length": pickle.dumps(2)})
        members[f"is2res_train_val_test_lmdbs/data/is2re/{subset}/{split}/data.lmdb"] = path
    assert IS2RE_10K.wanted("x/data/is2re/100k/train/data.lmdb") is None
    assert IS2RE_10K.wanted("x/data/is2re/all/val_ood_cat/data.lmdb") == "val_ood_cat"
    archive = tmp_path / "is2res_train_val_test_lmdbs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, path in members.items():
            tar.add(path, arcname=name)
    card = IS2RE_10K.preprocess([archive], tmp_path / "out")
    assert card["rows"] == {"train": 2, "val_id": 2, "val_ood_ads": 2, "val_ood_cat": 2, "val_ood_both": 2}
    assert card["rejected_rows"] == 0 and read_data_card(tmp_path / "out")["notes"]["subset"] == "10k"
    train = pq.read_table(tmp_path / "out" / "train" / "part-00000.parquet")
    assert train.column("sid").to_pylist() == [1000, 1020]  # the 10k LMDB, not the 100k one
    assert not list((tmp_path / "out").glob("is2re-spool-*"))  # spooled LMDBs removed
