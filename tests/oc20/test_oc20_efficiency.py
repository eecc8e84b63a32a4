"""The Gaunt-paper efficiency comparison module: the two sides compute the same thing, rows are sane.

No timing assertions here (speed is measured by benchmarks/oc20_gaunt_efficiency.py); only that
each setting's Gaunt result equals e3nn's and that rows carry units, fields and the paper's figures.
"""

from __future__ import annotations

import math

import pytest
import torch

from replibench.families.oc20.efficiency import (
    PAPER_COMMIT,
    PAPER_MS,
    PAPER_NOTEBOOKS,
    SETTINGS,
    EfficiencyRow,
    claim_file,
    gaunt_constant,
    measure,
    paper_figure,
    to_e3nn_layout,
)
from replibench.families.oc20.models.gaunt import (
    GauntPowerSum,
    GauntTensorProduct,
    cg_tensor_product,
    gaunt_path_constant,
    gaunt_paths,
)

torch.set_num_threads(1)


@pytest.fixture
def float64_default():
    """e3nn builds its CG buffers in the default dtype: float64 for the exactness checks."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("setting,correlation", [("feature-interaction", None), ("convolution", None),
                                                 ("many-body", 3), ("many-body", 4)])
def test_gaunt_equals_e3nn_in_float64(setting, correlation, float64_default):
    rows = measure(setting, [2, 3], correlation=correlation, repeats=1, channels=3, batch=2, dtype="float64")
    expected = ["e3nn", "escn"] if setting == "convolution" else ["e3nn"]
    assert [(r.L, r.baseline) for r in rows] == [(L, b) for L in (2, 3) for b in expected]
    for row in rows:
        assert row.max_abs_difference < 1e-12 * max(row.reference_max_abs, 1.0), row


@pytest.mark.parametrize("setting", ["feature-interaction", "convolution"])
def test_gaunt_equals_e3nn_at_L8_in_float64(setting, float64_default):
    """L = 8 (notebook convention: inputs to degree 7, outputs to 14 > e3nn's SH limit of 12): the
    Gaunt side (SH above 12 from the Legendre recursion) still equals e3nn's CG product, and eSCN."""
    rows = measure(setting, [8], repeats=1, channels=2, batch=1, dtype="float64")
    assert [r.baseline for r in rows] == (["e3nn", "escn"] if setting == "convolution" else ["e3nn"])
    for row in rows:
        assert row.lmax == 7 and row.paper_gaunt_ms == PAPER_MS[(setting, 8, None)]["gaunt"]
        assert row.max_abs_difference < 1e-12 * max(row.reference_max_abs, 1.0), row


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_rows_have_units_fields_and_paper_figures(setting):
    rows = measure(setting, [2], repeats=2, channels=4, batch=2, backward=True)
    assert [r.baseline for r in rows] == (["e3nn", "escn"] if setting == "convolution" else ["e3nn"])
    row = rows[0]
    if setting == "convolution":
        assert rows[1].paper_baseline_ms == PAPER_MS[("convolution", 2, None)]["escn"]
        assert rows[1].max_abs_difference < 1e-5 * rows[1].reference_max_abs
    assert isinstance(row, EfficiencyRow)
    assert (row.L, row.lmax, row.pass_, row.baseline, row.dtype) == (2, 1, "forward+backward", "e3nn", "float32")
    assert row.correlation == (3 if setting == "many-body" else None)
    for name in ("gaunt_ms", "baseline_ms", "gaunt_median_ms", "baseline_median_ms"):
        value = getattr(row, name)
        assert math.isfinite(value) and 0 < value < 60_000, (name, value)  # milliseconds
    assert row.gaunt_ms <= row.gaunt_median_ms and row.baseline_ms <= row.baseline_median_ms
    assert row.ratio == pytest.approx(row.gaunt_ms / row.baseline_ms)
    assert row.max_abs_difference < 1e-5 * row.reference_max_abs  # float32 on inputs in [0, 1)
    # the paper's figures for the same (setting, L): forward times of its notebooks
    assert row.paper_gaunt_ms == PAPER_MS[(setting, 2, row.correlation)]["gaunt"]
    assert row.paper_baseline_ms == PAPER_MS[(setting, 2, row.correlation)]["e3nn"]
    claim = row.as_claim_row()
    assert {"L", "pass", "baseline", "gaunt_ms", "baseline_ms"} <= set(claim)
    assert claim["pass"] == "forward+backward" and row.as_dict()["pass"] == "forward+backward"


def test_paper_table_matches_the_notebooks_outputs():
    assert len(PAPER_COMMIT) == 40 and set(PAPER_NOTEBOOKS) == set(SETTINGS)
    assert paper_figure("feature-interaction", 2, None, "e3nn") == 6.67
    assert paper_figure("feature-interaction", 2, None, "gaunt") == 0.76
    assert paper_figure("feature-interaction", 14, None, "gaunt") == 3.07
    assert paper_figure("convolution", 12, None, "escn") == 308.97
    assert paper_figure("many-body", 2, 7, "mace") == 11.40
    assert paper_figure("many-body", 6, 3, "e3nn") == 3648.32
    assert paper_figure("feature-interaction", 15, None, "gaunt") is None
    assert sorted(L for s, L, _ in PAPER_MS if s == "feature-interaction") == list(range(2, 15))
    assert sorted(L for s, L, _ in PAPER_MS if s == "convolution") == list(range(2, 13))
    assert sorted((L, nu) for s, L, nu in PAPER_MS if s == "many-body") == [
        (2, 3), (2, 4), (2, 5), (2, 6), (2, 7), (3, 3), (4, 3), (5, 3), (6, 3)]
    # the speed-ups the notebooks printed (e.g. "L = 2, C = 128 efficient is 8.78 x faster")
    assert PAPER_MS[("feature-interaction", 2, None)]["e3nn"] / PAPER_MS[("feature-interaction", 2, None)]["gaunt"] == \
        pytest.approx(8.78, abs=0.01)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="unknown setting"):
        measure("nope", [2])
    with pytest.raises(ValueError, match="many-body only"):
        measure("convolution", [2], correlation=3)
    with pytest.raises(ValueError, match="correlation >= 2"):
        measure("many-body", [2], correlation=1)
    with pytest.raises(ValueError, match="no baseline"):
        measure("feature-interaction", [2], baselines=("escn",))


