"""S2EF reader: synthetic EMT archives round trip, rejects, and the real DFT fixtures."""

from __future__ import annotations

import io
import lzma
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from replibench.data.checksum import sha256_file
from replibench.data.tables import read_data_card
from replibench.families.oc20.datasets.frames import parse_txt_line, read_ase_frames, s2ef_schema
from replibench.families.oc20.datasets.s2ef import convert_s2ef_archive
from replibench.errors import DataError


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _extxyz(frames) -> bytes:
    from ase.io import write

    buffer = io.StringIO()
    write(buffer, frames, format="extxyz")
    return buffer.getvalue().encode()


def _labelled_frame(seed: int, *, with_forces: bool = True):
    from ase.build import add_adsorbate, fcc111
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.constraints import FixAtoms

    slab = fcc111("Cu", size=(2, 2, 2), vacuum=5.0)
    add_adsorbate(slab, "O", 1.8, "fcc")
    slab.pbc = True
    slab.rattle(0.02, seed=seed)
    slab.info.pop("adsorbate_info", None)
    tags = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2])
    slab.set_tags(tags)
    slab.set_constraint(FixAtoms(mask=tags == 0))
    slab.calc = EMT()
    energy, forces = slab.get_potential_energy(), slab.get_forces(apply_constraint=False)
    frame = slab.copy()
    frame.calc = SinglePointCalculator(frame, energy=energy, **({"forces": forces} if with_forces else {}))
    return frame


def test_txt_line_format():
    line = parse_txt_line("random1234,frame56,-300.125\n")
    assert (line.sid, line.fid, line.reference_energy) == (1234, 56, -300.125)
    assert parse_txt_line("random1,frame2").reference_energy is None
    for bad in ("random1,frame2,abc", "sys1,frame2,1.0", "random1;frame2;1.0", "random1,frame2,nan"):
        with pytest.raises(ValueError):
            parse_txt_line(bad)


def test_synthetic_dataset_preprocessed(tiny_synthetic, tiny_parquet):
    folder, remotes = tiny_synthetic
    card = read_data_card(tiny_parquet)
    assert card["dataset"] == "s2ef-synthetic-emt" and card["notes"]["synthetic"] is True
    assert card["rows"] == {"train": 24, "val_id": 4, "val_ood_ads": 4, "val_ood_cat": 4, "val_ood_both": 4}
    assert card["rejected_rows"] == 0 and len(pq.read_table(tiny_parquet / "rejects.parquet")) == 0
    assert [s["sha256"] for s in card["sources"]] == [r.checksum.split(":")[1] for r in remotes]
    shards = sorted((tiny_parquet / "train").glob("part-*.parquet"))
    assert [p.name for p in shards] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert pq.read_schema(shards[0]).remove_metadata() == s2ef_schema()


def test_energies_and_forces_round_trip_to_emt(tiny_synthetic, tiny_parquet):
    """Rows re-labelled with EMT give the stored total energy and forces; energy_ref = E - txt ref."""
    from ase import Atoms
    from ase.calculators.emt import EMT

    folder, _ = tiny_synthetic
    with tarfile.open(folder / "s2ef_synthetic_emt_train.tar") as tar:
        txt = lzma.decompress(tar.extractfile("s2ef_synthetic_emt_train/0.txt.xz").read()).decode().splitlines()
    rows = pq.read_table(tiny_parquet / "train" / "part-00000.parquet").to_pylist()
    assert len(rows) == len(txt) == 10
    for row, line in zip(rows, txt):
        log = parse_txt_line(line)
        assert (row["sid"], row["fid"]) == (log.sid, log.fid)
        assert row["energy_ref"] == pytest.approx(row["energy"] - log.reference_energy, abs=1e-9)
        n = row["natoms"]
        assert len(row["pos"]) == len(row["forces"]) == 3 * n and len(row["tags"]) == n
        atoms = Atoms(numbers=row["atomic_numbers"], positions=np.reshape(row["pos"], (n, 3)),
                      cell=np.reshape(row["cell"], (3, 3)), pbc=True)
        atoms.calc = EMT()
        assert atoms.get_potential_energy() == pytest.approx(row["energy"], abs=2e-6)
        np.testing.assert_allclose(atoms.get_forces(), np.reshape(row["forces"], (n, 3)), atol=1e-7)
        tags, fixed = np.array(row["tags"]), np.array(row["fixed"])
        assert np.array_equal(fixed, tags == 0) and set(tags.tolist()) <= {0, 1, 2} and (tags == 2).any()
        assert np.abs(np.reshape(row["forces"], (n, 3))[fixed]).max() > 0  # fixed atoms keep their forces


def test_build_is_deterministic(tmp_path, tiny_options):
    from replibench.families.oc20.datasets.synthetic import build_split_archive, synthetic_splits

    spec = synthetic_splits(tiny_options)[2]
    build_split_archive(spec, 2, 7, tmp_path / "a.tar")
    build_split_archive(spec, 2, 7, tmp_path / "b.tar")
    assert sha256_file(tmp_path / "a.tar") == sha256_file(tmp_path / "b.tar")
    build_split_archive(spec, 2, 8, tmp_path / "c.tar")
    assert sha256_file(tmp_path / "c.tar") != sha256_file(tmp_path / "a.tar")


