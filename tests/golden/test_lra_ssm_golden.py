"""Our LRA SSM layers against the authors' code on the same weights and input, float64.

S4 / S4D: state-spaces/s4 v3.0.0 (``tools/golden/lra_s4.py``): the convolution kernel (2, H, L)
and one layer's output (GELU -> GLU), plus upstream's initial (A, B[, P]) for our inits.
S5: lindermanlab/S5@3c18fdb (``tools/golden/lra_s5.py``): one S5 SSM's output and one S5 layer
(prenorm BatchNorm in eval mode, GELU/GLU, residual). Tolerance 1e-6 relative (float64).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from golden.golden import load_fixture

RTOL = 1e-6
S4_FAMILY = {
    "s4d-legs": ("s4d", {"init": "legs", "disc": "bilinear"}),
    "s4d-inv": ("s4d", {"init": "inv", "disc": "bilinear"}),
    "s4d-lin": ("s4d", {"init": "lin", "disc": "bilinear"}),
    "s4-legs": ("s4", {"measure": "legs"}),
    "s4-fout": ("s4", {"measure": "fout"}),
    # PTD's mode count depends on its random perturbation (real eigenvalues are kept once), so
    # the test builds the same S4D layer class with the fixture's mode count and loads every weight
    "s4-ptd": ("s4d", {"init": "legs", "disc": "zoh"}),
}


def _close(ours: np.ndarray, ref: np.ndarray) -> None:
    # relative 1e-6; the absolute floor (1e-9 of the largest entry) only matters for entries near 0
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=1e-9 * float(np.abs(ref).max()))


def _load(module: torch.nn.Module, fx) -> None:
    """Copy the fixture's upstream weights into ``module`` by the recorded name mapping."""
    params = dict(module.named_parameters())
    seen = set()
    for up_name, spec in fx.meta["weight_map"].items():
        ours, _, how = spec.partition(" (")
        value = torch.as_tensor(fx[f"w:{up_name}"], dtype=torch.float64)
        if how.startswith("squeeze0"):
            value = value[0]
        if how.startswith("transpose"):
            value = value.T
        assert params[ours].shape == value.shape, (up_name, ours, value.shape, params[ours].shape)
        with torch.no_grad():
            params[ours].copy_(value)
        seen.add(ours)
    assert seen == set(params), f"parameters without an upstream value: {sorted(set(params) - seen)}"


def _preset_disc(name: str) -> str:
    """The discretisation our paper preset uses (so the golden test pins the preset too)."""
    from replibench.families.lra.models.presets import preset
    from replibench.families.lra.models.s4d import S4DConfig

    return preset(name, "paper", "listops")["model"]["s4d"].get("disc", S4DConfig.disc)


def _s4_layer(kind: str, sub: dict, n_state: int):
    from replibench.families.lra.models.s4 import S4Config, S4Layer
    from replibench.families.lra.models.s4d import S4DConfig, S4DLayer

    gen = torch.Generator().manual_seed(0)
    if kind == "s4d":
        return S4DLayer(S4DConfig(d_model=4, d_state=n_state, n_ssm=2, bidirectional=True, **sub), gen).double()
    return S4Layer(S4Config(d_model=4, d_state=n_state, l_max=16, n_ssm=2, bidirectional=True, **sub), gen).double()


@pytest.mark.parametrize("name", list(S4_FAMILY))
def test_s4_family_kernel_and_layer_match_upstream(name):
    fx = load_fixture(name)
    assert fx.meta["repo"] == "state-spaces/s4" and fx.meta["commit"].startswith("ab287c6")
    kind, sub = S4_FAMILY[name]
    if kind == "s4d":
        assert _preset_disc(name) == sub["disc"] and f"'disc': '{sub['disc']}'" in fx.meta["notes"]
    n_state = 2 * fx["w:kernel.kernel.C"].shape[-2]
    layer = _s4_layer(kind, sub, n_state).eval()
    _load(layer, fx)
    u = torch.as_tensor(fx["input"])  # (B, H, L)
    with torch.no_grad():
        k = layer.kernel(u.shape[-1])  # (2, H, L)
        y = layer(u.transpose(1, 2)).transpose(1, 2)  # (B, H, L)
    _close(k.numpy(), fx["kernel"])
    _close(y.numpy(), fx["output"])


