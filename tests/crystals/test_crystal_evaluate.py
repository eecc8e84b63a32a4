"""End-to-end: bring-your-own CSVs for CSP and generation, convention gating, parallel == serial."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from replibench.errors import DataError
from replibench.families.crystals.metrics import METRICS, evaluate_crystal_files

# Rows of the MP-20 test subset (genuine MP-20 crystals, not the official split; tests only):
# 1, 2, 10 pass SMACT; 11 (Sm(CoB)2) and 14 (Hf2AlSi) fail it. All have 2–5 atoms (fast fingerprints).
ROWS = [1, 2, 10, 11, 14]
SMACT_VALID = [True, True, True, False, False]


@pytest.fixture(scope="module")
def truth_rows(data_dir) -> pd.DataFrame:
    frame = pd.read_csv(data_dir / "mp_20" / "subset" / "test.csv", dtype=str, keep_default_na=False)
    return frame.iloc[ROWS][["material_id", "cif"]].reset_index(drop=True)


def perturbed_cif(cif: str, seed: int) -> str:
    from pymatgen.core import Structure
    from pymatgen.io.cif import CifWriter

    structure = Structure.from_str(cif, fmt="cif")
    rng = np.random.default_rng(seed)
    moved = Structure(structure.lattice, structure.species,
                      structure.frac_coords + rng.normal(0.0, 0.003, structure.frac_coords.shape))
    return str(CifWriter(moved))


@pytest.fixture(scope="module")
def csv_files(tmp_path_factory, truth_rows) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("byo")
    truth_rows.to_csv(folder / "truth.csv", index=False)
    pred = []
    for i, (mid, cif) in enumerate(zip(truth_rows.material_id, truth_rows.cif)):
        samples = [perturbed_cif(cif, i), "this CIF does not parse"]
        pred += [(mid, s) for s in (samples[::-1] if i == 0 else samples)]  # first crystal: bad sample first
    pd.DataFrame(pred, columns=["material_id", "cif"]).to_csv(folder / "pred.csv", index=False)
    gen = list(truth_rows.cif) + ["this CIF does not parse"]
    pd.DataFrame({"material_id": [f"g{i}" for i in range(len(gen))], "cif": gen}).to_csv(folder / "gen.csv", index=False)
    return {"truth": folder / "truth.csv", "pred": folder / "pred.csv", "gen": folder / "gen.csv"}


@pytest.mark.parametrize("convention, k1, k2", [
    # cdvae/diffcsp gate on SMACT: crystals 4–5 never match; crystal 1's first sample does not parse.
    ("cdvae", 40.0, 60.0), ("diffcsp", 40.0, 60.0),
    # crysbfn skips SMACT for CSP: every perturbed copy counts.
    ("crysbfn", 80.0, 100.0),
])
def test_csp_match_rates_per_convention(csv_files, convention, k1, k2):
    result = evaluate_crystal_files(csv_files["pred"], csv_files["truth"], task="csp", convention=convention,
                                    dataset="mp-20", workers=1)
    assert result["variants"]["k1"]["match_rate"] == pytest.approx(k1)
    assert result["variants"]["k2"]["match_rate"] == pytest.approx(k2)
    assert 0.0 < result["variants"]["k2"]["rmse"] < 0.05
    assert result["counts"]["samples_total"] == 10 and result["counts"]["samples_constructed"] == 5
    assert result["convention"] == convention and result["protocol"]["convention"]["name"] == convention


def test_gen_suite_on_known_crystals(csv_files):
    result = evaluate_crystal_files(csv_files["gen"], csv_files["truth"], task="gen", convention="cdvae",
                                    dataset="mp-20", workers=1, allow_fewer_valid=True)
    metrics = result["variants"]["default"]
    assert metrics["struct_validity"] == pytest.approx(100.0 * 5 / 6)
    assert metrics["comp_validity"] == pytest.approx(100.0 * sum(SMACT_VALID) / 6)
    assert metrics["cov_recall"] == pytest.approx(100.0)  # every test crystal was generated exactly
    assert metrics["cov_precision"] == pytest.approx(100.0 * 5 / 6)  # the unparseable one stays in the denominator
    assert metrics["wdist_prop"] is None and "property model" in result["unavailable"]["wdist_prop"]
    assert result["counts"]["num_valid"] == 3 and result["protocol"]["emd_sample_size"] == 3
    assert set(metrics) <= set(METRICS)


@pytest.mark.workflow  # two spawned pools import pymatgen + matminer each: ~35 s on a loaded 2-core machine
def test_parallel_evaluation_equals_serial(csv_files):
    for task, pred, extra in (("csp", "pred", {}), ("gen", "gen", {"allow_fewer_valid": True})):
        serial = evaluate_crystal_files(csv_files[pred], csv_files["truth"], task=task, convention="diffcsp",
                                        dataset="mp-20", workers=1, **extra)
        parallel = evaluate_crystal_files(csv_files[pred], csv_files["truth"], task=task, convention="diffcsp",
                                          dataset="mp-20", workers=2, **extra)
        assert serial == parallel


def test_bad_input_files_name_the_problem(tmp_path, csv_files):
    stranger = tmp_path / "stranger.csv"
    pd.DataFrame({"material_id": ["mp-nope"], "cif": ["x"]}).to_csv(stranger, index=False)
    with pytest.raises(DataError, match="mp-nope"):
        evaluate_crystal_files(stranger, csv_files["truth"], task="csp", convention="cdvae", dataset="mp-20")
    no_cif = tmp_path / "no_cif.csv"
    pd.DataFrame({"material_id": ["a"], "structure": ["x"]}).to_csv(no_cif, index=False)
    with pytest.raises(DataError, match="lacks columns"):
        evaluate_crystal_files(no_cif, csv_files["truth"], task="csp", convention="cdvae", dataset="mp-20")
    with pytest.raises(ValueError, match="convention"):
        evaluate_crystal_files(csv_files["pred"], csv_files["truth"], task="csp", convention="paper", dataset="mp-20")


def test_property_model_feeds_the_formation_energy_emd(truth_rows):
    from replibench.families.crystals.metrics import evaluate_gen

    def density_as_property(structures):  # a stand-in model: the EMD must equal the density EMD
        return [s.density for s in structures]

    result = evaluate_gen(generated=list(truth_rows.cif), truths=list(truth_rows.cif), dataset="mp-20",
                          convention="crysbfn", allow_fewer_valid=True, property_model=density_as_property)
    metrics = result["variants"]["default"]
    assert "wdist_prop" not in result["unavailable"]
    assert metrics["wdist_prop"] == pytest.approx(metrics["wdist_density"])


def test_diffcsp_one_sample_gate_also_requires_a_valid_ground_truth():
    from replibench.families.crystals.metrics import CrystalArrays, evaluate_csp

    def nacl(x: float) -> CrystalArrays:  # Na–Cl distance 5·x Å
        return CrystalArrays((11, 17), np.array([[0.0, 0.0, 0.0], [x, 0.0, 0.0]]), np.full(3, 5.0), np.full(3, 90.0))

    truth, prediction = nacl(0.09), nacl(0.11)  # truth 0.45 Å apart (invalid), prediction 0.55 Å (valid)
    rates = {name: evaluate_csp(predictions=[[prediction, prediction]], truths=[truth], convention=name)["variants"]
             for name in ("cdvae", "diffcsp", "crysbfn")}
    assert rates["cdvae"]["k1"]["match_rate"] == 100.0 and rates["crysbfn"]["k1"]["match_rate"] == 100.0
    assert rates["diffcsp"]["k1"]["match_rate"] == 0.0  # RecEval: pred.valid and gt.valid
    assert rates["diffcsp"]["k2"]["match_rate"] == 100.0  # RecEvalBatch gates on the prediction only
