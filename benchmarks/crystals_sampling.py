"""Sampling cost per 1,000 crystals: DiffCSP (T predictor-corrector steps, 2 T network calls per
crystal) vs CrysBFN (N steps, N calls per crystal) — the CrysBFN paper's "10 vs 2000 network
forwards" claim, measured as wall time and network evaluations.

Models have random weights: sampling cost does not depend on what was learned (the network is the
same size and the samplers run a fixed number of steps). Atom counts are drawn from the MP-20
training histogram. ``--size paper`` uses the papers' backbone (512 hidden, 6 layers, 128
frequencies; needs a GPU to finish in reasonable time at T=1000); ``--size smoke`` the smoke preset's
(64 hidden, 2 layers), which still shows the cost ratio on a CPU.

    python benchmarks/crystals_sampling.py --n 20                     # CPU, smoke-size networks
    python benchmarks/crystals_sampling.py --n 1000 --size paper --device cuda --batch-size 500
"""

from __future__ import annotations

import argparse
import json
import time

import torch

# Number of MP-20 training structures with 1..20 atoms (CrysBFN conf/data/mp_20.yaml num_atoms_dist).
MP20_TRAIN_ATOM_COUNTS = [
    110,
    961,
    924,
    6964,
    2130,
    3795,
    991,
    3563,
    1527,
    4395,
    590,
    4396,
    979,
    2959,
    666,
    3026,
    418,
    2418,
    468,
    3949,
]
# Elements of MP-20 (CrysBFN atom_type_map): Z 1-83 and 89-94.
MP20_VOCAB = tuple(list(range(1, 84)) + list(range(89, 95)))
SIZES = {
    "paper": {},  # the config defaults are the papers'
    "smoke": {"hidden_dim": 64, "num_layers": 2, "num_freqs": 16, "time_dim": 32},
}


def main() -> None:
    from replibench.families.crystals.models.crysbfn import CrysBFN, CrysBFNConfig
    from replibench.families.crystals.models.diffcsp import DiffCSP, DiffCSPConfig
    from replibench.families.crystals.types import CrystalBatch
    from replibench.families.crystals.tasks.samples import measure_sampling

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="crystals to sample per model (default 20)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--size", choices=sorted(SIZES), default="smoke")
    parser.add_argument("--task", choices=["gen", "csp"], default="gen")
    parser.add_argument("--diffcsp-timesteps", type=int, default=1000, help="T (paper 1000)")
    parser.add_argument("--crysbfn-steps", type=int, nargs="+", default=[10], help="N values (paper 10 and 1000)")
    parser.add_argument("--models", nargs="+", choices=["diffcsp", "crysbfn"], default=["diffcsp", "crysbfn"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)

    counts = torch.tensor(MP20_TRAIN_ATOM_COUNTS, dtype=torch.float64)
    g = torch.Generator().manual_seed(args.seed)
    num_atoms = torch.multinomial(counts, args.n, replacement=True, generator=g) + 1  # (n,) 1..20 atoms
    types = None
    if args.task == "csp":  # random compositions over the MP-20 vocabulary
        vocab = torch.tensor(MP20_VOCAB)
        types = vocab[torch.randint(len(MP20_VOCAB), (int(num_atoms.sum()),), generator=g)]

    models = {}
    if "diffcsp" in args.models:
        config = DiffCSPConfig(task=args.task, timesteps=args.diffcsp_timesteps, **SIZES[args.size])
        models[f"diffcsp-T{args.diffcsp_timesteps}"] = DiffCSP(config)
    for steps in args.crysbfn_steps if "crysbfn" in args.models else []:
        config = CrysBFNConfig(task=args.task, num_steps=steps, type_vocab=MP20_VOCAB, **SIZES[args.size])
        models[f"crysbfn-N{steps}"] = CrysBFN(config)
    warmup = CrystalBatch(
        torch.tensor([8, 8, 8]),
        torch.rand(3, 3),
        4 * torch.eye(3).expand(2, 3, 3),
        torch.tensor([1, 2]),
        torch.tensor([0, 1, 1]),
    ).to(device)
    for name, model in models.items():
        model.to(device).eval()
        with torch.no_grad():
            model.loss(warmup)  # first-call kernel set-up stays out of the timing
        cpu_start = time.process_time()
        stats = measure_sampling(model, num_atoms, types, batch_size=args.batch_size, seed=args.seed)
        cpu_s = time.process_time() - cpu_start  # load-independent on a shared CPU machine (wall is not)
        stats.pop("samples")
        stats.update(cpu_s=cpu_s, cpu_s_per_1000_crystals=cpu_s * 1000 / args.n)
        print(
            json.dumps(
                {
                    "model": name,
                    "size": args.size,
                    "task": args.task,
                    "threads": args.threads,
                    "parameters": sum(p.numel() for p in model.parameters()),
                    **stats,
                }
            )
        )


if __name__ == "__main__":
    main()
