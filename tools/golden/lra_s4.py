"""Golden outputs of the S4 / S4D layers from state-spaces/s4 at v3.0.0 (the HTTYH / S4D release).

Usage: ``python tools/golden/lra_s4.py /path/to/s4-checkout [commit]`` (tag v3.0.0,
ab287c63f4938a76d06a6b6868ee4a7163b50b05). A plain git checkout of v3.0.0 may fail on a missing
notebook blob in some mirrors; ``git archive v3.0.0 src`` extracted into a folder works too, and
then the commit is given as the second argument. Writes ``tests/golden/{s4d-legs,s4d-inv,s4d-lin,
s4-legs,s4-fout,s4-ptd}.npz``.

Runs the training-path modules the LRA configs use (``src/models/sequence/ss/s4.py`` ->
``kernel.py`` ``SSKernelNPLR`` / ``SSKernelDiag``), pure PyTorch fallback (no CUDA extension, no
pykeops), in float64. Needs einops, opt_einsum, scipy, hydra-core, omegaconf in the environment
(throw-away venv; not project dependencies). ``src.utils.train`` (pytorch-lightning, rich) is
replaced by a stub that only provides ``get_logger`` — it is used for log messages only.

For each model: build upstream ``S4`` (d_model 4, d_state 8, l_max 16, n_ssm 2, bidirectional,
GELU, GLU post-activation) with the model's ``mode`` / ``measure`` / ``disc``, run it once
(for NPLR this turns C into C~ for l_max, as training does on the first call), then record every
parameter, the kernel (2, H, L) and the layer output for a fixed input (B, H, L). The init of
(A, B, P) before any call is recorded too (``init_*``) so the test can compare our inits.
S4-PTD: the PTD authors' code is not available here; its layer is S4D's with a PTD init, so the
fixture runs upstream's SSKernelDiag (ZOH, as our S4-PTD preset) on our PTD-initialised weights.
"""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "golden"))
sys.path.insert(0, str(ROOT / "src"))
from fixture import upstream_commit, write_fixture  # noqa: E402

H, N, L, BATCH, N_SSM = 4, 8, 16, 2, 2
MODELS = {
    # name: (upstream kernel args, our layer kind, our sub-config)
    # S4D-LegS = the LRA files' ``measure: legs`` with ``mode=diag`` (the diagonal of DPLR-LegS, B = V^* B);
    # v3's ``diag-legs`` is a different init (LegS imaginary parts with B = 1)
    "s4d-legs": ({"mode": "diag", "measure": "legs", "disc": "bilinear"}, "s4d", {"init": "legs", "disc": "bilinear"}),
    "s4d-inv": ({"mode": "diag", "measure": "diag-inv", "disc": "bilinear"}, "s4d", {"init": "inv", "disc": "bilinear"}),
    "s4d-lin": ({"mode": "diag", "measure": "diag-lin", "disc": "bilinear"}, "s4d", {"init": "lin", "disc": "bilinear"}),
    "s4-legs": ({"mode": "nplr", "measure": "legs"}, "s4", {"measure": "legs"}),
    "s4-fout": ({"mode": "nplr", "measure": "fout"}, "s4", {"measure": "fout"}),
    "s4-ptd": ({"mode": "diag", "measure": "legs", "disc": "zoh"}, "s4d", {"init": "ptd", "disc": "zoh"}),
}
DIAG_MAP = {
    "D": ("D", "squeeze0"),
    "kernel.kernel.log_dt": ("kernel.log_dt", ""),
    "kernel.kernel.inv_A_real": ("kernel.log_A_real", ""),
    "kernel.kernel.A_imag": ("kernel.A_imag", ""),
    "kernel.kernel.B": ("kernel.B", ""),
    "kernel.kernel.C": ("kernel.C", ""),
    "output_linear.0.weight": ("output_linear.weight", ""),
    "output_linear.0.bias": ("output_linear.bias", ""),
}
NPLR_MAP = {
    "D": ("D", "squeeze0"),
    "kernel.kernel.log_dt": ("kernel.log_dt", ""),
    "kernel.kernel.inv_w_real": ("kernel.log_A_real", ""),
    "kernel.kernel.w_imag": ("kernel.A_imag", ""),
    "kernel.kernel.B": ("kernel.B", "squeeze0"),
    "kernel.kernel.P": ("kernel.P", "squeeze0"),
    "kernel.kernel.C": ("kernel.C", ""),  # C~ for l_max (after upstream's first call)
    "output_linear.0.weight": ("output_linear.weight", ""),
    "output_linear.0.bias": ("output_linear.bias", ""),
}


