"""State tracking (Grazzi et al., ICLR 2025): data, the eigenvalue maps, and parity by construction.

Construction: a diagonal recurrence h_t = a(x_t) h_{t-1} + b(x_t) computes parity exactly with
a(1) = -1, b(1) = 1, a(0) = 1, b(0) = 0 (h flips between 0 and 1 on every one). The [-1, 1]
LinearRNN reaches a = -1 (2·exp(ΔA) - 1 with large Δ) and a = 1 (Δ → 0); DeltaNet reaches the
same with β = 2 (reflection) and β = 0. With the [0, 1] maps a ≥ 0, and for the input 1^n the
state is h_n = c - d·a^n: an affine readout of K such states is a sum of K exponentials in n, which
changes sign at most K times (Descartes' rule for exponential sums), while the parity of 1^n
alternates at every step — so no [0, 1] model of this form can be right for all n.
"""

import numpy as np
import pytest
import torch

from replibench.families.lra.datasets.state_tracking import (
    StateTrackingConfig,
    evaluate_no_brackets,
    generate_split,
    preprocess_state_tracking,
)
from replibench.families.lra.models.deltanet import DeltaNet, DeltaNetConfig, delta_rule
from replibench.families.lra.models.linear_rnn import LinearRNN, LinearRNNConfig, MambaMixer, transition
from replibench.families.lra.tasks.state_tracking import StateTrackingTask


def test_parity_and_modular_arithmetic_data():
    rng = np.random.default_rng(0)
    inputs, answers = generate_split("parity", 200, (3, 40), rng)
    for x, y in zip(inputs, answers):
        assert 2 <= len(x) <= 39 and y == 1 + (sum(t - 1 for t in x) % 2)
    assert evaluate_no_brackets([1, 2, 3], ["+", "*"]) == 2  # 1 + 2*3 = 7 ≡ 2 (mod 5)
    assert evaluate_no_brackets([1, 1, 1], ["-", "-"]) == 4  # Delétang et al.'s examples
    assert evaluate_no_brackets([0, 1, 4, 3, 2], ["*", "+", "*", "-"]) == 0
    inputs, answers = generate_split("mod-arithmetic-brackets", 50, (40, 256), rng)
    assert all(len(x) >= 38 for x in inputs) and all(0 <= y < 5 for y in answers)


def test_transition_ranges():
    delta = torch.tensor([[[1e-3, 1.0, 50.0]]])  # (1, 1, 3)
    A = -torch.ones(3, 1)
    positive = transition(delta, A, negative=False).flatten()
    negative = transition(delta, A, negative=True).flatten()
    assert bool((positive > 0).all()) and bool((positive <= 1).all())
    assert negative.min().item() == pytest.approx(-1.0) and negative.max().item() == pytest.approx(1.0, abs=3e-3)


def parity_scan(bits: torch.Tensor, negative: bool) -> torch.Tensor:
    """Best-case construction through the model's own eigenvalue map and scan."""
    delta = torch.where(bits == 1, torch.tensor(64.0), torch.tensor(1e-30))[..., None]  # (B, L, 1)
    a = transition(delta, -torch.ones(1, 1), negative)  # (B, L, 1, 1)
    b = (delta * (1.0 / 64.0) * (bits[..., None] == 1)).unsqueeze(-1)  # b = 1 on ones, 0 on zeros
    return MambaMixer.scan(a, b)[..., 0, 0]  # (B, L)


def test_negative_eigenvalues_represent_parity_exactly_at_any_length():
    bits = torch.from_numpy(np.random.default_rng(1).integers(0, 2, size=(64, 1000)))
    h = parity_scan(bits, negative=True)
    expected = torch.cumsum(bits, dim=1) % 2
    assert bool(((h > 0.5).long() == expected).all())  # 64 sequences × all 1000 prefixes


def count_sign_changes(values: np.ndarray) -> int:
    signs = np.sign(values[np.abs(values) > 1e-12])
    return int(np.sum(signs[1:] != signs[:-1]))