def test_bad_frames_become_rejects(tmp_path):
    good = [_labelled_frame(seed) for seed in range(3)]
    no_forces = _labelled_frame(9, with_forces=False)
    text = _extxyz(good[:2]) + _extxyz([no_forces]) + _extxyz(good[2:])
    txt = b"random1,frame0,-1.0\nrandom1,frame1,-1.0\nrandom2,frame0,-1.0\nrandom3,frameX,-1.0\nrandom4,frame0,-1.0\n"
    archive = _tar(tmp_path / "s2ef_bad.tar", {"d/0.extxyz.xz": lzma.compress(text), "d/0.txt.xz": lzma.compress(txt)})
    rows, rejects = convert_s2ef_archive(archive, tmp_path / "out")
    assert rows == 2
    reasons = {(e["row"], e["source"].split(":")[1]): e["reason"] for e in rejects.entries}
    assert "no forces" in reasons[(3, "d/0.extxyz.xz")]
    assert "expected 'random<sid>,frame<fid>" in reasons[(4, "d/0.txt.xz")]
    assert "no frame 5" in reasons[(5, "d/0.txt.xz")]
    table = pq.read_table(tmp_path / "out" / "part-00000.parquet")
    assert table.column("sid").to_pylist() == [1, 1]


def test_truncated_file_and_orphans(tmp_path):
    text = _extxyz([_labelled_frame(0)]) + b"12\nLattice=broken\nCu 0 0 0\n"
    archive = _tar(tmp_path / "t.tar", {"0.extxyz.xz": lzma.compress(text),
                                        "0.txt.xz": lzma.compress(b"random1,frame0,0\nrandom1,frame1,0\n")})
    rows, rejects = convert_s2ef_archive(archive, tmp_path / "out")
    assert rows == 1
    assert any("rest of the file unreadable" in e["reason"] for e in rejects.entries)
    orphan = _tar(tmp_path / "o.tar", {"0.extxyz.xz": lzma.compress(text)})
    with pytest.raises(DataError, match="without their partner"):
        convert_s2ef_archive(orphan, tmp_path / "out2")
    frames = _extxyz([_labelled_frame(0), _labelled_frame(1)])
    dup = _tar(tmp_path / "d.tar", {"0.extxyz.xz": lzma.compress(frames),
                                    "0.txt.xz": lzma.compress(b"random1,frame0,0\nrandom1,frame0,0\n")})
    with pytest.raises(DataError, match="more than once"):
        convert_s2ef_archive(dup, tmp_path / "out3")


def test_real_dft_frame_json(oc20_shared, tmp_path):
    """fairchem's VASP adslab fixture (CO on Al8Cu8Se16): read directly and through the S2EF path."""
    from ase.io import read

    [row] = read_ase_frames(oc20_shared / "fairchem_test_adslab_atoms.json", sid=7)
    assert row["natoms"] == 34 and row["energy"] == pytest.approx(-135.66393572)
    assert int(np.sum(row["fixed"])) == 24 and row["energy_ref"] is None
    forces = np.reshape(row["forces"], (34, 3))
    assert np.abs(forces[~row["fixed"]]).max() == pytest.approx(0.23846654)  # this fixture stores 0 on fixed atoms
    atoms = read(oc20_shared / "fairchem_test_adslab_atoms.json")
    archive = _tar(tmp_path / "real.tar", {"s/0.extxyz.xz": lzma.compress(_extxyz([atoms])),
                                           "s/0.txt.xz": lzma.compress(b"random7,frame0,-100.5\n")})
    count, rejects = convert_s2ef_archive(archive, tmp_path / "out")
    assert count == 1 and len(rejects) == 0
    [via_extxyz] = pq.read_table(tmp_path / "out" / "part-00000.parquet").to_pylist()
    assert via_extxyz["energy"] == pytest.approx(row["energy"], abs=1e-9)
    assert via_extxyz["energy_ref"] == pytest.approx(row["energy"] + 100.5, abs=1e-9)
    np.testing.assert_allclose(via_extxyz["forces"], row["forces"], atol=1e-8)  # extxyz keeps 8 decimals
    np.testing.assert_allclose(via_extxyz["pos"], row["pos"], atol=1e-8)
    assert via_extxyz["fixed"] == row["fixed"].tolist() and via_extxyz["tags"] == row["tags"].tolist()


def test_real_dft_frame_traj(oc20_shared):
    """The OC20 pipeline's VASP frame of a bare Ir12Re4 slab (no tags in the file)."""
    with pytest.raises(ValueError, match="no tags"):
        read_ase_frames(oc20_shared / "ocdata_test_27998_slab_all.traj", sid=1)
    [row] = read_ase_frames(oc20_shared / "ocdata_test_27998_slab_all.traj", sid=1, default_tag=0)
    assert row["natoms"] == 16 and row["energy"] == pytest.approx(-140.07, abs=0.01)
    assert int(np.sum(row["fixed"])) == 8
    assert sorted(set(row["atomic_numbers"].tolist())) == [75, 77]


