"""Golden outputs of Moirai-MoE (SalesforceAIResearch/uni2ts ``MoiraiMoEModule`` / ``MoiraiMoEForecast``).

Usage (in a throw-away venv: torch, numpy<2, einops 0.7, jaxtyping, hydra-core, huggingface_hub,
safetensors, lightning, gluonts 0.14.4, pandas, scipy, orjson — not uni2ts itself, which pins
torch<2.5; its ``src/`` is put on ``sys.path``):

    python tools/golden/ett_moirai_moe.py /path/to/uni2ts-checkout   # at 8d2a08df4512ab3551e53dfbb7c147e95f06731b

Writes ``tests/golden/moirai_moe.npz`` for a small Moirai-MoE with the released configs' structure
(the 4-component mixture, patch size 16, max_seq_len 512, MoE with 32 experts / 2 per token) and
d_model 64, d_ff 16, 2 layers, run in float64 (the model is cast with ``.double()``; upstream's
scaler still rounds loc and scale to float32, as it does in float32).

Weights are not stored (the fixture would exceed the golden budget): every state-dict tensor k
(sorted by name) is set by the recipe ``0.1·sin(0.37·i + k + 1)`` over its flattened index i, plus
1 for the RMSNorm weights, and ``sin(0.37·i + k + 1)`` for the float64 centroids; ``w_sum/<name>``
records each tensor's sum so the test proves it rebuilt the same weights. ``weight_map`` is the
identity: our module keeps upstream's parameter names.

Two cases, each a batch of 2 series:

* ``A``: one variate, context 40 (not a multiple of 16: left padding), prediction length 20 (two
  patches: the autoregressive branch of ``MoiraiMoEForecast.forward``), one unobserved value, the
  second series padded (``past_is_pad``) for its first 3 steps;
* ``B``: two variates, context 48, prediction length 16 (one patch: the single-step branch).

Recorded per case: the inputs; ``_convert``'s packed tokens and ids; ``MoiraiMoEModule.forward`` on
them — the affine loc/scale, the mixture's weight logits, every component's parameters, the mean,
``log_prob`` of a positive value per token and step, and the encoder's output; and
``MoiraiMoEForecast.forward`` sample paths (5 samples) after ``torch.manual_seed(123)``. Only
numbers are kept; no upstream code is copied.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fixture import upstream_commit, write_fixture  # noqa: E402

OUT = HERE.parents[1] / "tests" / "golden" / "moirai_moe.npz"
D_MODEL, D_FF, LAYERS, NUM_SAMPLES = 64, 16, 2, 5


def recipe_weights(model) -> dict:
    """Set every state-dict tensor by the recipe in the module docstring; return their sums."""
    import torch

    sums = {}
    state = model.state_dict()
    with torch.no_grad():
        for k, name in enumerate(sorted(state)):
            tensor = state[name]
            index = torch.arange(tensor.numel(), dtype=torch.float64)
            values = torch.sin(0.37 * index + k + 1)
            if name.endswith("centroid"):
                pass
            elif name.endswith(("norm1.weight", "norm2.weight", "q_norm.weight", "k_norm.weight", "encoder.norm.weight")):
                values = 1.0 + 0.1 * values
            else:
                values = 0.1 * values
            tensor.copy_(values.reshape(tensor.shape).to(tensor.dtype))
            sums[f"w_sum/{name}"] = float(tensor.double().sum())
    return sums


def main(checkout: Path) -> None:
    sys.path.insert(0, str(checkout / "src"))
    import torch

    torch.set_default_dtype(torch.float64)
    from uni2ts.distribution import (LogNormalOutput, MixtureOutput, NegativeBinomialOutput,
                                     NormalFixedScaleOutput, StudentTOutput)
    from uni2ts.model.moirai_moe import MoiraiMoEForecast, MoiraiMoEModule

    torch.manual_seed(0)
    module = MoiraiMoEModule(
        distr_output=MixtureOutput([StudentTOutput(), NormalFixedScaleOutput(scale=1e-3), NegativeBinomialOutput(),
                                    LogNormalOutput()]),
        d_model=D_MODEL, d_ff=D_FF, num_layers=LAYERS, patch_sizes=(16,), max_seq_len=512, attn_dropout_p=0.0,
        dropout_p=0.0, scaling=True).double()
    module.eval()
    arrays = recipe_weights(module)

    generator = np.random.default_rng(17)
    cases = {"A": (40, 20, 1), "B": (48, 16, 2)}
    for case, (context, horizon, dims) in cases.items():
        steps = np.arange(context)[None, :, None]
        past = 15 + 3 * np.sin(2 * np.pi * steps / 12 + np.arange(dims)[None, None, :]) \
            + generator.normal(0, 0.5, size=(2, context, dims))
        observed = np.ones((2, context, dims), dtype=bool)
        is_pad = np.zeros((2, context), dtype=bool)
        if case == "A":
            observed[0, 20, 0] = False
            past[0, 20, 0] = 0.0
            is_pad[1, :3] = True
            past[1, :3, 0] = 0.0
            observed[1, :3, 0] = False
        forecast = MoiraiMoEForecast(module=module, prediction_length=horizon, target_dim=dims,
                                     feat_dynamic_real_dim=0, past_feat_dynamic_real_dim=0, context_length=context,
                                     patch_size=16, num_samples=NUM_SAMPLES)
        forecast.eval()
        past_t = torch.from_numpy(past)
        observed_t = torch.from_numpy(observed)
        is_pad_t = torch.from_numpy(is_pad)
        prefix = f"{case}/"
        arrays.update({prefix + "past_target": past, prefix + "past_observed": observed, prefix + "past_is_pad": is_pad,
                       prefix + "shape": np.array([context, horizon, dims, NUM_SAMPLES])})
        with torch.no_grad():
            converted = forecast._convert(16, past_t, observed_t, is_pad_t)
            names = ("target", "observed_mask", "sample_id", "time_id", "variate_id", "prediction_mask")
            for name, value in zip(names, converted):
                arrays[prefix + "convert/" + name] = value.numpy()
            patch_size = torch.ones_like(converted[3], dtype=torch.long) * 16
            captured = {}
            hook = module.encoder.register_forward_hook(lambda _m, _i, out: captured.setdefault("reprs", out))
            distr = module(*converted, patch_size)
            hook.remove()
            mixture = distr.base_dist
            arrays[prefix + "module/loc"] = distr.transforms[0].loc.numpy()
            arrays[prefix + "module/scale"] = distr.transforms[0].scale.numpy()
            arrays[prefix + "module/reprs"] = captured["reprs"].numpy()
            arrays[prefix + "module/weights_logits"] = mixture.weights.logits.numpy()
            components = mixture.components
            arrays[prefix + "module/student_df"] = components[0].df.numpy()
            arrays[prefix + "module/student_loc"] = components[0].loc.numpy()
            arrays[prefix + "module/student_scale"] = components[0].scale.numpy()
            arrays[prefix + "module/normal_loc"] = components[1].loc.numpy()
            arrays[prefix + "module/negbin_total_count"] = components[2].total_count.numpy()
            arrays[prefix + "module/negbin_logits"] = components[2].logits.numpy()
            arrays[prefix + "module/lognormal_loc"] = components[3].loc.numpy()
            arrays[prefix + "module/lognormal_scale"] = components[3].scale.numpy()
            arrays[prefix + "module/mean"] = distr.mean.numpy()
            value = converted[0].abs() + 0.5  # positive: inside every component's support
            arrays[prefix + "module/log_prob_value"] = value.numpy()
            arrays[prefix + "module/log_prob"] = distr.log_prob(value).numpy()
            torch.manual_seed(123)
            arrays[prefix + "forecast/samples"] = forecast(past_t, observed_t, is_pad_t).numpy()

    weight_map = {name: name for name in module.state_dict()}
    write_fixture(OUT, arrays, repo="SalesforceAIResearch/uni2ts", commit=upstream_commit(checkout),
                  weight_map=weight_map, generator="tools/golden/ett_moirai_moe.py",
                  notes="MoiraiMoEModule d_model 64, d_ff 16, 2 layers, patch 16, max_seq_len 512, mixture "
                        "StudentT/NormalFixedScale(1e-3)/NegativeBinomial/LogNormal; float64 (.double(); the "
                        "scaler rounds loc/scale to float32 as upstream does); recipe weights (see the "
                        "generator's docstring), w_sum/<name> = each tensor's sum; forecast samples after "
                        "torch.manual_seed(123), 5 samples; Mixture.sample draws every component (StudentT, "
                        "Normal, NegBin as Gamma then Poisson, LogNormal) and then the Categorical.")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} /path/to/uni2ts-checkout")
    main(Path(sys.argv[1]).resolve())
