"""Golden outputs of DiffCSP (jiaor17/DiffCSP) for our CSPNet and DiffCSP.

Usage (in a throw-away venv, see tools/golden/crystals_shims.py for what it needs):

    python tools/golden/crystals_diffcsp.py /path/to/DiffCSP-checkout   # at 7121d159826efa2ba9500bf299250d96da37f146

Writes
* ``tests/golden/cspnet.npz``: upstream ``diffcsp.pl_modules.cspnet.CSPNet`` (edge_style fc, sin
  distance embedding, ln, ip) in its CSP form (atom types embedded) and its generation form
  (``smooth`` + ``pred_type``: a dense type vector in, type logits out), float64, seeded random
  weights, on a fixed 2-crystal batch: lattice output, coordinate output, type logits;
  plus the sinusoidal time embedding of ``diffusion.SinusoidalTimeEmbeddings`` (float32, as upstream).
* ``tests/golden/diffcsp.npz``: the noise schedules of ``diff_utils.BetaScheduler('cosine')`` and
  ``SigmaScheduler(sigma_begin 0.005, sigma_end 0.5)`` at T = 1000 (every 20th step and the ends),
  and the loss terms of ``diffusion.CSPDiffusion.forward`` and ``diffusion_w_type.CSPDiffusion.forward``
  on a fixed batch with the time steps and noise draws recorded (so our model can be fed the same).

Only numbers are kept; no upstream code is copied.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from crystals_shims import install  # noqa: E402
from fixture import upstream_commit, write_fixture  # noqa: E402

REPO = "jiaor17/DiffCSP"
SMALL = {"hidden_dim": 8, "num_layers": 2, "num_freqs": 2, "time_dim": 8}  # our CSPNet/DiffCSP sizes
# the fixed batch: 2 crystals (3 + 2 atoms); lattice from lengths (Å) / angles (deg) by upstream's
# lattice_params_to_matrix_torch
BATCH = {
    "atomic_numbers": np.array([8, 26, 8, 12, 8]),
    "num_atoms": np.array([3, 2]),
    "frac_coords": np.array([[0.1, 0.2, 0.3], [0.55, 0.95, 0.05], [0.8, 0.4, 0.65], [0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]),
    "lengths": np.array([[4.1, 5.0, 6.2], [3.0, 3.1, 3.2]]),
    "angles": np.array([[80.0, 95.0, 100.0], [90.0, 90.0, 90.0]]),
}
TIMES = np.array([17, 600])  # diffusion steps of the two crystals (1..T)
T = 1000
SCHEDULE_INDEX = np.unique(np.concatenate([np.arange(0, T + 1, 20), [1, 2, T - 1, T]]))


def cspnet_weight_map(upstream_names: list[str]) -> dict[str, str]:
    """Upstream CSPNet parameter name -> ours (replibench.families.crystals.models.cspnet.CSPNet)."""
    out = {}
    for name in upstream_names:
        ours = name
        for old, new in (("node_embedding.", "type_embedding."), ("atom_latent_emb.", "input_mix."),
                         ("final_layer_norm.", "final_norm."), ("coord_out.", "coord_head."),
                         ("lattice_out.", "lattice_head."), ("type_out.", "type_head.")):
            if ours.startswith(old):
                ours = new + ours[len(old):]
        if ours.startswith("csp_layer_"):
            index, rest = ours[len("csp_layer_"):].split(".", 1)
            ours = f"layers.{index}." + rest.replace("layer_norm.", "norm.")
        out[name] = ours
    return out


def main(checkout: Path) -> None:
    install(str(checkout))
    import torch

    torch.set_default_dtype(torch.float64)
    from diffcsp.common.data_utils import lattice_params_to_matrix_torch
    from diffcsp.pl_modules import diffusion, diffusion_w_type
    from diffcsp.pl_modules.cspnet import CSPNet

    commit = upstream_commit(checkout)
    num_atoms = torch.tensor(BATCH["num_atoms"])
    node2graph = torch.repeat_interleave(torch.arange(2), num_atoms)
    frac = torch.tensor(BATCH["frac_coords"])
    lattices = lattice_params_to_matrix_torch(torch.tensor(BATCH["lengths"]), torch.tensor(BATCH["angles"]))
    z = torch.tensor(BATCH["atomic_numbers"])
    common = {"hidden_dim": SMALL["hidden_dim"], "latent_dim": SMALL["time_dim"], "num_layers": SMALL["num_layers"],
              "max_atoms": 100, "act_fn": "silu", "dis_emb": "sin", "num_freqs": SMALL["num_freqs"],
              "edge_style": "fc", "ln": True, "ip": True}

    # --- CSPNet, CSP form and generation form ---------------------------------------------------
    arrays = {f"batch_{k}": v for k, v in BATCH.items()}
    arrays["batch_lattice"] = lattices.numpy()
    t_emb = torch.randn(2, SMALL["time_dim"], generator=torch.Generator().manual_seed(1))
    arrays["time_input"] = t_emb.numpy()
    weight_map = {}
    for form, extra in (("csp", {}), ("gen", {"smooth": True, "pred_type": True})):
        torch.manual_seed(0 if form == "csp" else 1)
        net = CSPNet(**common, **extra).eval()
        for name, value in net.state_dict().items():
            arrays[f"{form}/w/{name}"] = value.numpy()
        weight_map.update({f"{form}/w/{k}": v for k, v in cspnet_weight_map(list(net.state_dict())).items()})
        if form == "csp":
            types = z
        else:
            types = torch.softmax(torch.randn(5, 100, generator=torch.Generator().manual_seed(2)), -1)
            arrays["gen/type_input"] = types.numpy()
        with torch.no_grad():
            out = net(t_emb, types, frac, lattices, num_atoms, node2graph)
        arrays[f"{form}/out_lattice"], arrays[f"{form}/out_coords"] = out[0].numpy(), out[1].numpy()
        if form == "gen":
            arrays["gen/out_types"] = out[2].numpy()
    torch.set_default_dtype(torch.float32)  # upstream computes its time embedding in float32
    steps = torch.tensor([0, 1, 17, 600, 999, 1000])
    arrays["time_steps"] = steps.numpy()
    arrays["time_embedding"] = diffusion.SinusoidalTimeEmbeddings(SMALL["time_dim"])(steps).double().numpy()
    torch.set_default_dtype(torch.float64)
    write_fixture(ROOT / "tests" / "golden" / "cspnet.npz", arrays, repo=REPO, commit=commit, weight_map=weight_map,
                  generator="tools/golden/crystals_diffcsp.py",
                  notes=("diffcsp/pl_modules/cspnet.py CSPNet(hidden 8, layers 2, num_freqs 2, latent 8, ln, ip, fc) "
                         "float64, weights torch.manual_seed(0) (csp) / (1) (gen: smooth, pred_type); input: "
                         "batch_* (types = Z for csp, upstream embeds Z-1; gen/type_input for gen), time_input; "
                         "time_embedding: diffusion.SinusoidalTimeEmbeddings(8) of time_steps in float32. "
                         "torch_scatter replaced by torch_geometric.utils.scatter (crystals_shims.py)."))

    # --- DiffCSP schedules and loss terms --------------------------------------------------------
    arrays, weight_map = {f"batch_{k}": v for k, v in BATCH.items()}, {}
    arrays["batch_lattice"] = lattices.numpy()
    arrays["schedule_index"] = SCHEDULE_INDEX
    batch = SimpleNamespace(num_graphs=2, lengths=torch.tensor(BATCH["lengths"]), angles=torch.tensor(BATCH["angles"]),
                            frac_coords=frac, atom_types=z, num_atoms=num_atoms, batch=node2graph)
    for form, module in (("csp", diffusion), ("gen", diffusion_w_type)):
        torch.manual_seed(10 if form == "csp" else 11)  # weights, and the Monte Carlo of sigma_norm
        decoder = {"_target_": "diffcsp.pl_modules.cspnet.CSPNet", **{k: v for k, v in common.items() if k != "latent_dim"}}
        model = module.CSPDiffusion(
            decoder=decoder, time_dim=SMALL["time_dim"], latent_dim=0, cost_coord=1.0, cost_lattice=1.0,
            cost_type=20.0, timesteps=T,
            beta_scheduler={"_target_": "diffcsp.pl_modules.diff_utils.BetaScheduler", "timesteps": T,
                            "scheduler_mode": "cosine"},
            sigma_scheduler={"_target_": "diffcsp.pl_modules.diff_utils.SigmaScheduler", "timesteps": T,
                             "sigma_begin": 0.005, "sigma_end": 0.5},
        ).eval()
        if form == "csp":
            for name in ("betas", "alphas", "alphas_cumprod", "sigmas"):
                arrays[f"beta_scheduler/{name}"] = getattr(model.beta_scheduler, name)[SCHEDULE_INDEX].numpy()
        keep = np.unique(np.concatenate([SCHEDULE_INDEX, TIMES]))  # the loss reads sigmas_norm at TIMES
        arrays[f"{form}/sigma_scheduler/index"] = keep
        for name in ("sigmas", "sigmas_norm"):
            arrays[f"{form}/sigma_scheduler/{name}"] = getattr(model.sigma_scheduler, name)[keep].double().numpy()
        for name, value in model.decoder.state_dict().items():
            arrays[f"{form}/w/{name}"] = value.numpy()
        weight_map.update({f"{form}/w/{k}": "backbone." + v
                           for k, v in cspnet_weight_map(list(model.decoder.state_dict())).items()})
        draws = []  # every torch.randn_like of forward, in order
        real_randn_like = torch.randn_like

        def recording_randn_like(x, *args, **kwargs):
            value = real_randn_like(x, *args, **kwargs)
            draws.append(value)
            return value

        model.beta_scheduler.uniform_sample_t = lambda batch_size, device: torch.tensor(TIMES)
        torch.randn_like = recording_randn_like
        try:
            with torch.no_grad():
                losses = model(batch)
        finally:
            torch.randn_like = real_randn_like
        arrays[f"{form}/times"] = TIMES
        for name, value in zip(("rand_l", "rand_x", "rand_t"), draws, strict=False):
            arrays[f"{form}/{name}"] = value.numpy()
        for name, value in losses.items():
            arrays[f"{form}/{name}"] = np.asarray(float(value))
    write_fixture(ROOT / "tests" / "golden" / "diffcsp.npz", arrays, repo=REPO, commit=commit, weight_map=weight_map,
                  generator="tools/golden/crystals_diffcsp.py",
                  notes=("BetaScheduler('cosine', 1000) / SigmaScheduler(1000, 0.005, 0.5) values at schedule_index "
                         "(float64 default dtype; SigmaScheduler builds sigmas in float32 and sigmas_norm by a "
                         "10,000-draw Monte Carlo, so each model instance's own values are stored at "
                         "sigma_scheduler/index, which includes the loss's times); "
                         "loss terms of diffusion.CSPDiffusion (csp) and diffusion_w_type.CSPDiffusion (gen) forward "
                         "in float64 with CSPNet(hidden 8, layers 2, num_freqs 2) seeded 10 / 11, times fixed, "
                         "noise draws recorded (rand_l, rand_x, rand_t in draw order)."))


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
