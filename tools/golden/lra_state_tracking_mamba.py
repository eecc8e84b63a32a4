"""Golden outputs of the negative-eigenvalue paper's Mamba (``MambaLM``, eigenvalues [0,1] / [-1,1]).

Upstream: automl/unlocking_state_tracking at df8f840 (Grazzi et al., ICLR 2025):
``xlstm/mamba/mamba.py`` (``MambaLM``, ``NonnegativeMambaBlock``, ``MambaConfig``), which
``xlstm/experiments/main.py`` builds for ``parity_mamba*.yaml``, on top of the pip package
``mambapy`` (1.2.0). Its ``MambaConfig`` defaults are used as the paper's configs leave them
(d_conv 1, d_state 16, expand 2, dt_rank ceil(d/16), RMSNorm eps 1e-5).

Usage (throw-away venv with torch, mambapy==1.2.0, einops; not project deps)::

    python tools/golden/lra_state_tracking_mamba.py /path/to/unlocking_state_tracking-checkout

``NonnegativeMambaBlock.ssm`` computes ``A = -exp(A_log.float())`` (and ``D.float()``) whatever the
model dtype, so its A carries float32 rounding; the weight map marks A_log with the transform
``log(float32 exp)`` (ours = log of float32(exp(A_log)), exact to float64 round-off) so the float64
comparison stays at 1e-6. (Its ``selective_scan_seq``, used when ``pscan=False``, ignores
``positive_and_negative``; the paper's configs keep ``pscan=True``.)

The numbers come from the paper's pure-PyTorch path (``use_cuda=False``:
``NonnegativeMambaBlock.selective_scan`` with mambapy's ``pscan``) in float64. With
``use_cuda=True`` the paper's runs call the selective-scan CUDA kernel of its mamba_ssm fork
(``mamba_dev``), which does not load on CPU; as a cross-check the generator also runs that code
path with the fork's own reference ``selective_scan_ref`` (it hard-codes 2·exp(ΔA) − 1 and
computes in float32), with the fork's two CUDA extension modules stubbed in ``sys.modules``, and
records the largest relative difference in the notes.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "golden"))

from fixture import upstream_commit, write_fixture  # noqa: E402

D_MODEL, N_LAYERS, VOCAB = 16, 2, 3
BATCH, LENGTH = 2, 32
MIXER = ("in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias",
         "A_log", "D", "out_proj.weight")


def weight_map(n_layers: int) -> dict[str, str]:
    out = {"token_embedding.weight": "embedding.weight", "lm_head.weight": "lm_head.weight"}
    for i in range(n_layers):
        out[f"layers.{i}.norm.weight"] = f"norms.{i}.weight"
        out.update({f"layers.{i}.mixer.{p}": f"mixers.{i}.{p}" for p in MIXER})
        # upstream takes A = -exp(A_log.float()) even in a float64 model: our A_log is log of that float32 exp
        out[f"layers.{i}.mixer.A_log"] = f"mixers.{i}.A_log|log(float32 exp)"
    return out


def _fork_selective_scan_ref(checkout: Path):
    """The mamba_dev fork's ``selective_scan_ref``, loaded from its file with the CUDA modules stubbed."""
    for name in ("selective_scan_cuda_positive", "selective_scan_cuda_positive_and_negative"):
        sys.modules.setdefault(name, types.ModuleType(name))
    path = checkout / "mamba_dev" / "mamba_ssm" / "ops" / "selective_scan_interface.py"
    spec = importlib.util.spec_from_file_location("fork_selective_scan_interface", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.selective_scan_ref


def main(checkout: Path) -> None:
    import torch

    sys.path.insert(0, str(checkout / "xlstm"))
    import mamba.mamba as paper_mamba

    gen = torch.Generator().manual_seed(20250102)
    tokens = torch.randint(0, VOCAB, (BATCH, LENGTH), generator=gen)
    params: dict[str, np.ndarray] = {}
    arrays: dict[str, np.ndarray] = {"tokens": tokens.numpy().astype(np.int64)}
    cross_check = float("nan")
    for negative in (False, True):
        cfg = paper_mamba.MambaConfig(d_model=D_MODEL, n_layers=N_LAYERS, use_cuda=False)
        model = paper_mamba.MambaLM(cfg, VOCAB, D_MODEL, negative).double().eval()
        if not params:
            for name, p in model.named_parameters():
                if name.endswith("norm.weight"):
                    w = 1.0 + 0.2 * torch.randn(p.shape, generator=gen, dtype=torch.float64)
                elif name.endswith("A_log"):  # S4D-real magnitudes 1..N with noise
                    w = torch.log(torch.arange(1, p.shape[1] + 1, dtype=torch.float64)).repeat(p.shape[0], 1)
                    w = w + 0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64)
                elif name.endswith("dt_proj.bias"):  # softplus^-1 of Δ spread over [1e-2, 3]: ΔA reaches < -ln 2
                    dt = torch.exp(torch.empty(p.shape, dtype=torch.float64).uniform_(np.log(1e-2), np.log(3.0),
                                                                                     generator=gen))
                    w = dt + torch.log(-torch.expm1(-dt))
                elif name.endswith(("D", "conv1d.bias")):
                    w = 1.0 + 0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64)
                elif name.endswith("token_embedding.weight"):
                    w = torch.randn(p.shape, generator=gen, dtype=torch.float64)
                else:
                    fan_in = p.shape[1] * (p.shape[2] if p.dim() == 3 else 1)
                    w = torch.randn(p.shape, generator=gen, dtype=torch.float64) / fan_in**0.5
                params[name] = w.float().numpy()  # stored as float32; exact when widened again
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(torch.from_numpy(params[name]).double())
        captured = []
        scan = paper_mamba.pscan

        def recording_pscan(deltaA, BX):
            captured.append(deltaA.detach().clone())
            return scan(deltaA, BX)

        paper_mamba.pscan = recording_pscan
        try:
            with torch.no_grad():
                logits = model(tokens)
        finally:
            paper_mamba.pscan = scan
        tag = "neg" if negative else "pos"
        arrays[f"logits_{tag}"] = logits.numpy()
        arrays[f"transition0_{tag}"] = captured[0][0, :16, :4].numpy()  # layer 0, example 0, 16 steps, 4 channels
        if negative:  # the CUDA code path with the fork's reference scan (float32 inside)
            ref = _fork_selective_scan_ref(checkout)
            for layer in model.layers:
                layer.mixer.config.use_cuda = True
                layer.mixer.selective_scan_cuda = (
                    lambda u, delta, A, B, C, D, z=None, delta_bias=None, delta_softplus=False,
                    positive_and_negative_associative_scan=None: ref(u, delta, A, B, C, D, z=z,
                                                                     delta_bias=delta_bias,
                                                                     delta_softplus=delta_softplus))
            with torch.no_grad():
                logits_cuda_path = model(tokens)
            cross_check = float(((logits_cuda_path - logits).abs() / logits.abs().clamp(min=1e-3)).max())
    arrays.update({f"param/{k}": v for k, v in params.items()})
    out = ROOT / "tests" / "golden" / "mamba.npz"
    write_fixture(out, arrays, repo="automl/unlocking_state_tracking", commit=upstream_commit(checkout),
                  weight_map=weight_map(N_LAYERS), generator="tools/golden/lra_state_tracking_mamba.py",
                  notes=(f"xlstm/mamba/mamba.py MambaLM on mambapy 1.2.0, d_model {D_MODEL}, layers {N_LAYERS}, "
                         f"vocab {VOCAB}, MambaConfig defaults (d_conv 1, d_state 16, expand 2), use_cuda False "
                         f"(pscan), float64; tokens ({BATCH}, {LENGTH}); logits_pos: positive_and_negative False, "
                         "logits_neg: True; transition0_*: layer-0 deltaA fed to pscan, [example 0, steps :16, channels :4, N]. "
                         "Cross-check: the use_cuda=True path with mamba_dev's selective_scan_ref (float32) "
                         f"differs from logits_neg by at most {cross_check:.2e} relative. "
                         "param/* are float32 values run in float64."))
    print(f"wrote {out} ({out.stat().st_size} bytes); min transition (neg) "
          f"{arrays['transition0_neg'].min():.3f}; cuda-path cross-check {cross_check:.2e}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: lra_state_tracking_mamba.py <unlocking_state_tracking checkout>")
    main(Path(sys.argv[1]).resolve())