def test_positive_eigenvalues_cannot_track_parity_of_all_ones():
    ones = torch.ones(1, 300, dtype=torch.long)
    h = parity_scan(ones, negative=False)[0].numpy()
    assert count_sign_changes(h - 0.5) <= 1  # parity of 1^n would need 299 changes
    torch.manual_seed(0)  # any [0,1] one-layer LinearRNN: readout on 1^n changes sign ≤ K = E·N times
    config = LinearRNNConfig(vocab_size=3, d_model=4, n_layers=1, d_state=2, negative_eigenvalues=False)
    model = LinearRNN(config)
    with torch.no_grad():
        logits = model(torch.full((1, 300), 2))[0]  # (L, V)
    margin = (logits[:, 2] - logits[:, 1]).numpy()[config.d_conv:]  # after the conv window fills
    assert count_sign_changes(margin) <= config.d_inner * config.d_state


def test_deltanet_reflection_tracks_parity_and_beta_one_cannot():
    bits = torch.from_numpy(np.random.default_rng(2).integers(0, 2, size=(8, 400)))
    k = torch.ones(8, 1, 400, 1)  # unit key, one head, d_k = d_v = 1
    v = torch.full((8, 1, 400, 1), 0.5)
    for scale, expect_parity in ((2.0, True), (1.0, False)):
        beta = scale * torch.where(bits == 1, 1.0, 0.0)[:, None, :]  # β → scale·σ(±∞)
        o = delta_rule(k, k, v, beta)[:, 0, :, 0]  # s_t = (1 - β) s_{t-1} + β v
        correct = ((o > 0.25).long() == torch.cumsum(bits, dim=1) % 2).float().mean().item()
        assert (correct == 1.0) if expect_parity else correct < 0.8


def test_models_run_and_task_scores(tmp_path):
    from replibench.families.lra.family import FAMILY as LRA_FAMILY

    preprocess_state_tracking(tmp_path, config=StateTrackingConfig(num_train=32, num_val=8, num_test=16), seed=0)
    task = StateTrackingTask()
    for name, extra in (("mamba", {}), ("deltanet", {"n_heads": 2})):
        run = LRA_FAMILY.make_run("parity", "state-tracking", name, {"eigenvalue_low": -1, "eigenvalue_high": 1}, 0)
        settings = {"model": {"d_model": 8, "n_layers": 1, "negative_eigenvalues": True, **extra}}
        data = task.load(tmp_path, run, settings)
        model = task.build_model(data, run, settings)
        assert model.config.negative_eigenvalues and model.config.vocab_size == 3
        loss = task.training_loss(model, task.make_batch(data, "train", torch.arange(8)))
        loss.backward()
        scores = task.score(task.predict(model, data, run, settings), data, settings)
        assert -1.0 <= scores["scaled_accuracy"] <= 1.0
        protocol = task.protocol(data, settings)
        assert protocol["eigenvalue_range"] == "[-1, 1]" and protocol["data_origin"] == "generated"  # small sets
    assert isinstance(DeltaNet(DeltaNetConfig(d_model=8, n_heads=2, n_layers=1)), torch.nn.Module)


def test_only_the_papers_parity_protocol_counts_as_official():
    from replibench.families.lra.tasks.state_tracking import is_paper_protocol

    paper = {**StateTrackingConfig().as_dict(), "task": "parity"}
    assert is_paper_protocol(paper)
    assert not is_paper_protocol({**paper, "num_train": 1000})
    assert not is_paper_protocol({**paper, "train_size_power": 2.0})
    assert not is_paper_protocol({**paper, "task": "mod-arithmetic-brackets"})  # modulus not verified


def test_power_law_sizes_keep_the_support_and_favour_short_sequences():
    from replibench.families.lra.datasets.state_tracking import draw_sizes

    rng = np.random.default_rng(0)
    uniform = draw_sizes(20_000, (3, 40), rng)
    power = draw_sizes(20_000, (3, 40), rng, power=2.0)
    assert uniform.min() == 3 and uniform.max() == 40 and abs((uniform == 3).mean() - 1 / 38) < 0.005
    assert power.min() == 3 and power.max() == 40
    expected_short = (1 / 9) / sum(1 / s**2 for s in range(3, 41))  # P(size 3) ∝ 3^-2
    assert abs((power == 3).mean() - expected_short) < 0.015
