"""Issue 11, departures 2 and 3: DeltaNet and the LRA Transformer as the authors' code builds them.

DeltaNet: the negative-eigenvalue paper's flash-linear-attention fork
(automl/unlocking_state_tracking@df8f840, ``fla/models/delta_net``). LRA Transformer:
google-research/long-range-arena@cd31e5c (flax). Every check below failed on the previous code
(MLP width 341, RMSNorm eps 1e-5, PyTorch default inits; Path-X with the Pathfinder-32 overrides,
LayerNorm eps 1e-5, one xavier over the fused qkv matrix, exact GELU, NLI dual head, sin/cos in
halves instead of interleaved, a [CLS] token in the Retrieval encoder). The forward numerics are
also pinned by tests/golden/test_lra_seq_golden.py.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from replibench.families.lra.models.deltanet import DeltaNet, DeltaNetConfig
from replibench.families.lra.models.linear_rnn import RMSNorm
from replibench.families.lra.models.presets import preset
from replibench.families.lra.models.sequence_classifier import Config, SequenceClassifier


@pytest.mark.parametrize("d_model, width", [(128, 512), (16, 256), (384, 1024)])
def test_deltanet_mlp_width_is_rounded_up_to_a_multiple_of_256(d_model: int, width: int) -> None:
    # fla DeltaNetMLP: int(d * 4 * 2/3) = 341 at d = 128 -> 512; 42 -> 256; 1024 -> 1024
    model = DeltaNet(DeltaNetConfig(d_model=d_model, n_heads=4, n_layers=1))
    assert model.mlps[0].gate.out_features == width
    assert model.mlps[0].down.in_features == width


def test_deltanet_every_rmsnorm_uses_eps_1e_6() -> None:
    model = DeltaNet(DeltaNetConfig())
    norms = [m for m in model.modules() if isinstance(m, RMSNorm)]
    assert len(norms) == 2 * 2 + 2 + 1  # 2 per block, one per attention output, final
    assert all(m.eps == 1e-6 for m in norms)


def test_deltanet_init_follows_fla_init_weights() -> None:
    torch.manual_seed(0)
    model = DeltaNet(DeltaNetConfig(d_model=128, n_layers=2))
    # N(0, 0.02²): embedding (3 x 128), LM head (3 x 128), gate/up (512 x 128 each);
    # down_proj additionally / sqrt(2 * n_layers) = 0.01. Old: N(0, 1) embedding, kaiming-uniform.
    assert model.embedding.weight.std().item() == pytest.approx(0.02, rel=0.15)
    assert model.lm_head.weight.std().item() == pytest.approx(0.02, rel=0.15)
    for mlp in model.mlps:
        assert mlp.gate.weight.std().item() == pytest.approx(0.02, rel=0.02)
        assert mlp.up.weight.std().item() == pytest.approx(0.02, rel=0.02)
        assert mlp.down.weight.std().item() == pytest.approx(0.01, rel=0.02)
    # attention projections keep xavier-uniform with gain 2^-2.5: bound 2^-2.5 * sqrt(6 / 256)
    bound = 2**-2.5 * math.sqrt(6 / 256)
    q = model.attns[0].q_proj.weight
    assert q.abs().max().item() <= bound
    assert q.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)


def test_pathx_transformer_is_lra_base_pathfinder128_config() -> None:
    sub = preset("transformer", "paper", "pathx")["model"]["transformer"]
    assert (sub["emb_dim"], sub["num_heads"], sub["num_layers"], sub["qkv_dim"], sub["mlp_dim"]) == (32, 2, 1, 16, 32)
    assert (sub["dropout"], sub["attention_dropout"], sub["pool"], sub["learn_pos_emb"]) == (0.1, 0.1, "MEAN", True)
    train = preset("transformer", "paper", "pathx")["train"]
    assert (train["batch_size"], train["lr"], train["grad_clip"], train["warmup_steps"]) == (64, 1e-3, 1.0, 2500)


def _transformer(dual: bool = False) -> SequenceClassifier:
    sub = {"emb_dim": 64, "num_heads": 4, "num_layers": 2, "qkv_dim": 64, "mlp_dim": 128, "max_len": 16,
           "pool": "MEAN"}
    return SequenceClassifier(Config.from_dict(
        {"layer": "transformer", "n_classes": 3, "vocab_size": 11, "dual": dual, "transformer": sub}))


def test_lra_transformer_flax_numerics() -> None:
    torch.manual_seed(0)
    model = _transformer()
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    assert len(norms) == 5 and all(m.eps == 1e-6 for m in norms)  # flax LayerNorm epsilon
    gelus = [m for m in model.modules() if isinstance(m, nn.GELU)]
    assert len(gelus) == 2 and all(m.approximate == "tanh" for m in gelus)  # jax.nn.gelu default
    # q, k, v: three xavier-uniform (64 -> 64) kernels, bound sqrt(6 / 128) = 0.2165; one xavier over
    # the fused (192 x 64) matrix would be bounded by sqrt(6 / 256) = 0.153
    bound = math.sqrt(6 / 128)
    for block in model.backbone.blocks:
        w = block.attn.qkv.weight.view(3, 64, 64)
        for part in w:
            assert part.abs().max().item() <= bound
            assert part.abs().max().item() > 0.95 * bound
        mlp_bound = math.sqrt(6 / (64 + 128))
        for lin in (block.mlp[0], block.mlp[3]):
            assert lin.weight.abs().max().item() <= mlp_bound
            assert lin.weight.abs().max().item() > 0.95 * mlp_bound
            assert lin.bias.abs().max().item() < 1e-5  # N(0, 1e-6²)
    head = [m for m in model.decoder.modules() if isinstance(m, nn.Linear)]
    # flax Dense default: lecun-normal (variance 1/fan_in, truncated at 2 sigma), zero bias
    std = math.sqrt(1 / 64) / 0.87962566103423978
    assert head[0].weight.abs().max().item() <= 2 * std + 1e-7
    assert head[0].weight.std().item() == pytest.approx(math.sqrt(1 / 64), rel=0.05)
    assert all(torch.count_nonzero(lin.bias) == 0 for lin in head)


def test_lra_transformer_dual_head_concatenates_and_has_three_dense_layers() -> None:
    torch.manual_seed(0)
    model = _transformer(dual=True).eval()
    head = [m for m in model.decoder.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in head] == [(128, 128), (128, 64), (64, 3)]
    x = torch.randint(1, 11, (2, 16))
    x2 = torch.randint(1, 11, (2, 16))
    with torch.no_grad():
        a, b = model.features(torch.cat([x, x2]), None).chunk(2)
        assert torch.allclose(model(x, None, x2, None), model.decoder(torch.cat([a, b], dim=-1)))


def test_lra_sinusoidal_positions_interleave_sin_and_cos() -> None:
    from replibench.families.lra.models.transformer import sinusoidal_positions

    pe = sinusoidal_positions(5, 8).double()
    pos = 3
    for i in range(4):  # LRA sinusoidal_init: pe[:, 2i] = sin(p w_i), pe[:, 2i + 1] = cos(p w_i)
        w = math.exp(-(2 * i) * math.log(10000.0) / 8)
        assert pe[pos, 2 * i].item() == pytest.approx(math.sin(pos * w), abs=1e-7)
        assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(pos * w), abs=1e-7)


def test_retrieval_transformer_pools_the_first_token_without_a_cls_token() -> None:
    sub = preset("transformer", "paper", "retrieval")["model"]["transformer"]
    assert sub["pool"] == "FIRST"  # LRA dual encoder: classifier=False, then "CLS" = position 0
    enc = SequenceClassifier(Config.from_dict({"layer": "transformer", "n_classes": 2, "vocab_size": 11,
                                               "dual": True, "transformer": {**sub, "num_layers": 1, "max_len": 8,
                                                                             "emb_dim": 16, "qkv_dim": 16,
                                                                             "num_heads": 2, "mlp_dim": 16}}))
    assert enc.backbone.cls is None and enc.backbone.pos.shape[0] == 8


@pytest.mark.parametrize("task, dims", [
    ("image", (128, 8, 1, 64, 128)),  # cifar10/transformer_base.py at LRA cd31e5c (since ee6649e)
    ("pathfinder", (32, 4, 4, 16, 32)),  # pathfinder32/transformer_base.py at LRA cd31e5c (since ee6649e)
])
def test_image_task_transformers_use_lra_transformer_base_overrides(task: str, dims: tuple) -> None:
    sub = preset("transformer", "paper", task)["model"]["transformer"]
    assert (sub["emb_dim"], sub["num_heads"], sub["num_layers"], sub["qkv_dim"], sub["mlp_dim"]) == dims


def test_listops_transformer_is_the_pinned_base_config_untied() -> None:
    sub = preset("transformer", "paper", "listops")["model"]["transformer"]
    # base_listops_config.py at LRA cd31e5c; tied_weights is dead config (never reaches the model)
    assert (sub["num_layers"], sub["mlp_dim"], sub["tied_weights"]) == (4, 1024, False)
