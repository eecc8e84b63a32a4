"""Periodic crystal geometry of CDVAE: lattice matrices, coordinate changes, the PBC radius graph.

Xie et al., "Crystal Diffusion Variational Autoencoder for Periodic Material Generation", ICLR 2022
(arXiv 2110.06197); released code txie-93/cdvae@f857f59 ``cdvae/common/data_utils.py`` (read, not
copied): ``lattice_params_to_matrix_torch`` (l. 184), ``frac_to_cart_coords`` (l. 245),
``cart_to_frac_coords`` (l. 258), ``get_pbc_distances`` (l. 272), ``radius_graph_pbc`` (l. 326) and
``min_distance_sqr_pbc`` (l. 534).

Conventions (all as upstream):

* ``lattice`` (B, 3, 3) holds the lattice vectors a, b, c as rows, in Å; Cartesian positions are
  ``frac @ lattice``.
* Atoms of a batch are stored crystal after crystal; ``num_atoms`` (B,) says how many each has.
* An edge ``(edge_index[0, e], edge_index[1, e]) = (j, i)`` with image ``to_jimages[e] = n`` (three
  integers in {-1, 0, 1}) joins centre atom ``i`` to the copy of atom ``j`` translated by
  ``n @ lattice``; its vector points from ``i`` to that copy:
  ``pos[j] + n @ lattice - pos[i]``. Edges are grouped by crystal; ``num_bonds`` (B,) counts them.

Only the 27 images with offsets in {-1, 0, 1}^3 are searched, as upstream (``OFFSET_LIST``, l. 24):
with a cutoff longer than the cell's perpendicular widths some neighbours are missed; this is the
authors' behaviour and is kept.

All functions follow the dtype of their floating inputs (float64 works end to end; upstream's
``radius_graph_pbc`` builds its image offsets in float32 and cannot run on float64 input).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

# The 27 periodic images searched, in upstream's order (data_utils.py l. 24-52: lexicographic over
# (-1, 0, 1)^3). The order decides which of two equally distant neighbours is kept at the
# max-neighbours cut, so it is part of the model.
IMAGE_OFFSETS: tuple[tuple[int, int, int], ...] = tuple(itertools.product((-1, 0, 1), repeat=3))

# Pairs closer than this (Å², i.e. 0.01 Å) are treated as an atom and itself and dropped
# (data_utils.py l. 436: ``torch.gt(atom_distance_sqr, 0.0001)``). Note this also drops two distinct
# atoms that (nearly) coincide, which can happen in generated structures.
SELF_DISTANCE_SQR_THRESHOLD: float = 1e-4


def lattice_params_to_matrix(lengths: Tensor, angles: Tensor) -> Tensor:
    """Lattice matrices from cell parameters, with upstream's orientation.

    ``lengths`` (B, 3) are a, b, c in Å; ``angles`` (B, 3) are alpha, beta, gamma in degrees.
    Returns (B, 3, 3) with rows a, b, c: c along z, a in the xz plane,
        a = (a sin(beta), 0, a cos(beta))
        b = (-b sin(alpha) cos(gamma*), b sin(alpha) sin(gamma*), b cos(alpha))
        c = (0, 0, c)
    where cos(gamma*) = (cos(alpha) cos(beta) - cos(gamma)) / (sin(alpha) sin(beta)), clamped to
    [-1, 1] against rounding (data_utils.py l. 184-212).
    """
    if lengths.shape != angles.shape or lengths.dim() != 2 or lengths.shape[1] != 3:
        raise ValueError(
            f"lattice_params_to_matrix expects lengths and angles of shape (B, 3), got "
            f"{tuple(lengths.shape)} and {tuple(angles.shape)}"
        )
    angles_rad = torch.deg2rad(angles)
    cos_angles = torch.cos(angles_rad)
    sin_angles = torch.sin(angles_rad)
    cos_gamma_star = (cos_angles[:, 0] * cos_angles[:, 1] - cos_angles[:, 2]) / (
        sin_angles[:, 0] * sin_angles[:, 1]
    )
    gamma_star = torch.arccos(torch.clamp(cos_gamma_star, -1.0, 1.0))
    zeros = torch.zeros_like(lengths[:, 0])
    vector_a = torch.stack(
        [lengths[:, 0] * sin_angles[:, 1], zeros, lengths[:, 0] * cos_angles[:, 1]], dim=1
    )
    vector_b = torch.stack(
        [
            -lengths[:, 1] * sin_angles[:, 0] * torch.cos(gamma_star),
            lengths[:, 1] * sin_angles[:, 0] * torch.sin(gamma_star),
            lengths[:, 1] * cos_angles[:, 0],
        ],
        dim=1,
    )
    vector_c = torch.stack([zeros, zeros, lengths[:, 2]], dim=1)
    return torch.stack([vector_a, vector_b, vector_c], dim=1)


def _check_num_atoms(num_atoms: Tensor, num_rows: int, what: str) -> None:
    if int(num_atoms.sum()) != num_rows:
        raise ValueError(
            f"{what}: num_atoms sums to {int(num_atoms.sum())} but there are {num_rows} atoms"
        )


def frac_to_cart(
    frac_coords: Tensor, lengths: Tensor, angles: Tensor, num_atoms: Tensor
) -> Tensor:
    """Cartesian positions (N, 3) in Å of fractional coordinates (N, 3); ``num_atoms`` (B,) maps
    atoms to the cells given by ``lengths`` (B, 3) Å and ``angles`` (B, 3) degrees."""
    _check_num_atoms(num_atoms, frac_coords.shape[0], "frac_to_cart")
    lattice_per_atom = torch.repeat_interleave(
        lattice_params_to_matrix(lengths, angles), num_atoms, dim=0
    )
    return torch.einsum("ni,nij->nj", frac_coords, lattice_per_atom)


def cart_to_frac(
    cart_coords: Tensor, lengths: Tensor, angles: Tensor, num_atoms: Tensor
) -> Tensor:
    """Fractional coordinates (N, 3) in [0, 1) of Cartesian positions (N, 3) in Å.

    As upstream (data_utils.py l. 258-269) the inverse lattice is a pseudo-inverse, so a predicted
    degenerate (rank < 3) lattice does not raise, and the result is wrapped with ``% 1``.
    """
    _check_num_atoms(num_atoms, cart_coords.shape[0], "cart_to_frac")
    inverse_lattice = torch.linalg.pinv(lattice_params_to_matrix(lengths, angles))
    inverse_per_atom = torch.repeat_interleave(inverse_lattice, num_atoms, dim=0)
    return torch.einsum("ni,nij->nj", cart_coords, inverse_per_atom) % 1.0


def pbc_edge_vectors(
    cart_coords: Tensor,
    edge_index: Tensor,
    lattice: Tensor,
    to_jimages: Tensor,
    num_bonds: Tensor,
) -> tuple[Tensor, Tensor]:
    """Lengths (E,) in Å and vectors (E, 3) in Å of periodic edges.

    ``vectors[e] = cart_coords[edge_index[0, e]] + to_jimages[e] @ lattice[b] -
    cart_coords[edge_index[1, e]]`` for the crystal ``b`` the edge belongs to (edges grouped by
    crystal, ``num_bonds`` (B,) of them each): the vector from the centre atom ``edge_index[1]`` to
    the image of ``edge_index[0]``, as upstream ``get_pbc_distances`` (data_utils.py l. 293-300).
    """
    if int(num_bonds.sum()) != edge_index.shape[1]:
        raise ValueError(
            f"pbc_edge_vectors: num_bonds sums to {int(num_bonds.sum())} but there are "
            f"{edge_index.shape[1]} edges"
        )
    neighbor_index, center_index = edge_index
    lattice_per_edge = torch.repeat_interleave(lattice, num_bonds, dim=0)
    image_shift = torch.einsum("ei,eij->ej", to_jimages.to(cart_coords.dtype), lattice_per_edge)
    vectors = cart_coords[neighbor_index] - cart_coords[center_index] + image_shift
    return vectors.norm(dim=-1), vectors


def _image_shifts(lattice: Tensor) -> tuple[Tensor, Tensor]:
    """The 27 integer image offsets (27, 3) and their Cartesian shifts (B, 27, 3) in Å."""
    offsets = torch.tensor(IMAGE_OFFSETS, dtype=torch.long, device=lattice.device)
    shifts = torch.einsum("ki,bij->bkj", offsets.to(lattice.dtype), lattice)
    return offsets, shifts


def radius_graph_pbc(
    cart_coords: Tensor,
    lattice: Tensor,
    num_atoms: Tensor,
    cutoff: float,
    max_neighbors: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Periodic radius graph of a batch of crystals, as upstream ``radius_graph_pbc``.

    Arguments: ``cart_coords`` (N, 3) Å; ``lattice`` (B, 3, 3) Å, rows a, b, c; ``num_atoms`` (B,);
    ``cutoff`` in Å; ``max_neighbors`` >= 1 (CDVAE: 20).

    For every centre atom i and every atom j of the same crystal (j = i included) and each of the 27
    images n in {-1, 0, 1}^3, the edge (j, i, n) is a candidate when
    0.01 Å < |pos[j] + n @ lattice - pos[i]| <= cutoff (upstream compares squared lengths:
    ``> 1e-4`` and ``<= cutoff**2``). If some atom has more than ``max_neighbors`` candidates,
    each atom keeps its ``max_neighbors`` shortest. Which of several equally long candidates
    survive the cut is decided, as upstream, by ``torch.sort``'s default non-stable sort of each
    atom's padded row of squared lengths (in enumeration order: centre i, neighbour j, image in
    ``IMAGE_OFFSETS`` order); it is not "first enumerated wins" (symmetric crystals hit this).
    We make the identical call on the identical matrix, so on the same device and PyTorch version
    the kept edges are the same; across devices/versions tie-breaking may differ, for upstream too.
    If no atom exceeds ``max_neighbors`` every candidate is kept.

    Returns ``edge_index`` (2, E) long with rows (neighbour j, centre i), ``to_jimages`` (E, 3) long
    (the image n of j), and ``num_bonds`` (B,) long, edges per crystal. Edges come in upstream's
    order: by centre atom, then neighbour, then image.
    """
    if max_neighbors < 1:
        # upstream (l. 467-472) would return all edges but num_bonds = 0 for max_neighbors <= 0
        raise ValueError(f"radius_graph_pbc: max_neighbors must be >= 1, got {max_neighbors}")
    num_atoms = num_atoms.long()
    _check_num_atoms(num_atoms, cart_coords.shape[0], "radius_graph_pbc")
    device = cart_coords.device
    num_crystals = num_atoms.shape[0]

    # all ordered pairs (centre, neighbour) inside each crystal, centre-major
    pairs_per_crystal = num_atoms**2
    first_atom = torch.cumsum(num_atoms, 0) - num_atoms
    first_pair = torch.cumsum(pairs_per_crystal, 0) - pairs_per_crystal
    crystal_of_pair = torch.repeat_interleave(
        torch.arange(num_crystals, device=device), pairs_per_crystal
    )
    pair_in_crystal = torch.arange(int(pairs_per_crystal.sum()), device=device) - first_pair[
        crystal_of_pair
    ]
    atoms_in_pair_crystal = num_atoms[crystal_of_pair]
    center = pair_in_crystal // atoms_in_pair_crystal + first_atom[crystal_of_pair]
    neighbor = pair_in_crystal % atoms_in_pair_crystal + first_atom[crystal_of_pair]

    # candidate edges: pair x image, image fastest
    offsets, shifts = _image_shifts(lattice)
    num_images = offsets.shape[0]
    displacement = (
        cart_coords[neighbor][:, None, :] + shifts[crystal_of_pair] - cart_coords[center][:, None, :]
    )  # (pairs, 27, 3)
    distance_sqr = (displacement**2).sum(dim=-1).reshape(-1)
    center = center.repeat_interleave(num_images)
    neighbor = neighbor.repeat_interleave(num_images)
    image = offsets.repeat(crystal_of_pair.shape[0], 1)

    keep = (distance_sqr <= cutoff * cutoff) & (distance_sqr > SELF_DISTANCE_SQR_THRESHOLD)
    center, neighbor, image, distance_sqr = (
        center[keep], neighbor[keep], image[keep], distance_sqr[keep]
    )

    neighbors_per_atom = torch.bincount(center, minlength=cart_coords.shape[0])
    most_neighbors = int(neighbors_per_atom.max()) if neighbors_per_atom.numel() else 0
    if most_neighbors > max_neighbors:
        # Each atom's candidate lengths in a row (enumeration order), padded with cutoff^2 + 1,
        # sorted with torch.sort's default (non-stable) algorithm: the same call on the same
        # matrix as upstream (l. 480-512), so equal lengths at the cut fall the same way.
        first_of_center = torch.cumsum(neighbors_per_atom, 0) - neighbors_per_atom
        slot = torch.arange(center.shape[0], device=device) - first_of_center[center]
        padded = torch.full(
            (cart_coords.shape[0], most_neighbors), cutoff * cutoff + 1.0,
            dtype=distance_sqr.dtype, device=device,
        )
        padded[center, slot] = distance_sqr
        sorted_sqr, sorted_slot = torch.sort(padded, dim=1)
        sorted_sqr, sorted_slot = sorted_sqr[:, :max_neighbors], sorted_slot[:, :max_neighbors]
        chosen = (sorted_slot + first_of_center[:, None])[sorted_sqr <= cutoff * cutoff]
        nearest = torch.zeros(center.shape[0], dtype=torch.bool, device=device)
        nearest[chosen] = True
        center, neighbor, image = center[nearest], neighbor[nearest], image[nearest]

    crystal_of_atom = torch.repeat_interleave(torch.arange(num_crystals, device=device), num_atoms)
    num_bonds = torch.bincount(crystal_of_atom[center], minlength=num_crystals)
    return torch.stack([neighbor, center]), image, num_bonds