def _import_upstream(checkout: Path):
    sys.path.insert(0, str(checkout))
    import src.utils  # noqa: F401  (hydra, omegaconf)

    stub = types.ModuleType("src.utils.train")
    stub.get_logger = lambda name=__name__, level=logging.INFO: logging.getLogger(name)
    sys.modules["src.utils.train"] = stub
    src_utils = sys.modules["src.utils"]
    src_utils.train = stub
    from src.models.hippo.hippo import nplr
    from src.models.sequence.ss.s4 import S4

    return S4, nplr


def _ours_ptd_weights(sub: dict) -> dict[str, torch.Tensor]:
    """Our S4-PTD layer's weights (upstream has no PTD init): copied into upstream's diag kernel."""
    from replibench.families.lra.models.s4d import S4DConfig, S4DLayer

    layer = S4DLayer(S4DConfig(d_model=H, d_state=N, n_ssm=N_SSM, bidirectional=True, **sub),
                     generator=torch.Generator().manual_seed(7)).double()
    return {k: v.detach().clone() for k, v in layer.state_dict().items()}


def main(checkout: Path) -> None:
    S4, hippo_nplr = _import_upstream(checkout)
    commit = sys.argv[2] if len(sys.argv) > 2 else upstream_commit(checkout)
    for name, (kernel_args, kind, sub) in MODELS.items():
        torch.manual_seed(0)
        ours = _ours_ptd_weights(sub) if name == "s4-ptd" else None
        # PTD keeps one mode per conjugate pair plus each real eigenvalue: M may exceed N/2
        n_state = 2 * ours["kernel.A_imag"].shape[-1] if ours is not None else N
        up = S4(d_model=H, d_state=n_state, l_max=L, bidirectional=True, activation="gelu", postact="glu",
                n_ssm=N_SSM, transposed=True, **kernel_args)
        init = {f"init_{k.split('.')[-1]}": v.detach().double().numpy().copy()
                for k, v in up.named_parameters() if k.split(".")[-1] in ("inv_A_real", "A_imag", "inv_w_real", "w_imag", "B", "P")}
        up = up.double()
        wmap = DIAG_MAP if kernel_args["mode"] == "diag" else NPLR_MAP
        if ours is not None:
            with torch.no_grad():
                for up_name, (our_name, how) in wmap.items():
                    t = dict(up.named_parameters())[up_name]
                    t.copy_(ours[our_name].reshape(t.shape))
            init = {}
        u = torch.randn(BATCH, H, L, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        with torch.no_grad():
            up(u)  # first call: NPLR sets up C~ for l_max (no-op for diag)
            k = up.kernel(L=L, rate=1.0)[0]  # (2, H, L)
            y = up(u)[0]  # (B, H, L)
        arrays = {"input": u.numpy(), "kernel": k.numpy(), "output": y.numpy(), **init}
        if kernel_args["measure"] in ("legs", "fout") and ours is None:  # the paper-size init, N = 64
            w64, p64, b64, _ = hippo_nplr(kernel_args["measure"], 64)
            arrays.update(init64_w=w64.numpy(), init64_P=p64.numpy(), init64_B=b64.numpy())
        for up_name in wmap:
            arrays[f"w:{up_name}"] = dict(up.named_parameters())[up_name].detach().numpy()
        weight_map = {k: (v[0] + (f" ({v[1]})" if v[1] else "")) for k, v in wmap.items()}
        notes = (f"float64; upstream S4(d_model={H}, d_state={N}, l_max={L}, n_ssm={N_SSM}, bidirectional=True, "
                 f"activation=gelu, postact=glu, {kernel_args}); input (B, H, L) = ({BATCH}, {H}, {L}) "
                 f"seed 1; kernel = up.kernel(L) (2, H, L); output = layer (B, H, L). Ours: {kind} {sub}. "
                 "Weights under 'w:<upstream name>'; squeeze0 drops a leading 1.")
        if name == "s4-ptd":
            notes += (" PTD authors' code not available: upstream SSKernelDiag run on our PTD-initialised "
                      "weights (compares the layer computation, not the PTD init).")
        write_fixture(ROOT / "tests" / "golden" / f"{name}.npz", arrays, repo="state-spaces/s4", commit=commit,
                      weight_map=weight_map, generator="tools/golden/lra_s4.py", notes=notes)
        print(name, {k: v.shape for k, v in arrays.items()})


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
