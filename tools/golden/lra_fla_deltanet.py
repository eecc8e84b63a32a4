"""Golden outputs of the negative-eigenvalue paper's DeltaNet (its flash-linear-attention fork).

Upstream: automl/unlocking_state_tracking at df8f840 (Grazzi et al., ICLR 2025), directory
``flash-linear-attention_mod``: ``fla.models.DeltaNetForCausalLM`` is what ``xlstm/experiments/
main.py`` trains (through ``xlstm/delta_net/delta_net.py``, which only returns ``.logits``).

Usage (throw-away venv with torch, transformers==4.44.2, einops, triton; not project deps)::

    python tools/golden/lra_fla_deltanet.py /path/to/unlocking_state_tracking-checkout

CPU stand-ins for the fork's GPU-only pieces (the forward math is unchanged, every replacement is
the formula of the kernel it replaces, or upstream's own reference path):

* delta rule: ``attn_mode="naive"`` (upstream ``ops/delta_rule/naive_compatible.py``
  ``delta_rule_recurrence``); the input has 64 tokens because the layer switches to the triton
  ``fused_recurrent`` kernel below 64.
* ``RMSNorm`` (triton): upstream's own ``fla.modules.layernorm.rms_norm_ref`` (same prenorm/residual
  contract).
* ``l2_norm_fn`` (triton ``_l2_norm_fwd_1pass_kernel``): x / sqrt(sum(x^2) + eps), eps 1e-6.
* ``swiglu_linear`` (CUDA jiterator): F.linear(silu(gate) * y, W, b) — its docstring formula.
* ``ShortConvolution``: ``use_fast_conv1d=False``, upstream's own PyTorch path (causal-conv1d is
  a CUDA package), with its SiLU as ``F.silu`` (fla's ``swish`` is a CUDA jiterator kernel).

Weights are random (seeded), rounded to float32 so the fixture can store them as float32 without
loss, and run in float64. Small width (d 16, 4 heads, 2 layers, SwiGLU width 32 through fla's
``intermediate_size``) keeps the fixture at tens of KB; the width rule itself is tested in
tests/lra_models/test_upstream_departures.py. Both ``sigmoid_scale`` 1 ([0, 1]) and 2 ([-1, 1])
are run; the per-head beta of layer 0 is stored too (the eigenvalue of the transition along k is
1 - beta).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "golden"))

from fixture import upstream_commit, write_fixture  # noqa: E402

D_MODEL, N_HEADS, N_LAYERS, VOCAB, MLP, CONV = 16, 4, 2, 3, 32, 4
BATCH, LENGTH = 2, 64


def weight_map(n_layers: int) -> dict[str, str]:
    """Upstream parameter name -> ours ("<ours>", or "<ours>|from rows a:b" for the fused gate_proj)."""
    out = {"model.embeddings.weight": "embedding.weight", "model.norm.weight": "final_norm.weight",
           "lm_head.weight": "lm_head.weight"}
    for i in range(n_layers):
        up, us = f"model.layers.{i}", str(i)
        out.update({
            f"{up}.attn_norm.weight": f"attn_norms.{us}.weight",
            f"{up}.mlp_norm.weight": f"mlp_norms.{us}.weight",
            f"{up}.attn.q_proj.weight": f"attns.{us}.q_proj.weight",
            f"{up}.attn.k_proj.weight": f"attns.{us}.k_proj.weight",
            f"{up}.attn.v_proj.weight": f"attns.{us}.v_proj.weight",
            f"{up}.attn.b_proj.weight": f"attns.{us}.b_proj.weight",
            f"{up}.attn.q_conv1d.weight": f"attns.{us}.q_conv.conv.weight",
            f"{up}.attn.k_conv1d.weight": f"attns.{us}.k_conv.conv.weight",
            f"{up}.attn.v_conv1d.weight": f"attns.{us}.v_conv.conv.weight",
            f"{up}.attn.o_norm.weight": f"attns.{us}.o_norm.weight",
            f"{up}.attn.o_proj.weight": f"attns.{us}.o_proj.weight",
            # fla chunks gate_proj's output in two: the first half is the gate, the second the value
            f"{up}.mlp.gate_proj.weight": (f"mlps.{us}.gate.weight|from rows 0:{MLP};"
                                          f"mlps.{us}.up.weight|from rows {MLP}:{2 * MLP}"),
            f"{up}.mlp.down_proj.weight": f"mlps.{us}.down.weight",
        })
    return out


def main(checkout: Path) -> None:
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(checkout / "flash-linear-attention_mod"))
    import fla.layers.delta_net as fla_layer
    import fla.modules.convolution as fla_conv
    import fla.modules.layernorm as fla_norm
    from fla.models.delta_net import DeltaNetConfig
    from fla.models.delta_net import modeling_delta_net as fla_model

    def rms_norm_fn(x, weight, bias, residual=None, eps=1e-6, prenorm=False, residual_in_fp32=False):
        return fla_norm.rms_norm_ref(x, weight, bias, residual=residual, eps=eps, prenorm=prenorm)

    def l2_norm_fn(x, eps=1e-6):
        return x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) + eps)

    def swiglu_linear(x, y, weight, bias):
        return F.linear(F.silu(x) * y, weight, bias)

    fla_norm.rms_norm_fn = rms_norm_fn
    fla_layer.l2_norm_fn = l2_norm_fn
    fla_model.swiglu_linear = swiglu_linear
    fla_conv.ACT2FN = {"silu": F.silu, "swish": F.silu}  # fla's swish is a CUDA jiterator kernel
    fla_conv.causal_conv1d_fn = object()  # only so the constructor accepts use_fast_conv1d; unused below

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(20250101)
    tokens = torch.randint(0, VOCAB, (BATCH, LENGTH), generator=gen)
    params: dict[str, np.ndarray] = {}
    arrays: dict[str, np.ndarray] = {"tokens": tokens.numpy().astype(np.int64)}
    for scale in (1.0, 2.0):
        cfg = DeltaNetConfig(vocab_size=VOCAB, hidden_size=D_MODEL, num_hidden_layers=N_LAYERS,
                             num_heads=N_HEADS, intermediate_size=MLP, conv_size=CONV, use_short_conv=True,
                             attn_mode="naive", sigmoid_scale=scale, fuse_cross_entropy=False)
        model = fla_model.DeltaNetForCausalLM(cfg).double().eval()
        for module in model.modules():
            if isinstance(module, fla_conv.ShortConvolution):
                module.use_fast_conv1d = False
        if not params:  # one set of weights for both ranges
            for name, p in model.named_parameters():
                if name.endswith("norm.weight"):  # RMSNorm gains near 1
                    w = 1.0 + 0.2 * torch.randn(p.shape, generator=gen, dtype=torch.float64)
                elif name.endswith("b_proj.weight"):  # beta spread over (0, 1) / (0, 2)
                    w = 0.8 * torch.randn(p.shape, generator=gen, dtype=torch.float64)
                else:  # O(1) activations: N(0, 1/fan_in)
                    fan_in = p.shape[1] * (p.shape[2] if p.dim() == 3 else 1)
                    w = torch.randn(p.shape, generator=gen, dtype=torch.float64) / fan_in**0.5
                    if name.endswith("embeddings.weight"):
                        w = torch.randn(p.shape, generator=gen, dtype=torch.float64)
                params[name] = w.float().numpy()  # stored as float32; exact when widened again
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(torch.from_numpy(params[name]).double())
        betas = []
        hook = model.model.layers[0].attn.b_proj.register_forward_hook(
            lambda mod, inp, out: betas.append((scale * out.sigmoid()).detach()))
        with torch.no_grad():
            logits = model(input_ids=tokens).logits
        hook.remove()
        tag = "neg" if scale == 2.0 else "pos"
        arrays[f"logits_{tag}"] = logits.numpy()
        arrays[f"beta0_{tag}"] = betas[0].numpy()  # (B, L, H)
    arrays.update({f"param/{k}": v for k, v in params.items()})
    out = ROOT / "tests" / "golden" / "deltanet.npz"
    write_fixture(out, arrays, repo="automl/unlocking_state_tracking", commit=upstream_commit(checkout),
                  weight_map=weight_map(N_LAYERS), generator="tools/golden/lra_fla_deltanet.py",
                  notes=(f"fla DeltaNetForCausalLM, hidden {D_MODEL}, heads {N_HEADS}, layers {N_LAYERS}, "
                         f"vocab {VOCAB}, intermediate_size {MLP}, conv {CONV}, short conv on, float64; input "
                         f"tokens ({BATCH}, {LENGTH}); logits_pos: sigmoid_scale 1, logits_neg: 2; beta0_*: "
                         "layer-0 beta (B, L, H). CPU stand-ins: attn_mode naive (delta_rule_recurrence), "
                         "rms_norm_ref, l2 norm x/sqrt(sum x^2+1e-6), swiglu_linear as F.linear(silu(g)*y), "
                         "ShortConvolution use_fast_conv1d False. param/* are float32 values run in float64."))
    print(f"wrote {out} ({out.stat().st_size} bytes); logits max |.| {np.abs(arrays['logits_neg']).max():.3f}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: lra_fla_deltanet.py <unlocking_state_tracking checkout>")
    main(Path(sys.argv[1]).resolve())
