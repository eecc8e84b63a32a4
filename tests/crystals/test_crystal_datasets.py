"""Crystal datasets: download specs, smoke splits, CDVAE preprocessing on real rows, bad input."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from crystal_testdata import csv_head

from replibench.data.checksum import file_digest, verify_checksum
from replibench.data.download import fetch
from replibench.families.crystals.datasets import (
    CARBON24,
    DATASETS,
    MP20_FORK_SUBSET,
    PEROV5,
    UNPUBLISHED_CHECKSUMS,
    crystal_schema,
    preprocess,
    remote_file,
    smoke_split_files,
)
from replibench.errors import ChecksumError, DataError

SCHEMA_CONTRACT = [  # the columns and types the models side relies on
    ("material_id", "string"), ("cif", "string"), ("num_atoms", "int32"), ("atomic_numbers", "list<item: int8>"),
    ("frac_coords", "list<item: double>"), ("lattice", "fixed_size_list<item: double>[9]"),
    ("lengths", "fixed_size_list<item: double>[3]"), ("angles", "fixed_size_list<item: double>[3]"),
    ("formula", "string"),
]


def _manifest(data_dir: Path, folder: str) -> dict[str, dict[str, str]]:
    text = (data_dir / folder / "MANIFEST.tsv").read_text()
    return {row["file"]: row for row in csv.DictReader(io.StringIO(text), delimiter="\t")}


def test_remote_files_carry_the_manifest_checksums(data_dir):
    for split in ("train", "val", "test"):
        spec = remote_file("mp-20", split)
        row = _manifest(data_dir, "mp_20")[f"{split}.csv"]
        assert spec.checksum == f"git-sha1:{row['git_blob_sha1']}" and spec.name == f"mp_20-{split}.csv"
        assert spec.url == row["upstream_url"] and spec.mirror_path == f"mp_20/{split}.csv"
    for dataset, folder in (("perov-5", "perov_5"), ("carbon-24", "carbon_24")):
        for split in ("val", "test"):
            spec = remote_file(dataset, split)
            row = _manifest(data_dir, folder)[f"{split}.csv"]
            assert spec.checksum == f"sha256:{row['sha256']}" and spec.size == int(row["bytes"])
            assert spec.mirror_path == f"{folder}/{split}.csv" and spec.url == row["upstream_url"]
            assert verify_checksum(data_dir / folder / f"{split}.csv", spec.checksum)[0]
    names = [remote.name for spec in (PEROV5, CARBON24) for remote in spec.remote_files]
    assert len(names) == len(set(names)) == 6  # one raw folder per family: names must not collide


def test_the_rehearsal_stand_in_for_mp20_is_the_fork_subset_with_its_manifest_checksums(data_dir, tmp_path):
    """mp-20-fork-subset: genuine MP-20 rows the mirror holds under mp_20/subset, fetched with the
    sha256 and size of that folder's MANIFEST; the raw names must not collide with MP-20's own."""
    manifest = _manifest(data_dir, "mp_20/subset")
    for split in ("train", "val", "test"):
        spec = remote_file("mp-20-fork-subset", split)
        row = manifest[f"{split}.csv"]
        assert spec.checksum == f"sha256:{row['sha256']}" and spec.size == int(row["bytes"])
        assert spec.mirror_path == f"mp_20/subset/{split}.csv" and spec.name == f"mp_20_fork_subset-{split}.csv"
        assert spec.url.startswith(f"https://raw.githubusercontent.com/OPRYAN90/cdvae/{row['upstream_commit']}")
        assert spec.url.endswith(f"/data/mp_20/{split}.csv")
        result = fetch(spec, tmp_path / spec.name, mirror=str(data_dir), progress=False)
        assert result.sha256 == row["sha256"]
    assert not {r.name for r in MP20_FORK_SUBSET.remote_files} & {remote_file("mp-20", s).name for s in ("train", "val", "test")}


def test_train_files_without_published_checksum_need_a_pinned_one(tmp_path):
    assert set(UNPUBLISHED_CHECKSUMS) == {("perov-5", "train"), ("carbon-24", "train")}
    remote = remote_file("perov-5", "train")
    assert remote.checksum is None and remote.mirror_path == "perov_5/train.csv"
    mirror = tmp_path / "mirror"
    (mirror / "perov_5").mkdir(parents=True)
    (mirror / "perov_5" / "train.csv").write_text(",material_id,cif,heat_all,heat_ref,dir_gap,ind_gap\n")
    with pytest.raises(ChecksumError, match=r"perov_5/train.csv.*sha256") as error:
        fetch(remote, tmp_path / "raw" / remote.name, mirror=str(mirror), progress=False)
    assert "data" in str(error.value) and not (tmp_path / "raw" / remote.name).exists()
    pinned = "git-sha1:" + file_digest(mirror / "perov_5" / "train.csv", "git-sha1")
    result = fetch(remote, tmp_path / "raw" / remote.name, mirror=str(mirror), progress=False, pinned_checksum=pinned)
    assert result.sha256 == file_digest(mirror / "perov_5" / "train.csv", "sha256")  # recorded for the data card
    with pytest.raises(ChecksumError, match="mismatch"):
        fetch(remote, tmp_path / "other" / remote.name, mirror=str(mirror), progress=False,
              pinned_checksum="sha256:" + "0" * 64)


def test_smoke_splits_use_val_for_training_and_test_for_testing():
    for dataset in ("perov-5", "carbon-24"):
        files = smoke_split_files(dataset)
        assert files["train"] == files["val"] == remote_file(dataset, "val")
        assert files["test"] == remote_file(dataset, "test")
    with pytest.raises(DataError, match="not a smoke dataset"):
        smoke_split_files("mp-20")


def test_schema_contract_is_kept_for_every_dataset():
    for dataset, spec in DATASETS.items():
        schema = crystal_schema(dataset)
        assert [(f.name, str(f.type)) for f in schema][: len(SCHEMA_CONTRACT)] == SCHEMA_CONTRACT
        for name in spec.float_properties:
            assert str(schema.field(name).type) == "double" and schema.field(name).nullable


@pytest.mark.parametrize("dataset, folder, split, rows", [
    ("perov-5", "perov_5", "test", 150), ("carbon-24", "carbon_24", "val", 150),
])
def test_preprocess_real_rows_as_cdvae(tmp_path, data_dir, dataset, folder, split, rows):
    from pymatgen.core import Lattice

    from replibench.families.crystals.canonical import build_crystal

    source = csv_head(data_dir / folder / f"{split}.csv", tmp_path / f"{split}.csv", rows)
    card = preprocess({split: source}, tmp_path / "out", dataset=dataset, workers=1)
    assert card["rows"] == {split: rows} and card["rejected_rows"] == 0
    table = pq.read_table(tmp_path / "out" / f"{split}.parquet")
    assert table.schema.equals(crystal_schema(dataset))
    first = table.slice(0, 1).to_pylist()[0]
    reference = build_crystal(first["cif"], niggli=True, primitive=False)
    assert first["atomic_numbers"] == list(reference.atomic_numbers)
    np.testing.assert_allclose(np.reshape(first["lattice"], (3, 3)), reference.lattice.matrix, atol=1e-12)
    np.testing.assert_allclose(np.reshape(first["lattice"], (3, 3)),
                               Lattice.from_parameters(*first["lengths"], *first["angles"]).matrix, atol=1e-9)
    frac = np.reshape(first["frac_coords"], (-1, 3))
    np.testing.assert_allclose(np.mod(frac - reference.frac_coords + 0.5, 1.0) - 0.5, 0.0, atol=1e-9)
    for row in table.to_pylist():
        assert len(row["atomic_numbers"]) == row["num_atoms"] and len(row["frac_coords"]) == 3 * row["num_atoms"]
        assert all(0.0 <= x < 1.0 for x in row["frac_coords"])
    assert (tmp_path / "out" / "rejects.parquet").exists() and (tmp_path / "out" / "card.json").exists()


def test_preprocess_mp20_subset_keeps_properties(tmp_path, data_dir):
    source = data_dir / "mp_20" / "subset" / "test.csv"  # genuine rows, not the official split: test only
    preprocess({"test": source}, tmp_path, dataset="mp-20", workers=1)
    rows = pq.read_table(tmp_path / "test.parquet").to_pylist()
    assert len(rows) == 142
    assert rows[0]["material_id"] == "mp-10009" and rows[0]["formula"] == "GaTe"
    assert math.isclose(rows[0]["formation_energy_per_atom"], -0.5750923537499997)
    assert rows[0]["spacegroup_number"] == 194 and rows[0]["source_index"] == 6000 and rows[0]["source_row"] == 1
    assert max(r["num_atoms"] for r in rows) <= 20


def _bad_csv(path: Path, good_cif: str) -> Path:
    empty_cell_cif = good_cif.split("loop_\n _atom_site_type_symbol")[0]  # cell, no atoms
    lines = [",material_id,cif,energy_per_atom",
             f'0,good,"{good_cif}",-1.0',
             '1,garbage,"this is not a CIF",-1.0',
             f'2,no-atoms,"{empty_cell_cif}",-1.0',
             f'3,nan-prop,"{good_cif}",nan',
             f'4,text-prop,"{good_cif}",abc']
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_rows_are_rejected_with_row_numbers(tmp_path, data_dir):
    import pandas as pd

    good = pd.read_csv(data_dir / "carbon_24" / "test.csv").cif[0]
    card = preprocess({"test": _bad_csv(tmp_path / "bad.csv", good)}, tmp_path / "out", dataset="carbon-24")
    assert card["rows"] == {"test": 1} and card["rejected_rows"] == 4
    rejects = {r["row"]: r["reason"] for r in pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()}
    assert set(rejects) == {2, 3, 4, 5}
    assert "CIF could not be built" in rejects[2] and "CIF could not be built" in rejects[3]
    assert "energy_per_atom" in rejects[4] and "NaN" in rejects[4]
    assert "unparseable number" in rejects[5]


def test_empty_split_and_fully_rejected_split_are_errors(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text(",material_id,cif,energy_per_atom\n")
    with pytest.raises(DataError, match="no data rows"):
        preprocess({"test": empty}, tmp_path / "out", dataset="carbon-24")
    junk = tmp_path / "junk.csv"
    junk.write_text(',material_id,cif,energy_per_atom\n0,x,"not a cif",1.0\n')
    with pytest.raises(DataError, match="every row"):
        preprocess({"test": junk}, tmp_path / "out", dataset="carbon-24")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("material_id,structure\n1,abc\n")
    with pytest.raises(DataError, match="lacks columns"):
        preprocess({"test": wrong}, tmp_path / "out", dataset="carbon-24")


def test_parallel_preprocessing_equals_serial(tmp_path, data_dir):
    source = csv_head(data_dir / "perov_5" / "val.csv", tmp_path / "val.csv", 60)
    preprocess({"val": source}, tmp_path / "serial", dataset="perov-5", workers=1)
    preprocess({"val": source}, tmp_path / "parallel", dataset="perov-5", workers=2)
    assert pq.read_table(tmp_path / "serial" / "val.parquet").equals(pq.read_table(tmp_path / "parallel" / "val.parquet"))


def test_preprocess_adds_cdvae_crystalnn_graphs_when_asked(tmp_path, data_dir):
    """``crystal_graph: crystalnn`` (a CDVAE run uses the dataset): every row holds the CrystalNN graph of
    its canonical cell, as the graph module builds it from the stored structure; the CDVAE reader
    turns it into (E, 2) edges and (E, 3) images."""
    from replibench.families.crystals.crystal_graph import crystalnn_graph, structure_from_arrays
    from replibench.families.crystals.tasks.cdvae_data import read_crystal_graphs

    source = csv_head(data_dir / "perov_5" / "val.csv", tmp_path / "perov_5-val.csv", 6)
    card = PEROV5.preprocess([source], tmp_path / "out", options={"crystal_graph": "crystalnn"})
    assert card["rows"] == {"val": 6}
    path = tmp_path / "out" / "val.parquet"
    table = pq.read_table(path)
    assert table.schema.equals(crystal_schema("perov-5", crystal_graph="crystalnn"))
    row = table.slice(2, 1).to_pylist()[0]
    structure = structure_from_arrays(row["lengths"], row["angles"], row["atomic_numbers"],
                                      np.reshape(row["frac_coords"], (-1, 3)))
    edges, images = crystalnn_graph(structure)
    assert row["crystalnn_edges"] == edges.T.reshape(-1).tolist() and row["crystalnn_images"] == images.reshape(-1).tolist()
    graphs = read_crystal_graphs(path, "heat_ref")
    assert graphs.edges[graphs.first_bond[2]:graphs.first_bond[2] + graphs.num_bonds[2]].T.tolist() == edges.tolist()
    assert graphs.property.shape == (6, 1)
    with pytest.raises(DataError, match="crystal_graph='voronoi'"):
        PEROV5.preprocess([source], tmp_path / "bad", options={"crystal_graph": "voronoi"})
