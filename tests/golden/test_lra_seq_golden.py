"""Golden outputs: our DeltaNet, Mamba (state tracking) and LRA Transformer against the authors' code.

Fixtures are written by ``tools/golden/lra_*.py`` from the upstream checkouts named in each
fixture's provenance (repo@commit): the same weights (copied by the recorded name mapping), the
same input, float64. Tolerance 1e-6 relative unless a reason is written beside the assertion.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from golden.golden import load_fixture
from torch import nn

RTOL = 1e-6

_TARGET = re.compile(r"^(?P<name>[^|]+)(\|rows (?P<a>\d+):(?P<b>\d+)|\|(?P<transform>log\(float32 exp\)))?$")


def load_mapped(model: nn.Module, fixture, prefix: str = "param/") -> set[str]:
    """Copy every ``param/<upstream name>`` into ``model`` by the fixture's weight map.

    A target is ``ours``, ``ours|rows a:b`` (a row block of a fused upstream matrix) or
    ``ours|log(float32 exp)`` (upstream exponentiates this parameter in float32 whatever the model
    dtype: ours becomes the log of that float32 value); several targets are separated by ``;``.
    Returns the set of our parameter names that were written.
    """
    ours = dict(model.named_parameters())
    written: set[str] = set()
    with torch.no_grad():
        for upstream, targets in fixture.meta["weight_map"].items():
            value = torch.from_numpy(fixture[prefix + upstream]).double()
            for target in targets.split(";"):
                m = _TARGET.match(target)
                name = m.group("name")
                part = value if m.group("a") is None else value[int(m.group("a")) : int(m.group("b"))]
                if m.group("transform"):
                    part = torch.log(torch.exp(part.float()).double())
                assert ours[name].shape == part.shape, (name, tuple(ours[name].shape), tuple(part.shape))
                ours[name].copy_(part)
                written.add(name)
    return written


@pytest.mark.parametrize("negative", [False, True], ids=["range-0-1", "range-neg1-1"])
def test_deltanet_matches_fla_fork(negative: bool) -> None:
    from replibench.models.deltanet import DeltaNet, DeltaNetConfig

    fx = load_fixture("deltanet")
    assert fx.meta["repo"] == "automl/unlocking_state_tracking"
    cfg = DeltaNetConfig(vocab_size=3, d_model=16, n_layers=2, n_heads=4, conv_size=4, intermediate_size=32,
                         negative_eigenvalues=negative)
    model = DeltaNet(cfg).double().eval()
    written = load_mapped(model, fx)
    assert written == set(dict(model.named_parameters()))  # every weight came from upstream
    betas = []
    model.attns[0].b_proj.register_forward_hook(lambda m, i, o: betas.append(cfg.beta_scale * o.sigmoid()))
    with torch.no_grad():
        logits = model(torch.from_numpy(fx["tokens"]))
    tag = "neg" if negative else "pos"
    np.testing.assert_allclose(betas[0].numpy(), fx[f"beta0_{tag}"], rtol=RTOL, atol=0)
    # atol 1e-12: logits pass through zero; relative error is meaningless for |logit| < 1e-6
    np.testing.assert_allclose(logits.numpy(), fx[f"logits_{tag}"], rtol=RTOL, atol=1e-12)
    if negative:  # the extension is live: some transition eigenvalues 1 - beta are negative
        assert (1 - fx["beta0_neg"]).min() < 0
    else:
        assert (1 - fx["beta0_pos"]).min() >= 0


@pytest.mark.parametrize("negative", [False, True], ids=["range-0-1", "range-neg1-1"])
def test_mamba_matches_paper_mamba(negative: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    import replibench.models.linear_rnn as linear_rnn

    fx = load_fixture("mamba")
    assert fx.meta["repo"] == "automl/unlocking_state_tracking"
    cfg = linear_rnn.LinearRNNConfig(vocab_size=3, d_model=16, n_layers=2, negative_eigenvalues=negative)
    model = linear_rnn.LinearRNN(cfg).double().eval()
    assert load_mapped(model, fx) == set(dict(model.named_parameters()))
    transitions = []
    original = linear_rnn.transition

    def recording(delta: torch.Tensor, A: torch.Tensor, neg: bool) -> torch.Tensor:
        out = original(delta, A, neg)
        transitions.append(out)
        return out

    monkeypatch.setattr(linear_rnn, "transition", recording)
    with torch.no_grad():
        logits = model(torch.from_numpy(fx["tokens"]))
    tag = "neg" if negative else "pos"
    # atol 1e-12: entries of exp(ΔA) underflow towards 0 (and 2·exp − 1 towards −1), logits cross 0
    np.testing.assert_allclose(transitions[0][0, :16, :4].numpy(), fx[f"transition0_{tag}"], rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(logits.numpy(), fx[f"logits_{tag}"], rtol=RTOL, atol=1e-12)
    low = fx[f"transition0_{tag}"].min()
    assert (low < -0.5) if negative else (low >= 0.0)  # the range the fixture exercises
