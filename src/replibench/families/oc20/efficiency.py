"""The Gaunt paper's efficiency comparison, measured here: our Gaunt product against e3nn's CG one.

Luo, Chen, Krishnapriyan, "Enabling Efficient Equivariant Operations in the Fourier Basis via
Gaunt Tensor Products", ICLR 2024 (arXiv:2401.10216), Figure 1, and the notebooks of its
``efficiency-comparison/`` folder (:data:`PAPER_SOURCE`). Three settings, with the notebooks'
convention that ``L`` is the *number* of degrees (degrees 0..L-1, so lmax = L - 1):

* ``feature-interaction`` (``test_equi_feat.ipynb``): one node, C = 128 channels, the channel-wise
  ("uuu") product of two features with degrees 0..L-1, output degrees 0..2L-2.
* ``convolution`` (``test_equi_conv.ipynb``): one channel; a feature with degrees 0..L-1 times the
  spherical harmonics of an edge direction r, output degrees 0..2L-2.
* ``many-body`` (``test_equi_many-body.ipynb``): batch 32 x 128 channels; x + sum over nu = 2..
  correlation of the nu-fold self Gaunt product of x truncated to degrees 0..L-1.

Baselines. ``e3nn``: ``o3.TensorProduct`` with "uuu" instructions over every path whose output
irrep is in ir1 x ir2 (parity (-1)^l, so only l1 + l2 + l3 even), normalizations "none", path
weight c^2 for the Gaunt constant c as in the notebooks (e3nn applies sqrt(path weight)) and
shared weights sign(c) where the notebooks pass ones (same cost; see
:func:`e3nn_gaunt_tensor_product`), so both sides compute the same function; for many-body the
notebooks' chain x (x) (x (x) ...) of such products, each to the full degree nu (L - 1), truncated and
summed. ``escn`` (convolution only): :func:`escn_convolution`, the notebook's rotate / SO(2)
product / rotate back. Not implemented: MACE's symmetric contraction (many-body), whose paper
figures are still listed in :data:`PAPER_MS` (``paper_figure(..., "mace")``).

Differences from the notebooks, on purpose. They time one call per random input with
``time.time()`` around CUDA calls, first call included, mean of 10, and their e3nn many-body time
includes *building* the TensorProducts inside the timed region. Here each side is built once, called
once to warm up, then timed ``repeats`` times: process CPU time on CPU (run with one thread: other
jobs on a shared machine inflate it least), wall time between ``cuda.synchronize()`` calls on
CUDA; the row reports the best (minimum) and the median, in milliseconds. Our inputs and outputs
are in our layout (..., C, K) with K = L^2, e3nn's in its own (..., C * K by irrep blocks); the
layout conversion is outside the timed region on both sides. Each row also carries the maximum
absolute difference between the two results (they compute the same function and must agree).

Only the functions below; no module-level state but immutable constants. torch and e3nn are
imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

#: settings and their defaults (channels, batch) from the notebooks
SETTINGS: dict[str, dict[str, int]] = {
    "feature-interaction": {"channels": 128, "batch": 1},
    "convolution": {"channels": 1, "batch": 1},
    "many-body": {"channels": 128, "batch": 32},
}

#: where the paper's numbers come from (git commit of lsj2408/Gaunt-Tensor-Product)
PAPER_REPO = "lsj2408/Gaunt-Tensor-Product"
PAPER_COMMIT = "7c5630a7f1316a1408c5811d836df864f26c02cb"
PAPER_SOURCE = f"{PAPER_REPO}@{PAPER_COMMIT}, efficiency-comparison/*.ipynb cell outputs"
PAPER_NOTEBOOKS: dict[str, str] = {
    "feature-interaction": "efficiency-comparison/test_equi_feat.ipynb",
    "convolution": "efficiency-comparison/test_equi_conv.ipynb",
    "many-body": "efficiency-comparison/test_equi_many-body.ipynb",
}

#: the notebooks' printed times in ms (mean of 10 calls on their GPU, forward only):
#: (setting, L, correlation or None) -> {"gaunt": ms, "e3nn": ms, "escn" | "mace": ms}
PAPER_MS: dict[tuple[str, int, int | None], dict[str, float]] = {
    **{("feature-interaction", L, None): {"e3nn": e3nn, "gaunt": gaunt} for L, e3nn, gaunt in [
        (2, 6.67, 0.76), (3, 11.39, 0.82), (4, 138.60, 2.31), (5, 211.10, 3.06), (6, 326.77, 2.63),
        (7, 403.43, 2.28), (8, 678.58, 3.48), (9, 852.36, 7.16), (10, 914.15, 6.14), (11, 1194.65, 2.34),
        (12, 1349.64, 2.81), (13, 1538.02, 2.92), (14, 2270.26, 3.07)]},
    **{("convolution", L, None): {"e3nn": e3nn, "escn": escn, "gaunt": gaunt} for L, e3nn, escn, gaunt in [
        (2, 3.91, 5.14, 0.84), (3, 144.36, 6.02, 0.88), (4, 218.48, 13.24, 2.71), (5, 368.57, 14.11, 2.85),
        (6, 343.13, 16.52, 2.33), (7, 482.23, 28.85, 1.59), (8, 510.16, 34.98, 1.98), (9, 622.42, 59.15, 1.80),
        (10, 1223.46, 136.20, 4.94), (11, 2077.59, 245.45, 3.66), (12, 2560.89, 308.97, 2.47)]},
    **{("many-body", L, nu): {"e3nn": e3nn, "mace": mace, "gaunt": gaunt} for L, nu, e3nn, mace, gaunt in [
        (2, 3, 249.73, 3.00, 1.29), (3, 3, 493.65, 4.86, 1.71), (4, 3, 970.76, 7.06, 2.27),
        (5, 3, 1767.27, 13.59, 3.80), (6, 3, 3648.32, 44.02, 8.60), (2, 4, 568.19, 3.81, 1.41),
        (2, 5, 734.46, 4.55, 2.05), (2, 6, 1087.00, 8.25, 2.68), (2, 7, 1140.07, 11.40, 3.46)]},
}

#: baselines implemented here per setting (the paper's MACE times are listed in PAPER_MS only)
BASELINES: dict[str, tuple[str, ...]] = {
    "feature-interaction": ("e3nn",),
    "convolution": ("e3nn", "escn"),
    "many-body": ("e3nn",),
}


@dataclass(frozen=True)
class EfficiencyRow:
    """One (setting, L, pass, baseline) measurement. Times in milliseconds.

    ``gaunt_ms`` / ``baseline_ms``: best of ``repeats`` timed calls; ``*_median_ms``: their median.
    ``ratio`` = gaunt_ms / baseline_ms (below 1: Gaunt faster). ``max_abs_difference``: largest
    |Gaunt - baseline| over the output (forward) in ``dtype``. ``paper_*_ms``: the notebooks' times
    for the same (setting, L, correlation) on their GPU, forward only (None where none printed).
    """

    setting: str
    L: int  # number of degrees (notebook convention): degrees 0..L-1
    lmax: int  # = L - 1
    correlation: int | None
    channels: int
    batch: int
    pass_: str  # "forward" or "forward+backward"
    baseline: str
    gaunt_ms: float
    baseline_ms: float
    gaunt_median_ms: float
    baseline_median_ms: float
    ratio: float
    max_abs_difference: float
    reference_max_abs: float  # max |baseline output|: the scale max_abs_difference is relative to
    paper_gaunt_ms: float | None
    paper_baseline_ms: float | None
    device: str
    dtype: str
    repeats: int

    def as_claim_row(self) -> dict[str, Any]:
        """The row in the claim-file format of :mod:`replibench.report.claims`."""
        row = {"L": self.L, "pass": self.pass_, "baseline": self.baseline, "gaunt_ms": self.gaunt_ms,
               "baseline_ms": self.baseline_ms, "max_abs_difference": self.max_abs_difference,
               "paper_gaunt_ms": self.paper_gaunt_ms, "paper_baseline_ms": self.paper_baseline_ms,
               "lmax": self.lmax, "channels": self.channels, "batch": self.batch}
        if self.correlation is not None:
            row["correlation"] = self.correlation
        return row

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["pass"] = out.pop("pass_")
        return out


#: titles of the claim settings (the report's table headings)
TITLES: dict[str, str] = {
    "feature-interaction": "Gaunt vs CG: equivariant feature interaction (128 channels, output degrees 0..2L-2)",
    "convolution": "Gaunt vs CG and eSCN: equivariant convolution (1 channel, feature x SH of an edge)",
    "many-body": "Gaunt vs CG: many-body interaction (batch 32 x 128 channels, nu-fold self products)",
}


def claim_file(setting: str, rows: list[EfficiencyRow], device: str) -> dict[str, Any]:
    """The claim JSON object (:func:`replibench.report.claims.read_claims`) of one setting's rows;
    ``device`` names the machine and threads, e.g. "cpu x86_64, 1 thread"."""
    return {"family": "oc20", "claim": "gaunt-efficiency", "setting": setting, "title": TITLES[setting],
            "paper": "Luo, Chen, Krishnapriyan, ICLR 2024 (arXiv:2401.10216), Figure 1",
            "paper_source": f"{PAPER_REPO}@{PAPER_COMMIT} {PAPER_NOTEBOOKS[setting]}", "device": device,
            "rows": [row.as_claim_row() for row in rows]}


def paper_figure(setting: str, L: int, correlation: int | None, method: str) -> float | None:
    """The notebooks' printed time (ms) of ``method`` ("gaunt", "e3nn", "escn", "mace"), or None."""
    key = (setting, L, correlation if setting == "many-body" else None)
    return PAPER_MS.get(key, {}).get(method)


