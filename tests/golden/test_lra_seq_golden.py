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

def _apply(value: torch.Tensor, op: str) -> torch.Tensor:
    """One weight-map transform (see the generators' docstrings)."""
    if op == "transpose":
        return value.T
    if op == "flatten in":  # flax DenseGeneral kernel (E, heads, d) -> our (heads*d, E)
        return value.reshape(value.shape[0], -1).T
    if op == "flatten out":  # (heads, d, E) -> our (E, heads*d)
        return value.reshape(-1, value.shape[-1]).T
    if op == "squeeze 0":
        return value[0]
    if op == "log(float32 exp)":  # upstream exponentiates in float32 whatever the model dtype
        return torch.log(torch.exp(value.float()).double())
    m = re.fullmatch(r"from rows (\d+):(\d+)", op)
    if m:
        return value[int(m.group(1)) : int(m.group(2))]
    raise ValueError(f"unknown weight-map transform {op!r}")


def load_mapped(model: nn.Module, fixture, case: str = "") -> set[str]:
    """Copy every ``param/<upstream name>`` into ``model`` by the fixture's weight map.

    A target is ``ours`` followed by ``|``-separated transforms applied in order (``transpose``,
    ``flatten in``, ``flatten out``, ``squeeze 0``, ``from rows a:b``, ``log(float32 exp)``) and
    optionally a last ``into rows a:b`` (a row block of our fused matrix); several targets are
    separated by ``;``. ``case`` keeps only upstream names starting with ``<case>/``. Returns the
    set of our parameter names that were written (all rows of a fused matrix must be written).
    """
    ours = dict(model.named_parameters())
    written: dict[str, int] = {}
    with torch.no_grad():
        for upstream, targets in fixture.meta["weight_map"].items():
            if case and not upstream.startswith(case + "/"):
                continue
            source = torch.from_numpy(fixture["param/" + upstream]).double()
            for target in targets.split(";"):
                name, *ops = target.split("|")
                rows = None
                if ops and ops[-1].startswith("into rows "):
                    a, b = ops.pop()[len("into rows "):].split(":")
                    rows = slice(int(a), int(b))
                value = source
                for op in ops:
                    value = _apply(value, op)
                dest = ours[name] if rows is None else ours[name][rows]
                assert dest.shape == value.shape, (name, tuple(dest.shape), tuple(value.shape))
                dest.copy_(value)
                written[name] = written.get(name, 0) + (ours[name].shape[0] if rows is None else rows.stop - rows.start)
    assert all(n == ours[k].shape[0] for k, n in written.items()), written  # fused matrices fully covered
    return set(written)


@pytest.mark.parametrize("negative", [False, True], ids=["range-0-1", "range-neg1-1"])
def test_deltanet_matches_fla_fork(negative: bool) -> None:
    from replibench.families.lra.models.deltanet import DeltaNet, DeltaNetConfig

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
    import replibench.families.lra.models.linear_rnn as linear_rnn

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


_LRA_CASES = {
    "cls": dict(emb_dim=16, num_heads=2, qkv_dim=8, mlp_dim=16, num_layers=2, pool="CLS", tied_weights=True,
                learn_pos_emb=False),
    "pathx": dict(emb_dim=32, num_heads=2, qkv_dim=16, mlp_dim=32, num_layers=1, pool="MEAN", learn_pos_emb=True),
    "dual": dict(emb_dim=16, num_heads=2, qkv_dim=8, mlp_dim=16, num_layers=1, pool="FIRST"),
    "mean_pad": dict(emb_dim=16, num_heads=2, qkv_dim=8, mlp_dim=16, num_layers=1, pool="MEAN", learn_pos_emb=True),
}


@pytest.mark.parametrize("case", sorted(_LRA_CASES))
def test_lra_transformer_matches_lra_flax(case: str) -> None:
    from replibench.families.lra.models.sequence_classifier import Config, SequenceClassifier

    fx = load_fixture("lra_transformer")
    assert fx.meta["repo"] == "google-research/long-range-arena"
    dual = case == "dual"
    sub = dict(_LRA_CASES[case], max_len=16, dropout=0.1, attention_dropout=0.1)
    model = SequenceClassifier(Config.from_dict({"layer": "transformer", "n_classes": 3, "vocab_size": 11,
                                                 "dual": dual, "transformer": sub})).double().eval()
    assert load_mapped(model, fx, case) == set(dict(model.named_parameters()))
    tokens = torch.from_numpy(fx[f"{case}/tokens"])
    with torch.no_grad():  # LRA's padding mask: token id > 0
        if dual:
            tokens2 = torch.from_numpy(fx[f"{case}/tokens2"])
            logits = model(tokens, tokens > 0, tokens2, tokens2 > 0)
        else:
            logits = model(tokens, tokens > 0)
    if case == "mean_pad":
        # upstream ran in float32 (only there does its -1e10 bias make a padding query's attention
        # uniform, the behaviour this case pins), so its logits carry float32 round-off: 1e-5
        assert (fx[f"{case}/tokens"] == 0).any(axis=1).all()
        np.testing.assert_allclose(logits.numpy(), fx[f"{case}/logits"], rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(logits.numpy(), fx[f"{case}/logits"], rtol=RTOL, atol=1e-12)


def test_pathx_golden_case_is_the_pathx_preset() -> None:
    """The ``pathx`` fixture case has the Path-X preset's model dimensions."""
    from replibench.families.lra.models.presets import preset

    sub = preset("transformer", "paper", "pathx")["model"]["transformer"]
    case = _LRA_CASES["pathx"]
    assert {k: sub[k] for k in case} == case