def test_power_sum_is_the_sum_of_truncated_gaunt_powers(float64_default):
    """GauntPowerSum(x) = x + sum_nu trunc_lmax(x^nu), x^nu by repeated (exact) Gaunt products."""
    lmax, correlation = 2, 4
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(5, (lmax + 1) ** 2, generator=generator)  # (B, K)
    expected, power = x.clone(), x
    for nu in range(2, correlation + 1):
        power = GauntTensorProduct(lmax, (nu - 1) * lmax, nu * lmax)(x, power)  # degrees 0..nu*lmax
        expected = expected + power[:, : (lmax + 1) ** 2]
    torch.testing.assert_close(GauntPowerSum(lmax, correlation)(x), expected, atol=1e-10, rtol=1e-10)


def test_channels_as_irreps_multiplicity_equal_channels_as_batch(float64_default):
    """The notebooks' e3nn layout (C x l irreps) and ours (C as a batch dimension) agree."""
    generator = torch.Generator().manual_seed(4)
    x1, x2 = torch.randn(2, 3, 9, generator=generator), torch.randn(2, 3, 9, generator=generator)  # (B, C, K)
    cg, weights = cg_tensor_product(2, 2, 4, gaunt_paths_only=True)
    expected = cg(x1.reshape(6, 9), x2.reshape(6, 9), weights).reshape(2, 3, 25)
    torch.testing.assert_close(GauntTensorProduct(2, 2, 4)(x1, x2), expected, atol=1e-10, rtol=1e-10)
    assert to_e3nn_layout(expected, 4).shape == (2, 75)
    assert torch.equal(to_e3nn_layout(expected, 4)[:, :3], expected[:, :, 0])  # 3 x 0e block first


def test_closed_form_gaunt_constant_equals_the_quadrature_one():
    for l1, l2, l3 in gaunt_paths(4, 4, 8):
        assert gaunt_constant(l1, l2, l3) == pytest.approx(gaunt_path_constant(l1, l2, l3), rel=1e-9, abs=1e-12)
    assert gaunt_constant(1, 1, 1) == 0.0 and gaunt_constant(1, 1, 3) == 0.0
    assert math.isfinite(gaunt_constant(5, 10, 15)) and gaunt_constant(5, 10, 15) != 0.0


def test_rows_make_a_claim_file_the_report_reads(tmp_path):
    import json

    from replibench.report.claims import claim_rows, read_claims

    rows = measure("convolution", [2, 3], repeats=1)
    path = tmp_path / "convolution.json"
    path.write_text(json.dumps(claim_file("convolution", rows, "cpu test, 1 thread")))
    (claim,) = read_claims([path])
    flat = claim_rows([claim])
    assert [(r["L"], r["baseline"]) for r in flat] == [(2, "e3nn"), (2, "escn"), (3, "e3nn"), (3, "escn")]
    assert all(r["paper_ratio"] is not None and r["ratio"] > 0 for r in flat)


def test_importing_the_module_loads_neither_torch_nor_e3nn():
    import subprocess
    import sys

    code = ("import sys, replibench.families.oc20.efficiency; "
            "print(int('torch' in sys.modules), int('e3nn' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "0"]