def time_ms(fn: Callable[[], Any], repeats: int, device: str) -> tuple[float, float]:
    """(best, median) milliseconds of ``repeats`` calls of ``fn`` after one warm-up call.

    CPU: process CPU time (``time.process_time``), which other jobs on a shared machine inflate
    less than wall time; meaningful per core only when torch runs one thread (the caller's
    ``torch.set_num_threads(1)``). CUDA: wall time, synchronizing before and after each call.
    """
    import torch

    cuda = device.startswith("cuda")
    clock = time.perf_counter if cuda else time.process_time
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    fn()
    sync()
    times = []
    for _ in range(max(repeats, 1)):
        sync()
        start = clock()
        fn()
        sync()
        times.append(1e3 * (clock() - start))
    return min(times), statistics.median(times)


def to_e3nn_layout(x, lmax: int):
    """(..., C, K) our layout -> (..., C * K) e3nn's for irreps ``C x 0 + C x 1 + ...`` (blocks by l)."""
    import torch

    blocks = [x[..., l * l:(l + 1) ** 2].flatten(-2) for l in range(lmax + 1)]  # each (..., C * (2l+1))
    return torch.cat(blocks, dim=-1)


def gaunt_constant(l1: int, l2: int, l3: int) -> float:
    """c with Gaunt tensor G_{l1 l2 l3} = c * e3nn's ``wigner_3j(l1, l2, l3)``, for any degrees.

    ``gaunt.gaunt_path_constant`` integrates SH by quadrature and stops at ``gaunt.MAX_SH_DEGREE``
    (32); the many-body chain needs output degrees nu (L - 1), possibly beyond, and a closed form
    is cheaper and independent of the SH (the tests check the two against each other). Closed form: with component-normalized SH,
    Y_l0 = sqrt(2l+1) P_l, so G at m1 = m2 = m3 = 0 is sqrt((2l1+1)(2l2+1)(2l3+1)) (l1 l2 l3; 0 0 0)^2
    (Racah's formula for the 3j symbol, exact integers), and c = G_000 / wigner_3j[l1, l2, l3] at
    the m = 0 entries. Zero for odd l1 + l2 + l3.
    """
    import math

    from e3nn import o3
    import torch

    total = l1 + l2 + l3
    if total % 2 or not abs(l1 - l2) <= l3 <= l1 + l2:
        return 0.0
    g, f = total // 2, math.factorial
    squared = (f(total - 2 * l1) * f(total - 2 * l2) * f(total - 2 * l3) * f(g) ** 2
               / (f(total + 1) * (f(g - l1) * f(g - l2) * f(g - l3)) ** 2))  # (l1 l2 l3; 0 0 0)^2
    gaunt_000 = math.sqrt((2 * l1 + 1) * (2 * l2 + 1) * (2 * l3 + 1)) * squared
    return gaunt_000 / float(o3.wigner_3j(l1, l2, l3, dtype=torch.float64)[l1, l2, l3])


