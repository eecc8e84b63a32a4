"""Moirai-MoE against the authors' code (fixture by tools/golden/ett_moirai_moe.py, uni2ts@8d2a08d).

The fixture stores no weights: both sides set them by the same recipe (the generator's docstring),
and the recorded per-tensor sums prove it. Then, in float64: the packed tokens and ids of
``MoiraiMoEForecast._convert``, every output of ``MoiraiMoEModule.forward`` (scaler, encoder, the
mixture's parameters, mean, log-density) and the sample paths of ``MoiraiMoEForecast.forward`` under
the same seed must equal upstream's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from golden.golden import load_fixture
from replibench.families.ett.models.moirai_moe import MoiraiMoE, MoiraiMoEConfig

RTOL, ATOL = 1e-8, 1e-10
NORM_WEIGHTS = ("norm1.weight", "norm2.weight", "q_norm.weight", "k_norm.weight", "encoder.norm.weight")


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("moirai_moe")


def _model(fixture, case: str) -> MoiraiMoE:
    context, horizon, dims, samples = (int(v) for v in fixture[f"{case}/shape"])
    model = MoiraiMoE(MoiraiMoEConfig(d_model=64, d_ff=16, num_layers=2, context_length=context,
                                      prediction_length=horizon, num_samples=samples, target_dim=dims)).double()
    state = model.state_dict()
    assert sorted(fixture.meta["weight_map"]) == sorted(state)  # upstream's names are ours
    with torch.no_grad():
        for k, name in enumerate(sorted(state)):
            index = torch.arange(state[name].numel(), dtype=torch.float64)
            values = torch.sin(0.37 * index + k + 1)
            if not name.endswith("centroid"):
                values = 1.0 + 0.1 * values if name.endswith(NORM_WEIGHTS) else 0.1 * values
            state[name].copy_(values.reshape(state[name].shape))
            assert float(state[name].sum()) == pytest.approx(float(fixture[f"w_sum/{name}"]), rel=1e-12), name
    return model.eval()


def _inputs(fixture, case: str):
    return (torch.from_numpy(fixture[f"{case}/past_target"]), torch.from_numpy(fixture[f"{case}/past_observed"]),
            torch.from_numpy(fixture[f"{case}/past_is_pad"]))


@pytest.mark.parametrize("case", ["A", "B"])
def test_packed_tokens_match_uni2ts_convert(fixture, case):
    model = _model(fixture, case)
    tokens = model._tokens(*_inputs(fixture, case))
    names = ("target", "observed_mask", "sample_id", "time_id", "variate_id", "prediction_mask")
    for name, ours in zip(names, tokens):
        np.testing.assert_array_equal(ours.numpy(), fixture[f"{case}/convert/{name}"], err_msg=name)


@pytest.mark.parametrize("case", ["A", "B"])
def test_module_forward_matches_uni2ts(fixture, case):
    model = _model(fixture, case)
    names = ("target", "observed_mask", "sample_id", "time_id", "variate_id", "prediction_mask")
    converted = [torch.from_numpy(fixture[f"{case}/convert/{name}"]) for name in names]
    captured = {}
    hook = model.encoder.register_forward_hook(lambda _m, _i, out: captured.setdefault("reprs", out))
    with torch.no_grad():
        distribution = model(*converted, torch.full_like(converted[3], 16))
        value = torch.from_numpy(fixture[f"{case}/module/log_prob_value"])
        log_prob = distribution.log_prob(value)
    hook.remove()
    mixture = distribution.base_dist
    student, normal, negbin, lognormal = mixture.components
    ours = {"loc": distribution.transforms[0].loc, "scale": distribution.transforms[0].scale,
            "reprs": captured["reprs"], "weights_logits": mixture.weights.logits, "student_df": student.df,
            "student_loc": student.loc, "student_scale": student.scale, "normal_loc": normal.loc,
            "negbin_total_count": negbin.total_count, "negbin_logits": negbin.logits, "lognormal_loc": lognormal.loc,
            "lognormal_scale": lognormal.scale, "mean": distribution.mean, "log_prob": log_prob}
    for name, tensor in ours.items():
        np.testing.assert_allclose(tensor.numpy(), fixture[f"{case}/module/{name}"], rtol=RTOL, atol=ATOL,
                                   err_msg=name)


@pytest.mark.parametrize("case", ["A", "B"])
def test_forecast_samples_match_uni2ts_under_the_same_seed(fixture, case):
    model = _model(fixture, case)
    torch.manual_seed(123)
    with torch.no_grad():
        samples = model.forecast(*_inputs(fixture, case))
    np.testing.assert_allclose(samples.numpy(), fixture[f"{case}/forecast/samples"], rtol=1e-7, atol=1e-9)
