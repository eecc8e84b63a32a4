"""Every golden fixture names its upstream repo@commit, the weight-name mapping and its generator,
holds numbers only, and the set stays small."""

from __future__ import annotations

import re

import pytest

from golden.golden import all_fixtures, load_fixture

MAX_TOTAL_BYTES = 2_000_000  # "a few hundred KB in all": a generous ceiling, so a 10 MB fixture cannot slip in


@pytest.mark.parametrize("path", all_fixtures(), ids=lambda p: p.stem)
def test_fixture_has_provenance(path):
    fixture = load_fixture(path.stem)
    assert re.fullmatch(r"[\w.-]+/[\w.-]+", fixture.meta["repo"])
    assert re.fullmatch(r"[0-9a-f]{40}", fixture.meta["commit"])
    assert isinstance(fixture.meta["weight_map"], dict)
    assert fixture.meta["generator"].startswith("tools/golden/")
    assert fixture.arrays, "a fixture without arrays compares nothing"
    for name, array in fixture.arrays.items():
        assert array.dtype.kind in "fciub", f"{path.name}:{name} has dtype {array.dtype}"


def test_fixtures_stay_small():
    total = sum(path.stat().st_size for path in all_fixtures())
    assert total <= MAX_TOTAL_BYTES, f"golden fixtures take {total} bytes (limit {MAX_TOTAL_BYTES})"


#: every registered model → (its golden test, the fixture it reads; None: no upstream model, checked
#: against hand-computed values or, for our own OC20 models, against upstream e3nn / the Gaunt authors' product)
GOLDEN_TESTS = {
    "naive": ("test_ett_golden.py::test_naive_forecast_hand_values", None),
    "naive-mean": ("test_ett_golden.py::test_naive_impute_hand_values", None),
    "dlinear": ("test_ett_golden.py::test_dlinear_matches_tslib", "ett_dlinear"),
    "timesnet": ("test_ett_golden.py::test_timesnet_matches_tslib", "ett_timesnet_forecast"),
    "moirai-moe-small": ("test_moirai_moe_golden.py::test_module_forward_matches_uni2ts", "moirai_moe"),
    "moirai-moe-base": ("test_moirai_moe_golden.py::test_forecast_samples_match_uni2ts_under_the_same_seed",
                        "moirai_moe"),
    "cdvae": ("test_cdvae_model_golden.py::test_loss_terms_match_forward_and_compute_stats", "cdvae_model"),
    "diffcsp": ("test_crystals_golden.py::test_diffcsp_loss_terms_match", "diffcsp"),
    "crysbfn": ("test_crystals_golden.py::test_crysbfn_network_matches_upstream", "crysbfn"),
    "s4d-legs": ("test_lra_ssm_golden.py::test_s4_family_kernel_and_layer_match_upstream", "s4d-legs"),
    "s4d-inv": ("test_lra_ssm_golden.py::test_s4_family_kernel_and_layer_match_upstream", "s4d-inv"),
    "s4d-lin": ("test_lra_ssm_golden.py::test_s4_family_kernel_and_layer_match_upstream", "s4d-lin"),
    "s4-legs": ("test_lra_ssm_golden.py::test_s4_family_kernel_and_layer_match_upstream", "s4-legs"),
    "s4-fout": ("test_lra_ssm_golden.py::test_s4_family_kernel_and_layer_match_upstream", "s4-fout"),
    "s4-ptd": ("test_lra_ssm_golden.py::test_s4_family_kernel_and_layer_match_upstream", "s4-ptd"),
    "s5": ("test_lra_ssm_golden.py::test_s5_ssm_and_layer_match_upstream", "s5"),
    "s5-ptd": ("test_lra_ssm_golden.py::test_s5_ssm_and_layer_match_upstream", "s5-ptd"),
    "transformer": ("test_lra_seq_golden.py::test_lra_transformer_matches_lra_flax", "lra_transformer"),
    "mamba": ("test_lra_seq_golden.py::test_mamba_matches_paper_mamba", "mamba"),
    "deltanet": ("test_lra_seq_golden.py::test_deltanet_matches_fla_fork", "deltanet"),
    "schnet": ("test_oc20_golden.py::test_schnet_matches_fairchem", "oc20_schnet"),
    "dimenet-pp": ("test_oc20_golden.py::test_dimenet_pp_matches_fairchem", "oc20_dimenet_pp"),
    "equivariant-cg": ("test_oc20_golden.py::test_equivariant_cg_messages_are_e3nns_tensor_product", None),
    "equivariant-gaunt": ("test_oc20_golden.py::test_equivariant_gaunt_messages_are_the_authors_gaunt_product",
                          "oc20_gaunt_tp"),
    "equiformer-v2": ("test_oc20_equiformer_v2_golden.py::test_equiformer_v2_matches_fairchem", "oc20_equiformer_v2"),
    # the Gaunt paper's OC20 model was never released: its backbone is fairchem's (this test), its
    # Selfmix block the Gaunt product checked against the authors' (oc20_gaunt_tp)
    "equiformer-v2-gaunt-selfmix": (
        "test_oc20_equiformer_v2_golden.py::test_gaunt_selfmix_variant_is_fairchems_equiformer_v2_plus_its_blocks",
        "oc20_equiformer_v2"),
}


def test_every_registered_model_has_a_golden_test():
    """Adding a model to the registry without a golden-output test fails here."""
    from replibench.registry import MODELS

    assert set(GOLDEN_TESTS) == set(MODELS)
    golden_dir = all_fixtures()[0].parent
    for model, (test, fixture) in GOLDEN_TESTS.items():
        path, _, function = test.partition("::")
        assert f"def {function}(" in (golden_dir / path).read_text(encoding="utf-8"), (model, test)
        if fixture is not None:
            assert (golden_dir / f"{fixture}.npz").exists(), (model, fixture)
