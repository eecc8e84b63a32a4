"""Issue 12 item 4: preprocessing re-verifies every raw file it reads against its checksum (the
published one, else the user's data.checksums pin), so a raw file changed on disk after its
download is refused with the file, the expected and the found checksum named, and no output
folder is written."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from replibench.cli import main
from replibench.errors import ChecksumError, DataError
from replibench.stages import preprocess_stage, verify_raw_files

ETTH1_SHA256 = "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066"


@pytest.fixture
def etth1(shared_data, tmp_path) -> Path:
    raw = tmp_path / "raw" / "ETTh1.csv"
    raw.parent.mkdir()
    shutil.copyfile(shared_data / "ett" / "ETTh1.csv", raw)
    return raw


def _tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-3] = ord("9") if data[-3] != ord("9") else ord("8")  # one digit of the last row
    path.write_bytes(bytes(data))


def test_a_raw_file_changed_after_download_is_refused_and_nothing_is_written(etth1, tmp_path):
    _tamper(etth1)
    found = hashlib.sha256(etth1.read_bytes()).hexdigest()
    with pytest.raises(ChecksumError, match=rf"ETTh1.csv: changed since it was downloaded: expected "
                                            rf"sha256:{ETTH1_SHA256}, found sha256:{found}; delete it"):
        preprocess_stage(dataset="etth1", raw_files=[etth1], out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_cli_reports_it_without_a_traceback(etth1, tmp_path, capsys):
    _tamper(etth1)
    status = main(["preprocess", "--dataset", "etth1", "--raw", str(etth1), "--out", str(tmp_path / "out")])
    assert status == 2
    assert "replibench preprocess: error: " in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_genuine_file_is_preprocessed_and_its_card_records_the_verified_hash(etth1, tmp_path):
    preprocess_stage(dataset="etth1", raw_files=[etth1], out_dir=tmp_path / "out")
    card = json.loads((tmp_path / "out" / "card.json").read_text())
    assert card["sources"][0]["sha256"] == ETTH1_SHA256
    assert card["sources"][0]["published_checksum"] == f"sha256:{ETTH1_SHA256}"


def test_a_file_that_is_not_one_of_the_dataset_files_is_refused(etth1, tmp_path):
    other = etth1.with_name("ETTh2.csv")
    etth1.rename(other)
    with pytest.raises(DataError, match=r"ETTh2.csv: not a declared raw file of dataset 'etth1' \(declared: ETTh1.csv\)"):
        preprocess_stage(dataset="etth1", raw_files=[other], out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_file_without_a_published_checksum_needs_its_pin(tmp_path):
    raw = tmp_path / "perov_5-train.csv"
    raw.write_text(",material_id,cif,heat_all,heat_ref,dir_gap,ind_gap\n")
    with pytest.raises(ChecksumError, match=r"upstream publishes no checksum and none is pinned for it "
                                            r"\(data.checksums\['perov_5/train.csv'\]\)"):
        verify_raw_files("perov-5", [raw])
    pin = "sha256:" + hashlib.sha256(raw.read_bytes()).hexdigest()
    verify_raw_files("perov-5", [raw], {"perov_5/train.csv": pin})
    with pytest.raises(ChecksumError, match="changed since it was downloaded: expected sha256:0000"):
        verify_raw_files("perov-5", [raw], {"perov_5/train.csv": "sha256:" + "0" * 64})
    with pytest.raises(ChecksumError, match="a sha256 digest has 64 hex digits"):
        verify_raw_files("perov-5", [raw], {"perov_5/train.csv": "sha256:abcd"})


@pytest.mark.workflow
def test_the_workflow_hands_preprocess_the_pins_of_its_files(ett_workdir):
    """The preprocess job receives the data.checksums pins of its own unpublished files, quoted."""
    from spine.test_workflow import snakemake

    pin = "sha256:" + "a" * 64
    result = snakemake(ett_workdir, "-n", "-p", "--config", "preset=paper", "families=[crystals]",
                       "crystals={seeds: [0], runs: [{task: csp, models: [diffcsp], datasets: [perov-5]}]}",
                       f"data={{checksums: {{perov_5/train.csv: '{pin}', carbon_24/train.csv: '{pin}'}}}}",
                       "--", "data/parquet/crystals/perov-5", timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    command = next(line for line in result.stdout.splitlines() if "replibench preprocess" in line)
    assert f"""--checksums='{{"perov_5/train.csv":"{pin}"}}'""" in command  # its own pin only