def e3nn_gaunt_tensor_product(channels: int, lmax1: int, lmax2: int, lmax_out: int):
    """The notebooks' e3nn baseline: "uuu" over every parity-allowed path, Gaunt constants as path weights.

    Irreps ``C x l`` with parity (-1)^l for l = 0..lmax; normalizations "none". Returns (module,
    weight): call ``module(x1, x2, weight)``. e3nn multiplies a path by sqrt(path_weight), so the
    path weight is c^2 (as in the notebooks) and the shared weight, which the notebooks set to ones,
    is sign(c) here: the same cost, and the result equals our Gaunt product channel by channel
    for every sign convention of the Gaunt constants c.
    """
    import torch

    from e3nn import o3

    def irreps(lmax: int):
        return o3.Irreps([(channels, (l, (-1) ** l)) for l in range(lmax + 1)])

    in1, in2, out = irreps(lmax1), irreps(lmax2), irreps(lmax_out)
    paths = [(i1, i2, i3, gaunt_constant(ir1.l, ir2.l, ir3.l))
             for i1, (_, ir1) in enumerate(in1) for i2, (_, ir2) in enumerate(in2)
             for i3, (_, ir3) in enumerate(out) if ir3 in ir1 * ir2]
    module = o3.TensorProduct(in1, in2, out, [(i1, i2, i3, "uuu", True, c * c) for i1, i2, i3, c in paths],
                              irrep_normalization="none", path_normalization="none",
                              internal_weights=False, shared_weights=True)
    signs = torch.tensor([1.0 if c >= 0 else -1.0 for *_, c in paths])  # (paths,)
    return module, signs.repeat_interleave(channels)  # (paths * C,): "uuu" weights one per channel


