"""Golden outputs of the Gaunt tensor product, computed by the Gaunt paper's released code.

Usage::

    python tools/golden/oc20_gaunt.py /path/to/Gaunt-Tensor-Product-checkout

The checkout must be lsj2408/Gaunt-Tensor-Product at ``7c5630a`` (2024-11-02; Luo, Chen,
Krishnapriyan, ICLR 2024). Its OC20 model (EquiformerV2 + Gaunt Selfmix) was never released, so
there is nothing upstream to compare our ``equivariant-gaunt`` *model* with; what the authors did
release is the Gaunt tensor product itself, in ``efficiency-comparison/``:

* ``sh2f.py`` (SH coefficients → 2D Fourier coefficients, with the precomputed table
  ``constants/coefficient_sh2f.pt``) and ``fft.py`` (the 2D convolution of two Fourier series by
  FFT) — imported from the checkout;
* their correctness reference, ``GauntFullyConnectedTensorProduct`` in ``test_equi_feat.ipynb``:
  e3nn's ``TensorProduct`` over the paths with l1 + l2 + l3 even (SH parities), each path weighted
  by ``const_wigner2gaunt[l_out, l1, l2] ** 2`` (``constants/const_wigner2gaunt.pt``), no irrep or
  path normalisation. The notebook cells defining it and ``flatten_irreps`` are executed from the
  checkout (nothing copied here).

The third step, ``f2sh.py`` with ``constants/coefficient_f2sh.pt``, cannot run: that table is
missing from the stored snapshot of the repository (a large blob), so the released pipeline's last
step is not compared. The fixture ``tests/golden/oc20_gaunt_tp.npz`` holds, for degrees 0..L-1
(L = 4, our model's lmax = 3) and 3 channels of random float64 inputs in the authors' (C, L, 2L-1)
layout (entry [c, l, m + L - 1]):

* ``e3nn_out`` — the authors' e3nn Gaunt product (output degrees 0..2L-2, e3nn layout, float64
  arithmetic with their float32 constants);
* ``fourier_re`` / ``fourier_im`` — the authors' ``FFT_channel(sh2f_channel(x1), sh2f_channel(x2))``:
  the product's 2D Fourier coefficients, (C, 4L-3, 4L-3);
* ``sh_fourier_re/im`` — ``sh2f`` of each single real SH Y_lm (l < L), so a test can pin down the
  table's angle convention against e3nn's spherical harmonics;
* ``wigner2gaunt`` — the constants used, [l_out, l1, l2] for degrees up to 2L-2.

Their tables are float32 / complex64, so agreement is to ~1e-6 relative, not float64 round-off.
Needs only torch and e3nn (the project's).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = "lsj2408/Gaunt-Tensor-Product"
ROOT = Path(__file__).resolve().parents[2]
L = 4  # degrees 0..L-1 in the authors' notation; our model's lmax = 3
CHANNELS = 3


def _notebook_definitions(notebook: Path, names: tuple[str, ...], namespace: dict) -> None:
    """Execute the notebook's code cells that define ``names`` (and nothing else) in ``namespace``."""
    cells = json.loads(notebook.read_text())["cells"]
    for name in names:
        sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        matching = [s for s in sources if f"def {name}(" in s or f"class {name}(" in s]
        if len(matching) != 1:
            raise ValueError(f"{notebook}: expected one cell defining {name}, found {len(matching)}")
        exec(compile(matching[0], f"{notebook.name}:{name}", "exec"), namespace)  # noqa: S102 (upstream code, run not copied)


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit(__doc__)
    checkout = Path(argv[1]).resolve()
    sys.path.insert(0, str(ROOT / "tools" / "golden"))
    from fixture import upstream_commit, write_fixture  # noqa: E402

    import torch
    from e3nn import o3

    torch.set_default_dtype(torch.float64)
    code = checkout / "efficiency-comparison"
    sys.path.insert(0, str(code))
    import fft as upstream_fft  # the authors' modules
    import sh2f as upstream_sh2f

    constants = torch.load(code / "constants" / "const_wigner2gaunt.pt", weights_only=True)  # (39, 20, 20) f32
    sh2f_bases = torch.load(code / "constants" / "coefficient_sh2f.pt", weights_only=True)[L]  # (L, 2L-1, 2L-1, 2)
    namespace = {"torch": torch, "o3": o3, "TensorProduct": o3.TensorProduct, "Irreps": o3.Irreps,
                 "const_wigner2gaunt": constants}
    _notebook_definitions(code / "test_equi_feat.ipynb", ("flatten_irreps", "GauntFullyConnectedTensorProduct"),
                          namespace)

    generator = torch.Generator().manual_seed(11)
    x = torch.randn(2, CHANNELS, L, 2 * L - 1, generator=generator)
    for l in range(L):  # entries |m| > l are not coefficients
        x[:, :, l, : L - 1 - l] = 0
        x[:, :, l, L + l:] = 0
    in1_sh, in2_sh = x[0], x[1]

    irreps_in = o3.Irreps([(CHANNELS, (l, (-1) ** l)) for l in range(L)])
    irreps_out = o3.Irreps([(CHANNELS, (l, (-1) ** l)) for l in range(2 * L - 1)])
    tp = namespace["GauntFullyConnectedTensorProduct"](
        irreps_in, irreps_in, irreps_out, irrep_normalization="none", path_normalization="none",
        internal_weights=False, shared_weights=True)
    flatten = namespace["flatten_irreps"]
    e3nn_out = tp(flatten(in1_sh), flatten(in2_sh), weight=torch.ones(tp.weight_numel))

    fourier = upstream_fft.FFT_channel(upstream_sh2f.sh2f_channel(in1_sh, sh2f_bases),
                                       upstream_sh2f.sh2f_channel(in2_sh, sh2f_bases))  # (C, 4L-3, 4L-3)
    single = torch.zeros(L * L, L, 2 * L - 1)
    for l in range(L):
        for m in range(-l, l + 1):
            single[l * l + l + m, l, m + L - 1] = 1.0
    sh_fourier = upstream_sh2f.sh2f_channel(single, sh2f_bases)  # (L^2, 2L-1, 2L-1): each Y_lm alone

    arrays = {
        "in1_sh": in1_sh.numpy(), "in2_sh": in2_sh.numpy(), "e3nn_out": e3nn_out.detach().numpy(),
        "fourier_re": fourier.real.numpy(), "fourier_im": fourier.imag.numpy(),
        "sh_fourier_re": sh_fourier.real.numpy(), "sh_fourier_im": sh_fourier.imag.numpy(),
        "wigner2gaunt": constants[: 2 * L - 1, :L, :L].numpy(),
        "L": np.array(L), "channels": np.array(CHANNELS),
    }
    notes = ("Gaunt tensor product of the authors' released code (efficiency-comparison/): e3nn_out = "
             "GauntFullyConnectedTensorProduct (test_equi_feat.ipynb) on flatten_irreps(in*_sh), degrees "
             f"0..{L - 1} -> 0..{2 * L - 2}, {CHANNELS} channels ('uuu'); fourier = FFT_channel(sh2f_channel(in1), "
             "sh2f_channel(in2)) with coefficient_sh2f.pt[L]; sh_fourier = sh2f of each single Y_lm, row "
             "l*l+l+m. f2sh (coefficient_f2sh.pt) not run: the table is absent from the stored snapshot. "
             "Constants float32 / complex64.")
    path = write_fixture(ROOT / "tests" / "golden" / "oc20_gaunt_tp.npz", arrays, repo=REPO,
                         commit=upstream_commit(checkout), weight_map={}, generator="tools/golden/oc20_gaunt.py",
                         notes=notes)
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv)
