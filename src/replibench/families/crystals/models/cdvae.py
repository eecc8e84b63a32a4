"""CDVAE: crystal diffusion variational autoencoder, as txie-93/cdvae@f857f598 defines it.

Xie, Fu, Ganea, Barzilay, Jaakkola, "Crystal Diffusion Variational Autoencoder for Periodic Material
Generation", ICLR 2022 (arXiv 2110.06197). Method as in ``cdvae/pl_modules/model.py`` (class ``CDVAE``),
read, not copied:

- **encoder**: a periodic DimeNet++ on the CrystalNN graph (:mod:`.cdvae_encoder`) gives one vector per
  crystal; ``fc_mu`` / ``fc_var`` make the Gaussian posterior, z is drawn by the reparameterisation trick;
- **property heads from z** (MLPs, ``build_mlp``): atom count (classes 0..max_atoms), the six lattice
  parameters (lengths divided by N^(1/3), "scale_length", then standardised by the training split's
  scaler), per-atom composition logits (100 elements), and optionally the training property
  (``predict_property``: the property-optimisation model);
- **decoder**: a noise-conditional score network, GemNet-T (:mod:`.gemnet_t`) on the radius graph
  of the noisy crystal, predicting a Cartesian displacement per atom and per-atom type logits;
- **training** (``CDVAE.forward`` + ``compute_stats``): one noise level per crystal from 50 geometric
  levels (σ 10 → 0.01 Å for coordinates, 5 → 0.01 for types); types are noised by mixing the
  one-hot type with the predicted composition (weight σ_type) and sampling; coordinates by adding
  N(0, σ²) Cartesian noise under the *predicted* lattice (the true one under teacher forcing, epochs
  ≤ ``teacher_forcing_max_epoch``); the loss is the weighted sum of atom-count CE, lattice MSE, the
  denoising score loss on the minimum-image displacement, the σ-rescaled type CE, the composition CE
  and β·KL (+ property MSE). Validation loss: only cost_coord·coord + cost_type·type, without
  teacher forcing (``compute_stats``, prefix ≠ train);
- **sampling** (``langevin_dynamics``): atom count, lattice and composition decoded from z, types
  drawn to fit the composition exactly (``sample_composition``), coordinates uniform, then annealed
  Langevin dynamics: per level σ, ``n_step_each`` steps of size step_lr·(σ/σ_L)², each
  x ← x + step·s/σ + sqrt(2 step)·ε in Cartesian space, types set to the decoder's argmax.

Upstream details kept because they change numbers:
- ``StandardScalerTorch.transform`` / ``inverse_transform`` build a new float32 tensor from their input,
  which also cuts the gradient: the decoded lattice never back-propagates into ``fc_lattice`` except
  through the scaled lattice loss. :class:`TargetScaler` does the same.
- ``sample`` (generation) draws z with ``hidden_dim`` columns, not ``latent_dim`` (equal, 256, in every
  released config; :meth:`CDVAE.sample_latents` checks they are equal instead of guessing).
- the noise levels are float32 parameters (``nn.Parameter(..., requires_grad=False)``) upstream:
  here float32 buffers ``sigmas`` and ``type_sigmas``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

MAX_ATOMIC_NUMBER = 100  # cdvae/pl_modules/embeddings MAX_ATOMIC_NUM: type classes are Z - 1 in 0..99


@dataclass
class CDVAEConfig:
    """Hyper-parameters of ``conf/model/vae.yaml`` (defaults) and of the sampler (``scripts/evaluate.py``)."""

    task: str = "recon"  # recon | gen | opt: the same network; opt runs train with predict_property
    hidden_dim: int = 256  # vae.yaml hidden_dim (MLP width of the heads; also z's width in sample())
    latent_dim: int = 256  # vae.yaml latent_dim
    fc_num_layers: int = 1  # vae.yaml fc_num_layers
    max_atoms: int = 20  # conf/data/*.yaml max_atoms (MP-20, Perov-5: 20; Carbon-24: 24)
    cost_natom: float = 1.0  # vae.yaml
    cost_coord: float = 10.0  # vae.yaml
    cost_type: float = 1.0  # vae.yaml
    cost_lattice: float = 10.0  # vae.yaml
    cost_composition: float = 1.0  # vae.yaml
    cost_property: float = 1.0  # vae.yaml
    beta: float = 0.01  # vae.yaml: KL weight
    teacher_forcing_lattice: bool = True  # vae.yaml
    teacher_forcing_max_epoch: int = 500  # conf/data/*.yaml (MP-20 500, Perov-5 1500, Carbon-24 1000)
    sigma_begin: float = 10.0  # vae.yaml: coordinate noise levels (Å), geometric
    sigma_end: float = 0.01  # vae.yaml
    type_sigma_begin: float = 5.0  # vae.yaml
    type_sigma_end: float = 0.01  # vae.yaml
    num_noise_level: int = 50  # vae.yaml
    predict_property: bool = False  # vae.yaml False; True for the property-optimisation model (README)
    # decoder graph (vae.yaml max_neighbors / radius, passed to conf/model/decoder/gemnet.yaml)
    max_neighbors: int = 20
    radius: float = 7.0  # Å
    decoder_hidden_dim: int = 128  # conf/model/decoder/gemnet.yaml hidden_dim
    # encoder sizes (conf/model/encoder/dimenet.yaml); num_targets = latent_dim
    encoder_hidden_channels: int = 128
    encoder_num_blocks: int = 4
    encoder_int_emb_size: int = 64
    encoder_basis_emb_size: int = 8
    encoder_out_emb_channels: int = 256
    encoder_num_spherical: int = 7
    encoder_num_radial: int = 6
    encoder_cutoff: float = 7.0  # Å
    encoder_readout: str = "mean"  # conf/data/*.yaml readout
    # annealed Langevin sampling (scripts/evaluate.py argparse defaults)
    n_step_each: int = 100  # steps per noise level
    step_lr: float = 1e-4  # step size at the smallest level
    min_sigma: float = 0.0  # levels below it are skipped
    # what the data fixes (passed by the task, not chosen): unused by CDVAE, which always has 100 classes
    type_vocab: tuple[int, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.task not in ("recon", "gen", "opt"):
            raise ValueError(f"CDVAE task must be recon, gen or opt, got {self.task!r}")
        if self.task == "opt" and not self.predict_property:
            raise ValueError("CDVAE task 'opt' optimises z on the property head: set predict_property: true")
        if self.encoder_readout not in ("mean", "sum"):
            raise ValueError(f"encoder_readout must be mean or sum, got {self.encoder_readout!r}")
        for name in ("sigma_begin", "sigma_end", "type_sigma_begin", "type_sigma_end", "step_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"CDVAE {name} must be > 0, got {getattr(self, name)}")
        for name in ("num_noise_level", "n_step_each", "max_atoms", "latent_dim", "hidden_dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"CDVAE {name} must be >= 1, got {getattr(self, name)}")


@dataclass
class CDVAEBatch:
    """A batch of crystals as CDVAE's data module gives it (``CrystDataset`` after Niggli reduction).

    Lattices are lengths (Å) and angles (degrees), because CDVAE's heads predict those and its
    Cartesian frame is ``lattice_params_to_matrix`` of them; the encoder's edges are the CrystalNN graph
    built in preprocessing, with the periodic image of each edge's target.
    """

    atomic_numbers: torch.Tensor  # (N,) long, Z
    frac_coords: torch.Tensor  # (N, 3) float
    lengths: torch.Tensor  # (B, 3) float, Å
    angles: torch.Tensor  # (B, 3) float, degrees
    num_atoms: torch.Tensor  # (B,) long
    batch: torch.Tensor  # (N,) long, structure of every atom
    edge_index: torch.Tensor  # (2, E) long, atom indices into the batch (CrystalNN graph)
    to_jimages: torch.Tensor  # (E, 3) long, periodic image of the edge's second atom
    num_bonds: torch.Tensor  # (B,) long, edges per crystal
    training_property: torch.Tensor | None = None  # (B, 1) float, data.prop in its unit; opt runs only

    @property
    def num_structures(self) -> int:
        return int(self.num_atoms.shape[0])

    def to(self, device: torch.device | str) -> "CDVAEBatch":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return CDVAEBatch(**{k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in moved.items()})


class TargetScaler(nn.Module):
    """Per-column standardisation with the training split's statistics (``StandardScalerTorch``):
    std is the biased std + 1e-5. As upstream, both directions return a new float32 tensor without
    gradient. The statistics are buffers, so a checkpoint carries them."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.register_buffer("means", torch.zeros(width))
        self.register_buffer("stds", torch.ones(width))

    def set_statistics(self, means: torch.Tensor, stds: torch.Tensor) -> None:
        self.means.copy_(means)
        self.stds.copy_(stds)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return (x.detach().float() - self.means.float()) / self.stds.float()

    def inverse_transform(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach().float() * self.stds.float() + self.means.float()


def fit_scaler_statistics(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(means, stds) of ``values`` (rows = crystals) as ``StandardScalerTorch.fit``: float32, std
    without Bessel's correction, plus EPSILON = 1e-5."""
    values = values.detach().float()
    return values.mean(dim=0), values.std(dim=0, unbiased=False) + 1e-5


def scaled_lattice_targets(lengths: torch.Tensor, angles: torch.Tensor, num_atoms: torch.Tensor) -> torch.Tensor:
    """(B, 6) lattice parameters as the lattice head predicts them before standardisation:
    lengths / N^(1/3) (``lattice_scale_method: scale_length``) and angles in degrees."""
    return torch.cat([lengths / num_atoms.view(-1, 1).float() ** (1 / 3), angles], dim=-1)


def _mlp(in_dim: int, hidden_dim: int, num_layers: int, out_dim: int) -> nn.Sequential:
    """``build_mlp``: Linear+ReLU, (num_layers - 1) × (Linear+ReLU), Linear (upstream's Sequential indices)."""
    layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim), nn.ReLU()]
    for _ in range(num_layers - 1):
        layers += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU()]
    layers.append(nn.Linear(hidden_dim, out_dim))
    return nn.Sequential(*layers)