def _y_rotation(l: int, angle, dtype, device):
    """(2l+1, 2l+1) Wigner matrix of the rotation by ``angle`` about e3nn's polar axis y: cos(m angle)
    on the diagonal, sin(m angle) on the anti-diagonal (m = l..-l along the rows); differentiable."""
    import torch

    frequency = torch.arange(l, -l - 1, -1, dtype=dtype, device=device)  # (2l+1,)
    index = torch.arange(2 * l + 1, device=device)
    cos, sin = torch.cos(frequency * angle), torch.sin(frequency * angle)  # (2l+1,)
    diagonal = torch.diag_embed(cos)
    return diagonal + torch.zeros_like(diagonal).index_put((index, 2 * l - index), sin)


def escn_convolution(lmax: int):
    """eSCN-style baseline for the convolution setting (Passaro & Zitnick, ICML 2023), as the notebook's:

    rotate the feature into the edge frame (Wigner D of the edge direction, per degree), where the
    edge's SH are Y_lf(e_y) = sqrt(2 lf + 1) delta_{m0}; there the Gaunt product with them keeps m
    (an SO(2) product: one (lmax+1) x (2 lmax+1) matrix per m, one batched matmul); rotate back.
    The Wigner matrices are built per call from the direction as the notebook does, with e3nn
    0.4's formula D(alpha, beta, 0) = Y(alpha) J Y(beta) J (Y: rotation about y in closed form, J:
    the fixed matrix of the rotation exchanging x and y), not e3nn 0.6's slower matrix_exp.
    Returns ``fn(x (..., C, K), r (3,)) -> (..., C, K_out)`` in our layout; output degrees 0..2 lmax.
    Its forward + backward differentiates w.r.t. x and r (through the Wigner matrices, as a force
    computation would); the Gaunt and e3nn sides w.r.t. the feature and the SH values of r.
    """
    import torch
    from e3nn import o3

    from replibench.families.oc20.models.gaunt import gaunt_coefficients

    top = 2 * lmax
    swap = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]], dtype=torch.float64)
    j_matrices = [o3.wigner_D(l, *o3.matrix_to_angles(swap)) for l in range(top + 1)]  # each (2l+1, 2l+1)
    # SO(2) weights: W[m, li, lo] = sum_lf sqrt(2 lf + 1) G(li m, lf 0, lo m), |m| <= li, lo
    weight = torch.zeros(2 * lmax + 1, lmax + 1, top + 1, dtype=torch.float64)
    for li in range(lmax + 1):
        for lf in range(lmax + 1):
            for lo in range(abs(li - lf), li + lf + 1):
                if (li + lf + lo) % 2:
                    continue
                g = gaunt_coefficients(li, lf, lo)  # (2li+1, 2lf+1, 2lo+1)
                for m in range(-min(li, lo), min(li, lo) + 1):
                    weight[m + lmax, li, lo] += math.sqrt(2 * lf + 1) * g[m + li, lf, m + lo]
    k_in = (lmax + 1) ** 2
    gather = torch.full((2 * lmax + 1, lmax + 1), k_in, dtype=torch.long)  # (m, li) -> index into [x, 0]
    for li in range(lmax + 1):
        for m in range(-li, li + 1):
            gather[m + lmax, li] = li * li + li + m
    scatter = torch.tensor([(m + lmax) * (top + 1) + lo for lo in range(top + 1) for m in range(-lo, lo + 1)
                            if abs(m) <= lmax])  # K_out positions of the (m, lo) grid (|m| <= lmax)
    keep = torch.tensor([lo * lo + lo + m for lo in range(top + 1) for m in range(-lo, lo + 1) if abs(m) <= lmax])
    cache: dict = {}

    def tables(dtype, device):
        key = (dtype, device)
        if key not in cache:  # per-closure constants in the caller's dtype/device, built once
            cache[key] = ([j.to(dtype=dtype, device=device) for j in j_matrices], weight.to(dtype=dtype, device=device),
                          gather.to(device), scatter.to(device), keep.to(device))
        return cache[key]

    def fn(x, r):
        js, w, gather_, scatter_, keep_ = tables(x.dtype, x.device)
        alpha, beta = o3.xyz_to_angles(r)  # edge direction -> angles of the rotation taking e_y to r
        wigner = [_y_rotation(l, alpha, x.dtype, x.device) @ js[l] @ _y_rotation(l, beta, x.dtype, x.device) @ js[l]
                  for l in range(top + 1)]  # each (2l+1, 2l+1): D_l(alpha, beta, 0)
        rotated = x @ torch.block_diag(*wigner[: lmax + 1])  # (..., C, K): D^T x, the edge frame
        padded = torch.cat([rotated, rotated.new_zeros(*rotated.shape[:-1], 1)], dim=-1)[..., gather_]  # (..., m, li)
        product = torch.einsum("...mi,mio->...mo", padded, w).flatten(-2)  # (..., (2lmax+1) (top+1))
        out = rotated.new_zeros(*rotated.shape[:-1], (top + 1) ** 2)
        out[..., keep_] = product[..., scatter_]  # (..., C, K_out); |m| > lmax stays 0 in the edge frame
        return out @ torch.block_diag(*wigner).T  # rotate back: D out

    return fn


