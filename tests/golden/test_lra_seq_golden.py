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

_ROWS = re.compile(r"^(?P<name>[^|]+)(\|rows (?P<a>\d+):(?P<b>\d+))?$")


def load_mapped(model: nn.Module, fixture, prefix: str = "param/") -> set[str]:
    """Copy every ``param/<upstream name>`` into ``model`` by the fixture's weight map.

    A target is ``ours`` or ``ours|rows a:b`` (a row block of a fused upstream matrix); several
    targets are separated by ``;``. Returns the set of our parameter names that were written.
    """
    ours = dict(model.named_parameters())
    written: set[str] = set()
    with torch.no_grad():
        for upstream, targets in fixture.meta["weight_map"].items():
            value = torch.from_numpy(fixture[prefix + upstream]).double()
            for target in targets.split(";"):
                m = _ROWS.match(target)
                name = m.group("name")
                part = value if m.group("a") is None else value[int(m.group("a")) : int(m.group("b"))]
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
