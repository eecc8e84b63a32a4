"""CDVAE's CrystalNN bond graph of a crystal (the graph its DimeNet++ encoder and property models read).

txie-93/cdvae@f857f59 ``cdvae/common/data_utils.py`` (read, not copied): ``CrystalNN`` (l. 83-84,
``distance_cutoffs=None, x_diff_weight=-1, porous_adjustment=False``) and ``build_crystal_graph``
(l. 108-143): pymatgen's ``StructureGraph`` from that strategy; every undirected graph edge
``(i, j, to_jimage)`` (site j in the periodic image ``to_jimage`` is bonded to site i) becomes two
directed edges, ``(j, i)`` with image ``to_jimage`` and ``(i, j)`` with ``-to_jimage``, in the
order networkx lists the graph's edges. The convention is CDVAE's (``models/cdvae_graph.py``):
``edge_index[:, e] = (neighbour, centre)`` and the edge vector is
``pos[neighbour] + to_jimages[e] @ lattice - pos[centre]``.

CDVAE builds these graphs on the Niggli-reduced training crystals (``build_crystal``) and, for
scoring generated crystals (``scripts/eval_utils.py`` ``prop_model_eval`` ->
``data_utils.preprocess_tensors``, l. 684-714), on ``Structure(Lattice.from_parameters(lengths +
angles), atom_types, frac_coords)`` with NO Niggli reduction (the ``niggli`` argument is passed but
unused there): :func:`structure_from_arrays` builds that structure.

pymatgen is imported inside the functions (it is slow to import, and this module is imported while
workflows are planned). CrystalNN's result depends on the pymatgen version; the golden fixture
``tests/golden/cdvae_dimenet.npz`` records the version it was checked with.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

#: CDVAE's CrystalNN settings (data_utils.py l. 83-84)
CRYSTALNN_KWARGS: dict[str, Any] = {"distance_cutoffs": None, "x_diff_weight": -1, "porous_adjustment": False}


@functools.lru_cache(maxsize=1)
def _crystalnn():
    from pymatgen.analysis.local_env import CrystalNN

    return CrystalNN(**CRYSTALNN_KWARGS)


def structure_from_arrays(
    lengths: np.ndarray, angles: np.ndarray, atom_types: np.ndarray, frac_coords: np.ndarray
) -> "Structure":
    """The pymatgen ``Structure`` CDVAE builds from a crystal's arrays (``preprocess_tensors``):
    ``lengths`` (3,) Å, ``angles`` (3,) degrees, ``atom_types`` (N,) atomic numbers,
    ``frac_coords`` (N, 3); lattice from the six parameters (pymatgen's orientation)."""
    from pymatgen.core import Lattice, Structure

    lengths, angles = np.asarray(lengths, dtype=float).reshape(-1), np.asarray(angles, dtype=float).reshape(-1)
    atom_types = np.asarray(atom_types).reshape(-1)
    frac_coords = np.asarray(frac_coords, dtype=float)
    if lengths.shape != (3,) or angles.shape != (3,):
        raise ValueError(f"structure_from_arrays: lengths and angles must hold 3 values, got {lengths.shape}, {angles.shape}")
    if frac_coords.shape != (atom_types.shape[0], 3):
        raise ValueError(
            f"structure_from_arrays: frac_coords must be ({atom_types.shape[0]}, 3) for {atom_types.shape[0]} atoms, "
            f"got {frac_coords.shape}"
        )
    lattice = Lattice.from_parameters(*lengths.tolist(), *angles.tolist())
    return Structure(lattice=lattice, species=[int(z) for z in atom_types], coords=frac_coords, coords_are_cartesian=False)


def crystalnn_graph(structure: "Structure") -> tuple[np.ndarray, np.ndarray]:
    """CDVAE's directed CrystalNN graph of ``structure``: ``edge_index`` (2, E) int64 with rows
    (neighbour j, centre i) and ``to_jimages`` (E, 3) int64, each bond in both directions, in
    upstream's order (see the module docstring). A structure without bonds gives E = 0."""
    from pymatgen.analysis.graphs import StructureGraph

    graph = StructureGraph.from_local_env_strategy(structure, _crystalnn())
    pairs: list[tuple[int, int]] = []
    images: list[tuple[int, int, int]] = []
    for site_i, site_j, to_jimage in graph.graph.edges(data="to_jimage"):
        image = tuple(int(t) for t in to_jimage)
        pairs.append((site_j, site_i))
        images.append(image)
        pairs.append((site_i, site_j))
        images.append(tuple(-t for t in image))
    edge_index = np.asarray(pairs, dtype=np.int64).reshape(-1, 2).T.copy()
    to_jimages = np.asarray(images, dtype=np.int64).reshape(-1, 3)
    return edge_index, to_jimages