def geometric_levels(begin: float, end: float, count: int) -> torch.Tensor:
    """(count,) float32 levels exp(linspace(log begin, log end)) computed in float64 as numpy does."""
    return torch.exp(torch.linspace(math.log(begin), math.log(end), count, dtype=torch.float64)).float()


def _mean_per_structure(values: torch.Tensor, structure: torch.Tensor, count: int) -> torch.Tensor:
    """(B,) mean of per-atom ``values`` within each structure (``scatter(..., reduce='mean')``)."""
    sums = torch.zeros(count, dtype=values.dtype, device=values.device).index_add_(0, structure, values)
    atoms = torch.bincount(structure, minlength=count).clamp(min=1).to(values.dtype)
    return sums / atoms


@dataclass
class DecodedStats:
    """What the heads decode from z: atom-count logits (or counts), scaled lattice prediction,
    lengths (Å) / angles (deg) after un-scaling, per-atom composition logits."""

    num_atoms: torch.Tensor
    scaled_lattice: torch.Tensor
    lengths: torch.Tensor
    angles: torch.Tensor
    composition_logits: torch.Tensor


class CDVAE(nn.Module):
    """Registry name ``cdvae``; tasks ``recon``, ``gen`` and ``opt`` (:mod:`..tasks.cdvae_tasks`)."""

    Config = CDVAEConfig
    TASKS = ("recon", "gen", "opt")
    reads_crystal_graphs = True  # the tasks load the CrystalNN graph, lengths/angles and property for it
    decodes_atom_counts = True  # generation: the atom-count head decides, not the training histogram

    def __init__(self, config: CDVAEConfig) -> None:
        super().__init__()
        from replibench.families.crystals.models.cdvae_encoder import CdvaeDimeNetPP, CdvaeEncoderConfig
        from replibench.families.crystals.models.gemnet_t import GemNetTDecoder, GemNetTDecoderConfig

        self.config = c = config
        self.encoder = CdvaeDimeNetPP(CdvaeEncoderConfig(
            num_targets=c.latent_dim, hidden_channels=c.encoder_hidden_channels, num_blocks=c.encoder_num_blocks,
            int_emb_size=c.encoder_int_emb_size, basis_emb_size=c.encoder_basis_emb_size,
            out_emb_channels=c.encoder_out_emb_channels, num_spherical=c.encoder_num_spherical,
            num_radial=c.encoder_num_radial, cutoff=c.encoder_cutoff, readout=c.encoder_readout))
        self.decoder = GemNetTDecoder(GemNetTDecoderConfig(
            hidden_dim=c.decoder_hidden_dim, latent_dim=c.latent_dim, max_neighbors=c.max_neighbors, radius=c.radius))
        self.fc_mu = nn.Linear(c.latent_dim, c.latent_dim)
        self.fc_var = nn.Linear(c.latent_dim, c.latent_dim)
        self.fc_num_atoms = _mlp(c.latent_dim, c.hidden_dim, c.fc_num_layers, c.max_atoms + 1)
        self.fc_lattice = _mlp(c.latent_dim, c.hidden_dim, c.fc_num_layers, 6)
        self.fc_composition = _mlp(c.latent_dim, c.hidden_dim, c.fc_num_layers, MAX_ATOMIC_NUMBER)
        self.fc_property = _mlp(c.latent_dim, c.hidden_dim, c.fc_num_layers, 1) if c.predict_property else None
        self.register_buffer("sigmas", geometric_levels(c.sigma_begin, c.sigma_end, c.num_noise_level))
        self.register_buffer("type_sigmas", geometric_levels(c.type_sigma_begin, c.type_sigma_end, c.num_noise_level))
        self.lattice_scaler = TargetScaler(6)
        self.property_scaler = TargetScaler(1)
        # Lightning's current_epoch <= teacher_forcing_max_epoch; the task sets it at every epoch start
        self.teacher_forcing = True

    def fit_data_statistics(self, train_split, train_graphs) -> None:
        """Fit the lattice scaler (scaled lengths and angles) and the property scaler on the training
        split (``get_scaler_from_data_list(train, 'scaled_lattice')`` and ``(train, prop)``)."""
        lattice = scaled_lattice_targets(train_graphs.lengths.double(), train_graphs.angles.double(),
                                         train_split.num_atoms)
        self.lattice_scaler.set_statistics(*fit_scaler_statistics(lattice))
        if train_graphs.property is not None:
            self.property_scaler.set_statistics(*fit_scaler_statistics(train_graphs.property.double()))

    # ------------------------------------------------------------------ pieces
    def posterior(self, batch: CDVAEBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log_var), each (B, latent_dim): the encoder on the CrystalNN graph, then fc_mu / fc_var."""
        hidden = self.encoder(batch.atomic_numbers, batch.frac_coords, batch.lengths, batch.angles, batch.num_atoms,
                              edge_index=batch.edge_index, to_jimages=batch.to_jimages, num_bonds=batch.num_bonds)
        return self.fc_mu(hidden), self.fc_var(hidden)

    def encode(self, batch: CDVAEBatch, generator: torch.Generator | None = None):
        """(mu, log_var, z), each (B, latent_dim); z = mu + exp(log_var / 2) · ε."""
        mu, log_var = self.posterior(batch)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu, log_var, eps * torch.exp(0.5 * log_var) + mu

    def predict_lattice(self, z: torch.Tensor, num_atoms: torch.Tensor):
        """(scaled (B, 6), lengths (B, 3) Å, angles (B, 3) deg) from z for crystals of ``num_atoms``."""
        scaled = self.fc_lattice(z)
        unscaled = self.lattice_scaler.inverse_transform(scaled)
        lengths = unscaled[:, :3] * num_atoms.view(-1, 1).float() ** (1 / 3)
        return scaled, lengths, unscaled[:, 3:]

    def predict_composition(self, z: torch.Tensor, num_atoms: torch.Tensor) -> torch.Tensor:
        """(N, 100) per-atom composition logits: z repeated for every atom of its crystal."""
        return self.fc_composition(z.repeat_interleave(num_atoms, dim=0))

    def predict_property(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 1) property in its physical unit (the scaler's inverse), as ``CDVAE.predict_property``."""
        if self.fc_property is None:
            raise RuntimeError("this CDVAE was built without predict_property")
        return self.property_scaler.inverse_transform(self.fc_property(z))

    def decode_stats(self, z: torch.Tensor, gt_num_atoms: torch.Tensor | None = None,
                     gt_lengths: torch.Tensor | None = None, gt_angles: torch.Tensor | None = None,
                     teacher_forcing: bool = False) -> DecodedStats:
        """As upstream: with ground-truth counts (training) the heads see the true counts and the
        atom-count output stays logits; without (sampling) counts are the argmax."""
        if gt_num_atoms is not None:
            num_atoms = self.fc_num_atoms(z)
            scaled, lengths, angles = self.predict_lattice(z, gt_num_atoms)
            composition = self.predict_composition(z, gt_num_atoms)
            if self.config.teacher_forcing_lattice and teacher_forcing:
                lengths, angles = gt_lengths, gt_angles
        else:
            num_atoms = self.fc_num_atoms(z).argmax(dim=-1)
            scaled, lengths, angles = self.predict_lattice(z, num_atoms)
            composition = self.predict_composition(z, num_atoms)
        return DecodedStats(num_atoms, scaled, lengths, angles, composition)

    # ------------------------------------------------------------------ training
    def loss_terms(self, batch: CDVAEBatch, generator: torch.Generator | None = None, *,
                   teacher_forcing: bool | None = None, draws: dict[str, torch.Tensor] | None = None
                   ) -> dict[str, torch.Tensor]:
        """Every loss term of ``CDVAE.forward`` and the weighted training ``loss``. Random draws come
        from ``generator`` in upstream's order (ε of z, noise levels, type levels, type sample,
        coordinate noise); ``draws`` may give them instead (golden tests): keys ``eps_z`` (B, latent),
        ``noise_level`` (B,), ``type_noise_level`` (B,), ``rand_atom_types`` (N,) Z, ``coord_noise`` (N, 3)
        (standard normal, before × σ)."""
        from replibench.families.crystals.models.cdvae_graph import cart_to_frac, frac_to_cart

        c, dev = self.config, batch.frac_coords.device
        teacher_forcing = self.teacher_forcing if teacher_forcing is None else teacher_forcing
        draws = draws or {}
        count = batch.num_structures
        if "eps_z" in draws:
            mu, log_var = self.posterior(batch)
            z = draws["eps_z"].to(mu) * torch.exp(0.5 * log_var) + mu
        else:
            mu, log_var, z = self.encode(batch, generator)
        stats = self.decode_stats(z, batch.num_atoms, batch.lengths, batch.angles, teacher_forcing)
        levels = draws.get("noise_level")
        if levels is None:
            levels = torch.randint(0, self.sigmas.shape[0], (count,), generator=generator, device=dev)
        type_levels = draws.get("type_noise_level")
        if type_levels is None:
            type_levels = torch.randint(0, self.type_sigmas.shape[0], (count,), generator=generator, device=dev)
        sigma_per_atom = self.sigmas[levels].repeat_interleave(batch.num_atoms, dim=0)  # (N,)
        type_sigma_per_atom = self.type_sigmas[type_levels].repeat_interleave(batch.num_atoms, dim=0)  # (N,)
        rand_atom_types = draws.get("rand_atom_types")
        if rand_atom_types is None:
            composition_probs = F.softmax(stats.composition_logits.detach(), dim=-1)
            type_probs = (F.one_hot(batch.atomic_numbers - 1, num_classes=MAX_ATOMIC_NUMBER)
                          + composition_probs * type_sigma_per_atom[:, None])
            rand_atom_types = torch.multinomial(type_probs, 1, generator=generator).squeeze(1) + 1
        coord_noise = draws.get("coord_noise")
        if coord_noise is None:
            coord_noise = torch.randn(batch.frac_coords.shape, generator=generator, device=dev,
                                      dtype=batch.frac_coords.dtype)
        cart = frac_to_cart(batch.frac_coords, stats.lengths, stats.angles, batch.num_atoms)
        noisy_frac = cart_to_frac(cart + coord_noise * sigma_per_atom[:, None], stats.lengths, stats.angles,
                                  batch.num_atoms)
        pred_cart_diff, pred_type_logits = self.decoder(z, noisy_frac, rand_atom_types, batch.num_atoms,
                                                        stats.lengths, stats.angles)

        num_atom_loss = F.cross_entropy(stats.num_atoms, batch.num_atoms)
        target_lattice = self.lattice_scaler.transform(
            scaled_lattice_targets(batch.lengths, batch.angles, batch.num_atoms))
        lattice_loss = F.mse_loss(stats.scaled_lattice, target_lattice)
        composition_ce = F.cross_entropy(stats.composition_logits, batch.atomic_numbers - 1, reduction="none")
        composition_loss = _mean_per_structure(composition_ce, batch.batch, count).mean()
        coord_loss = self._coord_loss(pred_cart_diff, noisy_frac, sigma_per_atom, batch)
        type_ce = F.cross_entropy(pred_type_logits, batch.atomic_numbers - 1, reduction="none")
        type_loss = _mean_per_structure(type_ce / type_sigma_per_atom, batch.batch, count).mean()
        kld_loss = torch.mean(-0.5 * torch.sum(1 + log_var - mu ** 2 - log_var.exp(), dim=1), dim=0)
        property_loss = torch.zeros((), device=dev, dtype=kld_loss.dtype)
        if self.fc_property is not None:
            if batch.training_property is None:
                raise ValueError("a CDVAE with predict_property needs the batch's property")
            # the data module scales y with the training split's scaler (CrystDataset.__getitem__)
            property_loss = F.mse_loss(self.fc_property(z), self.property_scaler.transform(batch.training_property).to(z))
        loss = (c.cost_natom * num_atom_loss + c.cost_lattice * lattice_loss + c.cost_coord * coord_loss
                + c.cost_type * type_loss + c.beta * kld_loss + c.cost_composition * composition_loss
                + c.cost_property * property_loss)
        return {"loss": loss, "num_atom_loss": num_atom_loss, "lattice_loss": lattice_loss,
                "composition_loss": composition_loss, "coord_loss": coord_loss, "type_loss": type_loss,
                "kld_loss": kld_loss, "property_loss": property_loss,
                "validation_loss": c.cost_coord * coord_loss + c.cost_type * type_loss,
                "pred_cart_coord_diff": pred_cart_diff, "pred_atom_types": pred_type_logits,
                "rand_frac_coords": noisy_frac, "rand_atom_types": rand_atom_types, "z": z}

    def _coord_loss(self, pred_cart_diff: torch.Tensor, noisy_frac: torch.Tensor, sigma_per_atom: torch.Tensor,
                    batch: CDVAEBatch) -> torch.Tensor:
        """Denoising score matching on the minimum-image displacement under the TRUE lattice:
        ½ σ² |d/σ² − s/σ|², averaged per crystal, then over crystals (``CDVAE.coord_loss``)."""
        from replibench.families.crystals.models.cdvae_graph import (
            frac_to_cart,
            lattice_params_to_matrix,
            min_distance_sqr_pbc,
        )

        noisy_cart = frac_to_cart(noisy_frac, batch.lengths, batch.angles, batch.num_atoms)
        target_cart = frac_to_cart(batch.frac_coords, batch.lengths, batch.angles, batch.num_atoms)
        lattice = lattice_params_to_matrix(batch.lengths, batch.angles)
        # vector from the nearest image of the noisy atom to the target (min_distance_sqr_pbc, return_vector)
        _, target_diff = min_distance_sqr_pbc(target_cart, noisy_cart, lattice, batch.num_atoms)
        target = target_diff / sigma_per_atom[:, None] ** 2
        predicted = pred_cart_diff / sigma_per_atom[:, None]
        per_atom = 0.5 * ((target - predicted) ** 2).sum(dim=1) * sigma_per_atom ** 2
        return _mean_per_structure(per_atom, batch.batch, batch.num_structures).mean()

    def loss(self, batch: CDVAEBatch, generator: torch.Generator | None = None) -> torch.Tensor:
        """The training objective (weighted sum of every term, teacher forcing as set for the epoch)."""
        return self.loss_terms(batch, generator)["loss"]

    def validation_loss(self, batch: CDVAEBatch, generator: torch.Generator | None = None) -> torch.Tensor:
        """``val_loss`` of ``compute_stats``: cost_coord · coord + cost_type · type, no teacher forcing."""
        return self.loss_terms(batch, generator, teacher_forcing=False)["validation_loss"]

    # ------------------------------------------------------------------ sampling
    def expected_network_evaluations(self) -> int:
        """Decoder calls per crystal: every level at or above ``min_sigma`` × ``n_step_each``."""
        levels = int((self.sigmas >= self.config.min_sigma).sum())
        return levels * self.config.n_step_each

    def sample_composition(self, composition_probs: torch.Tensor, num_atoms: torch.Tensor,
                           generator: torch.Generator | None = None) -> torch.Tensor:
        """(N,) atomic numbers fitting the mean predicted composition of each crystal exactly
        (``CDVAE.sample_composition``): round(p · n) atoms of each element, the remainder drawn from the
        leftover probabilities with replacement, then shuffled and cut to n."""
        structure = torch.repeat_interleave(torch.arange(num_atoms.shape[0], device=num_atoms.device), num_atoms)
        mean_probs = torch.zeros(num_atoms.shape[0], composition_probs.shape[1], dtype=composition_probs.dtype,
                                 device=composition_probs.device).index_add_(0, structure, composition_probs)
        mean_probs = mean_probs / num_atoms.clamp(min=1).to(mean_probs.dtype)[:, None]
        chosen = []
        for probs, count in zip(mean_probs, num_atoms.tolist()):
            per_element = torch.round(probs * count)
            elements = torch.nonzero(per_element, as_tuple=True)[0] + 1
            types = elements.repeat_interleave(per_element[elements - 1].long(), dim=0)
            if types.shape[0] < count:
                left = (probs - per_element.float() / count).clamp(min=0.0)
                extra = torch.multinomial(left, count - types.shape[0], replacement=True, generator=generator) + 1
                types = torch.cat([types, extra])
            types = types[torch.randperm(types.shape[0], generator=generator, device=types.device)][:count]
            chosen.append(types)
        return torch.cat(chosen) if chosen else torch.zeros(0, dtype=torch.long, device=num_atoms.device)

    def langevin_step(self, z: torch.Tensor, frac_coords: torch.Tensor, atom_types: torch.Tensor,
                      num_atoms: torch.Tensor, lengths: torch.Tensor, angles: torch.Tensor, sigma: torch.Tensor,
                      step_size: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of annealed Langevin dynamics at level ``sigma`` with standard-normal ``noise`` (N, 3):
        x_cart ← x_cart + step · s(x)/σ + sqrt(2 step) · noise; returns (new frac coords in [0, 1),
        the decoder's type logits (N, 100)), both from the positions before the step."""
        from replibench.families.crystals.models.cdvae_graph import cart_to_frac, frac_to_cart

        noise_cart = noise * torch.sqrt(step_size * 2)
        pred_cart_diff, type_logits = self.decoder(z, frac_coords, atom_types, num_atoms, lengths, angles)
        cart = frac_to_cart(frac_coords, lengths, angles, num_atoms)
        cart = cart + step_size * (pred_cart_diff / sigma) + noise_cart
        return cart_to_frac(cart, lengths, angles, num_atoms), type_logits

    @torch.no_grad()
    def langevin_dynamics(self, z: torch.Tensor, generator: torch.Generator | None = None, *,
                          gt_num_atoms: torch.Tensor | None = None, gt_atom_types: torch.Tensor | None = None,
                          step_lr: float | None = None) -> dict[str, torch.Tensor]:
        """Decode crystals from latents ``z`` (B, latent): counts, lattice and composition from the heads
        (or the given counts/types), uniform starting coordinates, then ``n_step_each`` steps at every level.
        Returns num_atoms (B,), lengths (B, 3) Å, angles (B, 3) deg, frac_coords (N, 3), atom_types (N,) Z."""
        c = self.config
        step_lr = c.step_lr if step_lr is None else step_lr
        stats = self.decode_stats(z, gt_num_atoms)
        num_atoms = gt_num_atoms if gt_num_atoms is not None else stats.num_atoms
        if gt_atom_types is None:
            atom_types = self.sample_composition(F.softmax(stats.composition_logits, dim=-1), num_atoms, generator)
        else:
            atom_types = gt_atom_types
        frac = torch.rand((int(num_atoms.sum()), 3), generator=generator, device=z.device, dtype=z.dtype)
        for sigma in self.sigmas:
            if sigma < c.min_sigma:
                break
            step_size = step_lr * (sigma / self.sigmas[-1]) ** 2
            for _ in range(c.n_step_each):
                noise = torch.randn(frac.shape, generator=generator, device=frac.device, dtype=frac.dtype)
                frac, type_logits = self.langevin_step(z, frac, atom_types, num_atoms, stats.lengths, stats.angles,
                                                       sigma, step_size, noise)
                if gt_atom_types is None:
                    atom_types = type_logits.argmax(dim=1) + 1
        return {"num_atoms": num_atoms, "lengths": stats.lengths, "angles": stats.angles, "frac_coords": frac,
                "atom_types": atom_types}

    def sample_latents(self, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(count, hidden_dim) standard-normal latents, as ``CDVAE.sample`` / ``evaluate.py generation``."""
        c = self.config
        if c.hidden_dim != c.latent_dim:
            raise ValueError(f"CDVAE draws z with hidden_dim ({c.hidden_dim}) columns for a decoder of latent_dim "
                             f"({c.latent_dim}); the released code only works when they are equal")
        device = self.fc_mu.weight.device
        return torch.randn(count, c.hidden_dim, generator=generator, device=device, dtype=self.fc_mu.weight.dtype)

    def state_summary(self) -> dict[str, Any]:
        """Scaler statistics (for the run's record)."""
        return {"lattice_means": self.lattice_scaler.means.tolist(), "lattice_stds": self.lattice_scaler.stds.tolist(),
                "property_means": self.property_scaler.means.tolist(), "property_stds": self.property_scaler.stds.tolist()}

    # ------------------------------------------------------------------ the tasks' entry points
    def _sample_result(self, decoded: dict[str, torch.Tensor]):
        """Langevin output -> SampleResult (a CrystalBatch with the lattice matrix of lengths/angles)."""
        from replibench.families.crystals.models.cdvae_graph import lattice_params_to_matrix
        from replibench.families.crystals.models.cspnet import SampleResult
        from replibench.families.crystals.types import CrystalBatch, structure_index

        num_atoms = decoded["num_atoms"].long()
        crystals = CrystalBatch(atomic_numbers=decoded["atom_types"].long(), frac_coords=decoded["frac_coords"],
                                lattice=lattice_params_to_matrix(decoded["lengths"], decoded["angles"]),
                                num_atoms=num_atoms, batch=structure_index(num_atoms))
        return SampleResult(crystals, self.expected_network_evaluations())

    @torch.no_grad()
    def generate(self, count: int, *, generator: torch.Generator):
        """``count`` crystals from z ~ N(0, I) (``evaluate.py generation``): SampleResult."""
        return self._sample_result(self.langevin_dynamics(self.sample_latents(count, generator), generator))

    @torch.no_grad()
    def reconstruct(self, batch: CDVAEBatch, *, generator: torch.Generator):
        """Reconstruction (``evaluate.py reconstructon``): one z drawn from each crystal's posterior, then
        decoded with predicted counts, lattice and types (no ground truth forced): SampleResult."""
        _, _, z = self.encode(batch, generator)
        return self._sample_result(self.langevin_dynamics(z, generator))
