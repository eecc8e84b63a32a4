"""Golden outputs of CrysBFN (wu-han-lin/CrysBFN) for our CrysBFN model and its Bayesian flows.

Usage (in a throw-away venv, see tools/golden/crystals_shims.py for what it needs):

    python tools/golden/crystals_crysbfn.py /path/to/CrysBFN-checkout   # at 2db6a20ece6186e33434fb29b81dc947479fb9cc

Writes ``tests/golden/crysbfn.npz`` with, from the upstream classes ``pl_modules.crysbfn.CrysBFN``
(generation) and ``pl_modules.crysbfn_csp.CrysBFN_CSP`` (CSP), built with the released settings
(beta1_coord 1e3, beta1_type 0.5, sigma1_lattice 0.0316, sch_type linear, sim_cir_flow/cond_acc,
norm_beta, pred_mean) at N = 10 steps and a small decoder (hidden 8, 2 layers, 2 frequencies,
time_dim 8), float64 weights seeded 0 (gen) / 1 (csp):

* the network: ``interdependency_modeling`` on fixed flow parameters (type probabilities, posterior
  means in [-pi, pi), normalised log-accuracies, lattice means, step indices) -> type probabilities,
  x_hat (wrapped mean + output), lattice prediction;
* the loss terms of ``loss_one_step`` (type: continuous-time, as the released runs trained;
  lattice; coordinates) on a fixed batch, with the step fixed and the three flows returning the
  fixed parameters ``in/*`` (so the network call and every loss weight are checked);
* the sender accuracies ``alpha_wrt_index(1..N)`` (the released cache file) and ``norm_logbeta``;
* the flows with their random draws recorded: ``continuous_var_bayesian_flow`` (lattice),
  ``discrete_var_bayesian_flow`` (types) and ``circular_var_bayesian_flow_sim`` (coordinates: the
  uniform prior draw and the von Mises sender draws of every step).

Only numbers are kept; no upstream code is copied.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from crystals_diffcsp import cspnet_weight_map  # noqa: E402
from crystals_shims import install  # noqa: E402
from fixture import upstream_commit, write_fixture  # noqa: E402

REPO = "wu-han-lin/CrysBFN"
N = 10
VOCAB = [8, 12, 26]  # atomic numbers -> classes 0..2 (the dataset's atom_type_map)
NUM_ATOMS = np.array([3, 2])
STEPS = np.array([1, 7])  # step index i of each crystal (1 = prior input)


def hparams(smooth: bool):
    from omegaconf import OmegaConf

    decoder = {"_target_": "crysbfn.pl_modules.egnn.cspnet.CSPNet", "hidden_dim": 8, "time_dim": 8,
               "max_atoms": len(VOCAB), "num_layers": 2, "act_fn": "silu", "dis_emb": "sin", "num_freqs": 2,
               "edge_style": "fc", "smooth": smooth, "ln": True, "ip": True, "pred_type": True,
               "period": "np.pi-(-np.pi)", "dtime_loss": True, "add_n_atom_feat": False, "cond_acc": True}
    return OmegaConf.create({
        "decoder": decoder, "time_dim": 8, "T_min": "-np.pi", "T_max": "np.pi", "norm_beta": True,
        "n_samples": 1, "norm_weight": False,
        "data": {"atom_type_map": {z: i for i, z in enumerate(VOCAB)}, "max_atoms": 20,
                 "datamodule": {"batch_size": {"train": 2}}, "lattice_mean": 0.0, "lattice_std": 1.0},
        "BFN": {"sch_type": "linear", "sim_cir_flow": True, "dtime_loss": True},
    })


def main(checkout: Path) -> None:
    install(str(checkout), unexercised=("crysbfn.common.linear_acc_search",))
    import torch

    torch.set_default_dtype(torch.float64)
    from crysbfn.pl_modules.crysbfn import CrysBFN
    from crysbfn.pl_modules.crysbfn_csp import CrysBFN_CSP

    commit = upstream_commit(checkout)
    settings = {"device": "cpu", "beta1_type": 0.5, "beta1_coord": 1e3, "sigma1_lattice": 0.03162277660168379,
                "K": len(VOCAB), "t_min": 1e-7, "dtime_loss": True, "dtime_loss_steps": N, "mult_constant": True,
                "pred_mean": True, "end_back": True, "cond_acc": True, "sch_type": "linear", "sim_cir_flow": True}
    gen = torch.Generator().manual_seed(5)
    n_atoms = int(NUM_ATOMS.sum())
    num_atoms = torch.tensor(NUM_ATOMS)
    segment = torch.repeat_interleave(torch.arange(2), num_atoms)
    t_index = torch.tensor(STEPS)
    inputs = {
        "classes": torch.tensor([0, 2, 0, 1, 0]),
        "theta_type": torch.softmax(torch.randn(n_atoms, len(VOCAB), generator=gen), -1),
        "mu_pos": 2 * torch.pi * torch.rand(n_atoms, 3, generator=gen) - torch.pi,
        "log_acc": torch.rand(n_atoms, 3, generator=gen),
        "mu_lattice": torch.randn(2, 3, 3, generator=gen),
    }
    arrays = {f"in/{k}": v.numpy() for k, v in inputs.items()}
    arrays.update({"num_atoms": NUM_ATOMS, "steps": STEPS, "vocab": np.array(VOCAB)})
    weight_map = {}
    for form, cls in (("gen", CrysBFN), ("csp", CrysBFN_CSP)):
        torch.manual_seed(0 if form == "gen" else 1)
        model = cls(hparams(smooth=form == "gen"), **settings)
        model.net.eval()
        for name, value in model.net.state_dict().items():
            arrays[f"{form}/w/{name}"] = value.numpy()
        weight_map.update({f"{form}/w/{k}": "backbone." + v
                           for k, v in cspnet_weight_map(list(model.net.state_dict())).items()})
        with torch.no_grad():
            if form == "gen":
                probs, x_hat, lattice = model.interdependency_modeling(
                    t_index=t_index, t_per_atom=None, theta_type=inputs["theta_type"], mu_pos_t=inputs["mu_pos"],
                    segment_ids=segment, gamma_lattices=None, num_atoms=num_atoms,
                    mu_lattices_t_33=inputs["mu_lattice"], log_acc=inputs["log_acc"])
                arrays["gen/out_type_probs"] = probs.numpy()
            else:
                x_hat, lattice = model.interdependency_modeling(
                    atom_types=inputs["classes"], t_index=t_index, mu_pos_t=inputs["mu_pos"], segment_ids=segment,
                    gamma_lattices=None, num_atoms=num_atoms, mu_lattices_t=inputs["mu_lattice"],
                    log_acc=inputs["log_acc"])
        arrays[f"{form}/out_x_hat"], arrays[f"{form}/out_lattice"] = x_hat.numpy(), lattice.numpy()

    # loss terms of loss_one_step, with the flows replaced by fixed parameters (recorded) and the
    # step fixed: checks the network call and every loss weight, not the random draws (above/below)
    from crysbfn.common.data_utils import lattice_params_to_matrix_torch

    loss_batch = {"frac_coords": torch.rand(n_atoms, 3, generator=gen),
                  "lengths": torch.tensor([[4.1, 5.0, 6.2], [3.0, 3.1, 3.2]]),
                  "angles": torch.tensor([[80.0, 95.0, 100.0], [90.0, 90.0, 90.0]])}
    arrays.update({f"loss/{k}": v.numpy() for k, v in loss_batch.items()})
    arrays["loss/lattice"] = lattice_params_to_matrix_torch(loss_batch["lengths"], loss_batch["angles"]).numpy()
    loss_steps = torch.tensor([3, 9])  # i of each crystal
    arrays["loss/steps"] = loss_steps.numpy()
    for form, cls in (("gen", CrysBFN), ("csp", CrysBFN_CSP)):
        torch.manual_seed(0 if form == "gen" else 1)  # the same weights as the network check above
        model = cls(hparams(smooth=form == "gen"), **settings)
        model.net.eval()
        real_randint = torch.randint
        torch.randint = lambda low, high, size, device=None: (loss_steps - 1).clone()
        model.circular_var_bayesian_flow_sim = lambda **kw: (inputs["mu_pos"].clone(), inputs["log_acc"].clone())
        model.continuous_var_bayesian_flow = lambda x, t, sigma1: (inputs["mu_lattice"].reshape(2, 9).clone(),
                                                                   1 - torch.pow(sigma1, 2 * t))
        model.discrete_var_bayesian_flow = lambda *a, **kw: inputs["theta_type"].clone()
        try:
            with torch.no_grad():
                common_args = {"t": None, "frac_coords": loss_batch["frac_coords"], "lengths": loss_batch["lengths"],
                               "angles": loss_batch["angles"], "num_atoms": num_atoms, "segment_ids": segment,
                               "edge_index": None}
                if form == "gen":
                    onehot = torch.nn.functional.one_hot(inputs["classes"], len(VOCAB)).double()
                    type_loss, lattice_loss, coord_loss = model.loss_one_step(atom_type=onehot, **common_args)
                    arrays["gen/loss_type"] = np.asarray(float(type_loss))
                else:
                    lattice_loss, coord_loss = model.loss_one_step(atom_types=inputs["classes"], **common_args)
        finally:
            torch.randint = real_randint
        arrays[f"{form}/loss_lattice"], arrays[f"{form}/loss_coord"] = np.asarray(float(lattice_loss)), np.asarray(float(coord_loss))

    # schedules and flows (the generation model; CSP shares them)
    torch.manual_seed(2)
    model = CrysBFN(hparams(smooth=True), **settings)
    arrays["alphas"] = model.alpha_wrt_index(torch.arange(1, N + 1)[:, None], N, model.beta1_coord)[:, 0].double().numpy()
    kappa = torch.tensor([1e-7, 0.5, 3.0, 100.0, 1000.0])
    arrays["norm_logbeta/log_kappa"] = kappa.log().numpy()
    arrays["norm_logbeta/out"] = model.norm_logbeta(kappa.log()).numpy()
    draws = []
    real_randn_like, real_rand = torch.randn_like, torch.rand

    def recording(fn):
        def wrapped(*args, **kwargs):
            value = fn(*args, **kwargs)
            draws.append(value)
            return value
        return wrapped

    lattice = torch.randn(2, 9, generator=gen)
    t_mol = torch.tensor([[0.0], [0.6]])
    onehot = torch.nn.functional.one_hot(inputs["classes"], len(VOCAB)).double()
    t_atom = t_mol[segment]
    torch.randn_like = recording(real_randn_like)
    try:
        mu_lattice, gamma = model.continuous_var_bayesian_flow(x=lattice, t=t_mol, sigma1=model.sigma1_lattice)
        theta = model.discrete_var_bayesian_flow(t_atom, beta1=model.beta1_type, x=onehot, K=len(VOCAB))
    finally:
        torch.randn_like = real_randn_like
    arrays.update({"flow/lattice_x": lattice.numpy(), "flow/t_mol": t_mol.numpy(), "flow/lattice_eps": draws[0].numpy(),
                   "flow/lattice_mu": mu_lattice.numpy(), "flow/type_t": t_atom.numpy(),
                   "flow/type_eps": draws[1].numpy(), "flow/type_theta": theta.numpy()})
    # circular flow: record the uniform prior draw and the von Mises draws
    x = inputs["mu_pos"]
    circ_index = torch.tensor([1, 1, 1, 7, 7])
    vm_draws = []
    real_sample = model.vm_helper.sample

    def recording_sample(*args, **kwargs):
        value = real_sample(*args, **kwargs)
        vm_draws.append(value)
        return value

    model.vm_helper.sample = recording_sample
    draws.clear()
    torch.rand = recording(real_rand)
    try:
        mean, log_acc = model.circular_var_bayesian_flow_sim(x=x, t_index=circ_index, beta1=model.beta1_coord)
    finally:
        torch.rand = real_rand
    # torch.rand also runs inside torch's von Mises sampler: the prior is the (1, atoms, 3) draw u
    # (stored as u; the prior mean is 2 pi u - pi)
    (prior,) = [d for d in draws if tuple(d.shape) == (1, *x.shape)]
    arrays.update({"flow/circ_x": x.numpy(), "flow/circ_index": circ_index.numpy(),
                   "flow/circ_prior": prior[0].double().numpy(), "flow/circ_senders": vm_draws[0][..., 0].double().numpy(),
                   "flow/circ_mean": mean.double().numpy(), "flow/circ_log_acc": log_acc.double().numpy()})
    write_fixture(ROOT / "tests" / "golden" / "crysbfn.npz", arrays, repo=REPO, commit=commit, weight_map=weight_map,
                  generator="tools/golden/crystals_crysbfn.py",
                  notes=("CrysBFN (gen) / CrysBFN_CSP (csp) with N=10, beta1_coord 1e3, beta1_type 0.5, sigma1 0.0316, "
                         "linear schedule, cond_acc, norm_beta, pred_mean; decoder egnn/cspnet.py CSPNet(hidden 8, layers 2, "
                         "num_freqs 2, time_dim 8, period 2 pi, ln, ip, pred_type; smooth for gen), float64 weights "
                         "seeded 0 / 1. in/*: flow parameters fed to interdependency_modeling (classes index VOCAB). "
                         "Upstream's SinusoidsEmbedding casts distances to float32 and the circular flow returns "
                         "float32 log-accuracies. flow/*: the flows with their draws (eps, uniform prior, von Mises "
                         "senders per step, shape (N, atoms, 3)). torch_scatter replaced by torch_geometric.utils.scatter."))


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