def _case(setting: str, L: int, correlation: int | None, channels: int, batch: int, device, dtype, generator):
    """Inputs and callables of one measurement: ``(gaunt, baselines, out_lmax)``.

    ``gaunt`` = (fn, inputs); ``baselines`` = {name: (fn, inputs, as_e3nn)} where ``as_e3nn`` maps
    that baseline's output to e3nn's layout (to compare with ours, converted likewise). Inputs are
    uniform in [0, 1) like the notebooks' (``torch.rand``), drawn in float64 then cast.
    """
    import torch

    from replibench.families.oc20.models.gaunt import GauntPowerSum, GauntTensorProduct, spherical_harmonics_of_vector

    lmax = L - 1
    k = L * L
    identity = lambda out: out  # noqa: E731
    if setting in ("feature-interaction", "convolution"):
        x1 = torch.rand(batch, channels, k, generator=generator, dtype=torch.float64)  # (B, C, K)
        r = torch.randn(3, generator=generator, dtype=torch.float64)  # edge direction (convolution)
        if setting == "convolution":
            sh = spherical_harmonics_of_vector(lmax, r)  # (K,): e3nn's SH, any degree <= MAX_SH_DEGREE
            x2 = sh.expand(batch, channels, k).clone()  # (B, C, K): the edge's SH
        else:
            x2 = torch.rand(batch, channels, k, generator=generator, dtype=torch.float64)
        ours = GauntTensorProduct(lmax, lmax, 2 * lmax).to(device=device, dtype=dtype)
        theirs, weight = e3nn_gaunt_tensor_product(channels, lmax, lmax, 2 * lmax)
        theirs, weight = theirs.to(device=device, dtype=dtype), weight.to(device=device, dtype=dtype)
        baselines = {"e3nn": (lambda a, b: theirs(a, b, weight),
                              [to_e3nn_layout(x1, lmax).to(device, dtype), to_e3nn_layout(x2, lmax).to(device, dtype)],
                              identity)}
        if setting == "convolution":
            baselines["escn"] = (escn_convolution(lmax), [x1.to(device, dtype), r.to(device, dtype)],
                                 lambda out: to_e3nn_layout(out, 2 * lmax))
        return (lambda a, b: ours(a, b), [x1.to(device, dtype), x2.to(device, dtype)]), baselines, 2 * lmax
    if setting == "many-body":
        x = torch.rand(batch, channels, k, generator=generator, dtype=torch.float64)  # (B, C, K)
        ours = GauntPowerSum(lmax, correlation).to(device=device, dtype=dtype)
        chain = []  # the notebooks' x (x) (x (x) ...): product nu has degrees 0..nu*lmax
        for nu in range(2, correlation + 1):
            tp, weight = e3nn_gaunt_tensor_product(channels, lmax, (nu - 1) * lmax, nu * lmax)
            chain.append((tp.to(device=device, dtype=dtype), weight.to(device=device, dtype=dtype)))
        cutoff = channels * k

        def e3nn_fn(a):
            total, power = a, a
            for tp, weight in chain:
                power = tp(a, power, weight)
                total = total + power[..., :cutoff]  # degrees 0..lmax come first in e3nn's layout
            return total

        baselines = {"e3nn": (e3nn_fn, [to_e3nn_layout(x, lmax).to(device, dtype)], identity)}
        return (lambda a: ours(a), [x.to(device, dtype)]), baselines, lmax
    raise ValueError(f"unknown setting {setting!r}; known: {', '.join(SETTINGS)}")