#: archive_content_sha256 of the TINY_OPTIONS build (depends on ASE and NumPy, pinned in the lock;
#: not on the system's xz encoder). A change means the generator's output changed: results on the
#: synthetic set are then not comparable with earlier ones.
TINY_CONTENT_SHA256 = {
    "s2ef_synthetic_emt_train.tar": "0ef317d1acc98c8d938f1bde40accc2cda2ec746d3a890a9e2d6ed6c5ef08d67",
    "s2ef_synthetic_emt_val_id.tar": "d4ffd402a33505219dd288db3b543b111d3b4d196fd732796a01c39dc9ee2f60",
    "s2ef_synthetic_emt_val_ood_ads.tar": "b0f211fa921bba6f7d34892133c8d91d4cc3e69208b7aec44a8e909ba5cfa9cd",
    "s2ef_synthetic_emt_val_ood_cat.tar": "923dca263b5f950b32e6ddf3bb827cde960997d77f4e5a735f76df85d2f2ef0e",
    "s2ef_synthetic_emt_val_ood_both.tar": "9fa087775cd437399498a2eef1a8cff5360dba589233904c836ffc05195ab54a",
}


def test_tiny_build_content_is_pinned(tiny_synthetic):
    from replibench.families.oc20.datasets.synthetic import archive_content_sha256

    folder, remotes = tiny_synthetic
    assert {r.name: archive_content_sha256(folder / r.name) for r in remotes} == TINY_CONTENT_SHA256


def test_synthetic_tars_through_the_http_mirror(tiny_synthetic, file_server, tmp_path):
    """Download (mirror URL, size, sha256) → the real reader, as an official tarball would go."""
    import shutil

    from replibench.data.download import fetch
    from replibench.families.oc20.datasets.s2ef import preprocess_s2ef_archives
    from replibench.families.oc20.datasets.synthetic import S2EF_SYNTHETIC_EMT
    from replibench.errors import ChecksumError

    folder, remotes = tiny_synthetic
    shutil.copytree(folder, file_server.root / "oc20")
    fetched = [fetch(r, tmp_path / "raw" / r.name, mirror=file_server.url, progress=False) for r in remotes]
    assert [f.source for f in fetched] == [f"{file_server.url}/oc20/{r.name}" for r in remotes]
    archives = [(split, tmp_path / "raw" / r.name, r.url) for split, r in zip(S2EF_SYNTHETIC_EMT.splits, remotes)]
    card = preprocess_s2ef_archives(archives, tmp_path / "out", dataset="s2ef-synthetic-emt", synthetic=True)
    assert card["rows"]["train"] == 24 and card["rejected_rows"] == 0
    corrupted = file_server.root / "oc20" / remotes[1].name
    data = bytearray(corrupted.read_bytes())
    data[-600] ^= 0xFF  # one flipped byte inside the last member: same size, other checksum
    corrupted.write_bytes(bytes(data))
    with pytest.raises(ChecksumError):
        fetch(remotes[1], tmp_path / "again" / remotes[1].name, mirror=file_server.url, progress=False)


def test_generated_dataset_builds_then_reads_its_archives(tmp_path, tiny_synthetic, tiny_options):
    from replibench.families.oc20.datasets.synthetic import S2EF_SYNTHETIC_EMT

    assert S2EF_SYNTHETIC_EMT.remote_files == () and S2EF_SYNTHETIC_EMT.name == "s2ef-synthetic-emt"
    card = S2EF_SYNTHETIC_EMT.preprocess([], tmp_path / "out", options=tiny_options)
    _, remotes = tiny_synthetic
    assert [s["sha256"] for s in card["sources"]] == [r.checksum.split(":")[1] for r in remotes]
    assert card["notes"]["synthetic"] is True and card["notes"]["generator"]["seed"] == 7
    assert "SYNTHETIC" in card["citation"] and sorted(p.name for p in (tmp_path / "out" / "archives").iterdir()) \
        == sorted(r.name for r in remotes)
    with pytest.raises(DataError, match="takes no raw files"):
        S2EF_SYNTHETIC_EMT.preprocess([tmp_path / "x.tar"], tmp_path / "out2")
    from replibench.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown option"):
        S2EF_SYNTHETIC_EMT.preprocess([], tmp_path / "out3", options={"systems": 3})


def test_parallel_conversion_matches_serial(tiny_synthetic, tmp_path):
    folder, _ = tiny_synthetic
    archive = folder / "s2ef_synthetic_emt_train.tar"
    serial, _ = convert_s2ef_archive(archive, tmp_path / "serial", workers=1)
    parallel, _ = convert_s2ef_archive(archive, tmp_path / "parallel", workers=2)
    assert serial == parallel == 24
    for shard in sorted((tmp_path / "serial").glob("*.parquet")):
        assert pq.read_table(shard).equals(pq.read_table(tmp_path / "parallel" / shard.name))
