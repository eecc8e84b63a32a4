"""S5 follows lindermanlab/S5@3c18fdb where our first version did not (issue 11, departure 1):
complex C initialisation, per-state log Delta whatever ``dt_global`` says, the optimiser groups
``dt_global`` selects, time-constant dropout masks and flax's tanh GELU."""

import math

import pytest
import torch
import torch.nn.functional as F

from replibench.families.lra.models.presets import preset
from replibench.families.lra.models.s4d import SSM_ROLE
from replibench.families.lra.models.s5 import S5Config, S5Layer, S5SSM
from replibench.families.lra.models.sequence_classifier import Config, SequenceClassifier


@pytest.mark.parametrize("C_init,var_per_part", [("lecun_normal", lambda P, H: 1 / (P * H)),
                                                 ("trunc_standard_normal", lambda P, H: 1 / P)])
def test_c_tilde_has_the_upstream_scale(C_init, var_per_part, gen):
    """C = C_re + i C_im (each part variance v), C~ = C V with orthonormal columns of V, so
    E|C~_hk|^2 = 2 v. Upstream: v = 1/(P H) (lecun over (H, P, 2)) or 1/P (per row). The old real
    C with variance 1/H gives E|C~|^2 = 1/H, i.e. P/2 (resp. P H/2) times the expected value."""
    H, P = 16, 64  # old C: E|C~|^2 = 1/16 against 2/1024 (lecun) and 2/64 (per row)
    ssm = S5SSM(S5Config(d_model=H, ssm_size=P, blocks=2, C_init=C_init), generator=gen)
    c = torch.view_as_complex(ssm.C.detach())  # (2, H, P/2): 1024 independent entries
    ratio = float(c.abs().pow(2).mean()) / (2 * var_per_part(P, H))
    assert ratio == pytest.approx(1.0, abs=0.1)
    assert float(c.imag.abs().mean()) > 0.3 * float(c.real.abs().mean())  # genuinely complex


@pytest.mark.parametrize("dt_global", [False, True])
def test_log_step_is_per_state_whatever_dt_global_says(dt_global, gen):
    ssm = S5SSM(S5Config(d_model=4, ssm_size=16, blocks=2, dt_global=dt_global), generator=gen)
    assert ssm.log_step.shape == (8,)  # P/2 kept modes, one Delta each (upstream (P, 1))
    assert ssm.log_step.detach().unique().numel() == 8
    assert ((ssm.log_step > math.log(1e-3)) & (ssm.log_step < math.log(1e-1))).all()


@pytest.mark.parametrize("dt_global,dt_group", [(False, (0.001, 0.0)), (True, (0.004, 0.05))])
def test_dt_global_moves_log_step_into_the_adamw_group(dt_global, dt_group, gen):
    d = preset("s5", "smoke", "listops")["model"]
    d["vocab_size"] = 18
    d["s5"].update(dt_global=dt_global, opt_config="standard")
    model = SequenceClassifier(Config.from_dict(d), generator=gen)
    groups = model.optimizer_param_groups(lr=0.004, weight_decay=0.05, ssm_lr=0.001)
    where = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    for name, p in model.named_parameters():
        role = getattr(p, SSM_ROLE, None)
        if role == "dt":
            assert where[id(p)] == dt_group, name
        elif role in ("A", "B"):
            assert where[id(p)] == (0.001, 0.0), name


def test_text_and_retrieval_presets_keep_per_state_steps(gen):
    for task in ("text", "retrieval"):
        d = preset("s5", "smoke", task)["model"]
        assert d["s5"]["dt_global"] is True
        d["vocab_size"] = 18
        model = SequenceClassifier(Config.from_dict(d), generator=gen)
        for block in model.blocks:
            assert block.layer.ssm.log_step.numel() == block.layer.ssm.Lambda_re.numel()


def test_dropout_mask_is_constant_over_time(gen):
    layer = S5Layer(S5Config(d_model=16, ssm_size=8, blocks=2, activation="gelu", dropout=0.5), generator=gen)
    layer = layer.double()
    x = torch.randn(4, 50, 16, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        clean = layer.eval()(x)  # (B, L, H)
        torch.manual_seed(0)
        noisy = layer.train()(x)
    live = clean.abs() > 1e-6  # tanh-GELU is exactly 0 far below zero
    keep = torch.where(live, noisy / torch.where(live, clean, 1.0), float("nan"))  # 0 or 1/(1-p) = 2
    assert set(keep[live].round(decimals=9).unique().tolist()) == {0.0, 2.0}
    lo = torch.where(live, keep, float("inf")).amin(dim=1)
    hi = torch.where(live, keep, -float("inf")).amax(dim=1)
    assert torch.equal(lo, hi)  # one value per (example, channel) over all time steps


def test_gelu_is_the_tanh_approximation(gen):
    layer = S5Layer(S5Config(d_model=8, ssm_size=8, blocks=2, activation="gelu"), generator=gen).double().eval()
    x = 2.0 * torch.randn(2, 30, 8, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        pre = layer.ssm(x)
        out = layer(x)
    torch.testing.assert_close(out, F.gelu(pre, approximate="tanh"), rtol=1e-12, atol=1e-12)
    assert (out - F.gelu(pre)).abs().max() > 1e-5  # the exact GELU is measurably different


def test_s5_retrieval_decoder_uses_the_tanh_gelu(gen):
    """lindermanlab/S5 ``RetrievalDecoder``: Dense -> flax nn.gelu (tanh form) -> Dense."""
    d = preset("s5", "smoke", "retrieval")["model"]
    d["vocab_size"] = 18
    model = SequenceClassifier(Config.from_dict(d), generator=gen)
    assert model.decoder[1].approximate == "tanh"
    s4 = preset("s4d-legs", "smoke", "retrieval")["model"]
    s4["vocab_size"] = 18
    assert SequenceClassifier(Config.from_dict(s4), generator=gen).decoder[1].approximate == "none"