def _as_our_half(lam: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Upstream may store the Im < 0 member of each conjugate pair (the same real system, with
    every complex quantity conjugated); we store Im >= 0. Conjugate all of them if so."""
    flip = np.sum(lam.imag) < 0
    return [x.conj() if flip else x for x in (lam, *others)]


def _c(x: np.ndarray) -> np.ndarray:
    return x[..., 0] + 1j * x[..., 1]


@pytest.mark.parametrize("name", ["s4d-legs", "s4d-inv", "s4d-lin"])
def test_s4d_inits_match_upstream(name):
    from replibench.families.lra.models import hippo

    fx = load_fixture(name)
    lam, b = hippo.s4d_init(S4_FAMILY[name][1]["init"], 8)
    up_lam, up_b = _as_our_half(-np.exp(fx["init_inv_A_real"][0]) + 1j * fx["init_A_imag"][0], _c(fx["init_B"][0]))
    np.testing.assert_allclose(lam, up_lam, rtol=1e-6, atol=1e-6)  # upstream's layer init is float32
    # each eigenvector has an arbitrary unit phase (ours numpy, upstream torch): compare |B|
    np.testing.assert_allclose(np.abs(b), np.abs(up_b), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["s4-legs", "s4-fout"])
def test_s4_nplr_inits_match_upstream(name):
    from replibench.families.lra.models import hippo

    fx = load_fixture(name)
    measure = S4_FAMILY[name][1]["measure"]
    layer = _s4_layer("s4", {"measure": measure}, 8)
    # our layer clamps Re(Lambda) <= -1e-3 as upstream's SSKernelNPLR does (FouT has Re = 0)
    kern = layer.kernel
    ours_lam = -torch.exp(kern.log_A_real[0]).detach().double().numpy() + 1j * kern.A_imag[0].detach().double().numpy()
    up_lam, up_b, up_p = _as_our_half(-np.exp(fx["init_inv_w_real"][0]) + 1j * fx["init_w_imag"][0],
                                      _c(fx["init_B"][0, 0]), _c(fx["init_P"][0, 0]))
    np.testing.assert_allclose(ours_lam, up_lam, rtol=1e-6, atol=1e-6)
    b, p = _c(layer.kernel.B[0].detach().double().numpy()), _c(layer.kernel.P[0].detach().double().numpy())
    # each eigenvector has an arbitrary unit phase: |B|, |P| and B conj(P) are phase-free
    np.testing.assert_allclose(np.abs(b), np.abs(up_b), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.abs(p), np.abs(up_p), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(b * p.conj(), up_b * up_p.conj(), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", ["s4d-legs", "s4-legs", "s4-fout"])
def test_hippo_nplr_at_paper_size_matches_upstream(name):
    """N = 64 (the LRA configs): Lambda, P and B = V^* B of upstream's ``hippo.nplr`` (float32)."""
    from replibench.families.lra.models import hippo

    fx = load_fixture(name)
    measure = "fout" if name == "s4-fout" else "legs"
    if name == "s4d-legs":
        _, b = hippo.s4d_init("legs", 64)  # our S4D-LegS init with its default (no) B clip
        form = hippo.nplr("legs", 64)
        np.testing.assert_allclose(b, form.B)
    else:
        from replibench.families.lra.models.s4 import S4Config

        form = hippo.nplr(measure, 64, b_clip=S4Config().b_clip)
    up_w, up_b, up_p = _as_our_half(fx["init64_w"], fx["init64_B"], fx["init64_P"][0])
    order = np.argsort(-form.Lambda.imag)
    up_order = np.argsort(-up_w.imag)
    np.testing.assert_allclose(form.Lambda[order], up_w[up_order], rtol=1e-5, atol=1e-4)  # float32 eig
    # eigenvectors carry an arbitrary unit phase each: compare |B|, |P| and the phase of B relative to P
    np.testing.assert_allclose(np.abs(form.B[order]), np.abs(up_b[up_order]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.abs(form.P[order]), np.abs(up_p[up_order]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose((form.B * form.P.conj())[order], (up_b * up_p.conj())[up_order], rtol=1e-4, atol=1e-3)


def _s5_block(name: str, fx):
    """Our prenorm residual block around an S5 layer, sized from the fixture, weights loaded."""
    from replibench.families.lra.models.presets import preset
    from replibench.families.lra.models.s5 import S5Config, S5Layer
    from replibench.families.lra.models.sequence_classifier import Config, ResidualBlock

    Pk, H = fx["w:ssm.B"].shape[:2]
    activation = "half_glu2" if name == "s5-ptd" else "half_glu1"
    # the layer class does not depend on the init: PTD's mode count is data-dependent, so a HiPPO-N
    # layer with the fixture's Pk modes is built and every weight is overwritten
    cfg = S5Config(d_model=H, ssm_size=2 * Pk, blocks=2, activation=activation)
    paper = preset(name, "paper", "listops")["model"]
    model_cfg = Config(layer="s5", d_model=H, norm=paper["norm"], prenorm=paper["prenorm"],
                       residual_dropout=paper["residual_dropout"], dropout=0.0)
    block = ResidualBlock(S5Layer(cfg, torch.Generator().manual_seed(0)), model_cfg).double().eval()
    state = block.state_dict()
    loaded = set()
    for up_name, spec in fx.meta["weight_map"].items():
        ours, _, how = spec.partition(" (")
        value = torch.as_tensor(fx[f"w:{up_name}"], dtype=torch.float64)
        if how.startswith("transpose"):
            value = value.T
        if how.startswith("squeeze-1"):
            value = value[..., 0]
        if ours.endswith("]"):  # C1 / C2 -> C[0] / C[1]
            ours, index = ours[:-3], int(ours[-2])
            state[ours][index] = value
        else:
            assert state[ours].shape == value.shape, (up_name, ours)
            state[ours] = value
        loaded.add(ours)
    missing = {k for k in state if not k.endswith("num_batches_tracked")} - loaded
    assert not missing, f"no upstream value for {sorted(missing)}"
    block.load_state_dict(state)
    return block


@pytest.mark.parametrize("name", ["s5", "s5-ptd"])
def test_s5_ssm_and_layer_match_upstream(name):
    fx = load_fixture(name)
    assert fx.meta["repo"] == "lindermanlab/S5" and fx.meta["commit"].startswith("3c18fdb")
    block = _s5_block(name, fx)
    u = torch.as_tensor(fx["input"])  # (B, L, H)
    with torch.no_grad():
        _close(block.layer.ssm(u).numpy(), fx["ssm_output"])
        _close(block(u, None).numpy(), fx["layer_output"])


@pytest.mark.parametrize("C_init", ["lecun_normal", "trunc_standard_normal"])
def test_s5_initial_c_tilde_scale_matches_upstream(C_init):
    """Mean |C~|^2 at H=16, P=64, J=4: upstream's own init (20 seeds) against ours (20 seeds).
    Statistical: 20 x 2048 draws give a relative standard error near 0.5 %; allow 5 %."""
    from replibench.families.lra.models.s5 import S5Config, S5SSM

    ref = float(load_fixture("s5")[f"c_tilde_power_{C_init}"])
    total = 0.0
    for seed in range(20):
        ssm = S5SSM(S5Config(d_model=16, ssm_size=64, blocks=4, C_init=C_init), torch.Generator().manual_seed(seed))
        total += float(torch.view_as_complex(ssm.C.detach()).abs().pow(2).mean())
    assert total / 20 == pytest.approx(ref, rel=0.05)