def min_distance_sqr_pbc(
    cart_coords1: Tensor, cart_coords2: Tensor, lattice: Tensor, num_atoms: Tensor
) -> tuple[Tensor, Tensor]:
    """Shortest periodic displacement between two placements of the same atoms.

    For each atom, over the 27 images n: ``vector = cart_coords1 - (cart_coords2 + n @ lattice)``
    of least length. Returns (squared length (N,) Å², vector (N, 3) Å). The vector points from the
    nearest image of ``cart_coords2`` to ``cart_coords1`` (upstream ``min_distance_sqr_pbc``,
    data_utils.py l. 534-600, ``return_vector=True``; its docstring says the opposite direction but
    the code computes ``pos1 - pos2``). CDVAE's coordinate loss uses it.
    """
    _check_num_atoms(num_atoms, cart_coords1.shape[0], "min_distance_sqr_pbc")
    _, shifts = _image_shifts(lattice)
    shifts_per_atom = torch.repeat_interleave(shifts, num_atoms.long(), dim=0)  # (N, 27, 3)
    vectors = cart_coords1[:, None, :] - (cart_coords2[:, None, :] + shifts_per_atom)
    distance_sqr = (vectors**2).sum(dim=-1)
    min_distance_sqr, nearest_image = distance_sqr.min(dim=1)
    nearest_vector = vectors[torch.arange(vectors.shape[0], device=vectors.device), nearest_image]
    return min_distance_sqr, nearest_vector