def measure(setting: str, degrees: list[int], *, correlation: int | None = None, repeats: int = 5,
            device: str = "cpu", backward: bool = False, channels: int | None = None, batch: int | None = None,
            dtype: str = "float32", seed: int = 0, baselines: tuple[str, ...] | None = None) -> list[EfficiencyRow]:
    """Time our Gaunt product against the baselines for each L in ``degrees`` (number of degrees, lmax = L - 1).

    ``setting``: one of :data:`SETTINGS`; ``correlation``: nu for "many-body" (default 3), must be
    None otherwise. ``channels`` / ``batch`` default to the notebooks' (128 / 1, 1 / 1, 128 / 32).
    ``backward``: time forward + backward (``autograd.grad`` of <output, fixed random probe> w.r.t.
    every input) instead of forward only (under ``no_grad``). ``baselines``: a subset of
    :data:`BASELINES` [setting] (default all). Returns one row per L per baseline, times in ms (see
    :func:`time_ms`; set torch's threads before calling). The difference is measured on the forward
    outputs; the caller decides what is close enough (float32 on [0, 1) inputs: about 1e-6 relative;
    for a float64 comparison call this under ``torch.set_default_dtype(torch.float64)``, since
    e3nn builds its CG buffers in the default dtype).
    Our Gaunt side needs degrees <= ``gaunt.MAX_SH_DEGREE`` (32; SH above e3nn's 12 from a Legendre
    recursion in e3nn's convention): L <= 17 for the two product settings (output degrees 0..2L-2),
    L <= 33 for many-body (output degrees 0..L-1). The e3nn side runs at any L, slowly (O(L^6)).
    """
    import torch

    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; known: {', '.join(SETTINGS)}")
    if setting == "many-body":
        correlation = 3 if correlation is None else correlation
        if correlation < 2:
            raise ValueError(f"many-body needs correlation >= 2, found {correlation}")
    elif correlation is not None:
        raise ValueError(f"correlation applies to many-body only, found {correlation} for {setting}")
    chosen = BASELINES[setting] if baselines is None else tuple(baselines)
    unknown = set(chosen) - set(BASELINES[setting])
    if unknown:
        raise ValueError(f"{setting}: no baseline {sorted(unknown)}; implemented: {', '.join(BASELINES[setting])}")
    channels = SETTINGS[setting]["channels"] if channels is None else channels
    batch = SETTINGS[setting]["batch"] if batch is None else batch
    torch_dtype = getattr(torch, dtype)
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for L in degrees:
        if L < 1:
            raise ValueError(f"L (number of degrees) must be >= 1, found {L}")
        (gaunt_fn, gaunt_inputs), cases, out_lmax = _case(
            setting, L, correlation, channels, batch, device, torch_dtype, generator)
        with torch.no_grad():
            ours = gaunt_fn(*gaunt_inputs)  # (B, C, K_out)
        gaunt_timed = (_forward_backward(gaunt_fn, gaunt_inputs, ours, generator) if backward
                       else _no_grad(gaunt_fn, gaunt_inputs))
        gaunt_best, gaunt_median = time_ms(gaunt_timed, repeats, device)
        for baseline in chosen:
            fn, inputs, as_e3nn = cases[baseline]
            with torch.no_grad():
                theirs = fn(*inputs)
            reference = as_e3nn(theirs)  # (B, C * K_out) e3nn layout
            difference = float((to_e3nn_layout(ours, out_lmax) - reference).abs().max())
            timed = _forward_backward(fn, inputs, theirs, generator) if backward else _no_grad(fn, inputs)
            base_best, base_median = time_ms(timed, repeats, device)
            rows.append(EfficiencyRow(
                setting=setting, L=L, lmax=L - 1, correlation=correlation, channels=channels, batch=batch,
                pass_="forward+backward" if backward else "forward", baseline=baseline,
                gaunt_ms=gaunt_best, baseline_ms=base_best, gaunt_median_ms=gaunt_median,
                baseline_median_ms=base_median, ratio=gaunt_best / base_best, max_abs_difference=difference,
                reference_max_abs=float(reference.abs().max()),
                paper_gaunt_ms=paper_figure(setting, L, correlation, "gaunt"),
                paper_baseline_ms=paper_figure(setting, L, correlation, baseline),
                device=device, dtype=dtype, repeats=repeats))
    return rows


def _no_grad(fn: Callable, inputs: list) -> Callable[[], Any]:
    import torch

    def run():
        with torch.no_grad():
            return fn(*inputs)

    return run


def _forward_backward(fn: Callable, inputs: list, like, generator) -> Callable[[], Any]:
    """A call of fn and the gradient of <fn(inputs), probe> w.r.t. every input (no .grad state)."""
    import torch

    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    probe = torch.rand(like.shape, generator=generator, dtype=torch.float64).to(like.device, like.dtype)

    def run():
        return torch.autograd.grad(fn(*leaves), leaves, grad_outputs=probe)

    return run
