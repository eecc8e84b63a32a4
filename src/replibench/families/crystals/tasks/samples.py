"""Sampled crystals: batched sampling with its cost (wall time, network evaluations), joining and
reordering CrystalBatch parts, and the prediction table with one P1 CIF per structure."""

from __future__ import annotations

import time
from typing import Any

from replibench.families.crystals.tasks.data import gather_structures


def crystals_to_cifs(crystals) -> list[str | None]:
    """CIF text (pymatgen CifWriter, P1) of each crystal of a CrystalBatch; None where the lattice is
    not finite or singular, or pymatgen refuses the structure."""
    import warnings

    import numpy as np
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.cif import CifWriter

    z, frac = crystals.atomic_numbers.cpu().numpy(), crystals.frac_coords.double().cpu().numpy()
    lattices, counts = crystals.lattice.double().cpu().numpy(), crystals.num_atoms.cpu().numpy()
    cifs: list[str | None] = []
    start = 0
    for lattice, n in zip(lattices, counts, strict=True):
        stop = start + int(n)
        cif = None
        if np.isfinite(lattice).all() and abs(np.linalg.det(lattice)) > 1e-8:
            try:
                with warnings.catch_warnings():  # e.g. "no Pauling electronegativity for Ne" while ordering the formula
                    warnings.simplefilter("ignore", UserWarning)
                    cif = str(CifWriter(Structure(Lattice(lattice), z[start:stop].tolist(), frac[start:stop])))
            except (ValueError, ArithmeticError):
                cif = None
        cifs.append(cif)
        start = stop
    return cifs


def predictions_table(material_ids: list[str], sample_index: list[int], crystals, extra: dict[str, str]):
    """Rows of generated structures (see module docstring) with ``extra`` as schema metadata."""
    import numpy as np
    import pyarrow as pa

    counts = crystals.num_atoms.cpu().numpy()
    offsets = pa.array(np.concatenate([[0], counts.cumsum()]).astype("int32"))
    z = pa.array(crystals.atomic_numbers.cpu().numpy().astype("int8"))
    frac = crystals.frac_coords.double().cpu().numpy().reshape(-1)
    frac_offsets = pa.array((offsets.to_numpy() * 3).astype("int32"))
    schema = pa.schema(
        [
            ("material_id", pa.string()),
            ("sample_index", pa.int32()),
            ("num_atoms", pa.int32()),
            ("atomic_numbers", pa.list_(pa.int8())),
            ("frac_coords", pa.list_(pa.float64())),
            ("lattice", pa.list_(pa.float64(), 9)),
            ("cif", pa.string()),
        ],
        metadata={k.encode(): v.encode() for k, v in extra.items()},
    )
    columns = [
        pa.array(material_ids, pa.string()),
        pa.array(sample_index, pa.int32()),
        pa.array(counts, pa.int32()),
        pa.ListArray.from_arrays(offsets, z),
        pa.ListArray.from_arrays(frac_offsets, pa.array(frac)),
        pa.FixedSizeListArray.from_arrays(pa.array(crystals.lattice.double().cpu().numpy().reshape(-1)), 9),
        pa.array(crystals_to_cifs(crystals), pa.string()),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def concat_crystals(parts):
    """Concatenate CrystalBatch parts (on CPU) into one."""
    import torch

    from replibench.families.crystals.types import CrystalBatch, structure_index

    num_atoms = torch.cat([p.num_atoms.cpu() for p in parts])
    return CrystalBatch(
        torch.cat([p.atomic_numbers.cpu() for p in parts]),
        torch.cat([p.frac_coords.cpu() for p in parts]),
        torch.cat([p.lattice.cpu() for p in parts]),
        num_atoms,
        structure_index(num_atoms),
    )


def measure_sampling(model, num_atoms, atomic_numbers, *, batch_size: int, seed: int) -> dict[str, Any]:
    """Sample crystals with the given atom counts (and compositions, CSP) in batches and report wall
    time and network evaluations, also per 1,000 crystals. ``network_evaluations_per_crystal`` is the
    number of backbone passes each crystal goes through (DiffCSP 2 T, CrysBFN N), independent of
    batching, so per 1,000 crystals it is 1,000 times that; ``batched_forward_calls`` counts the
    batched calls actually made (it depends on ``batch_size``)."""
    import torch

    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    first_atom = torch.cumsum(num_atoms, 0) - num_atoms
    calls, parts = 0, []
    model.eval()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for lo in range(0, num_atoms.shape[0], batch_size):
        counts = num_atoms[lo : lo + batch_size]
        types = None
        if atomic_numbers is not None:
            types = atomic_numbers[int(first_atom[lo]) : int(first_atom[lo] + counts.sum())].to(device)
        result = model.sample(counts.to(device), types, generator=generator)
        calls += result.network_evaluations
        parts.append(result.crystals)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - start
    n = int(num_atoms.shape[0])
    return {
        "crystals": n,
        "batch_size": batch_size,
        "device": str(device),
        "wall_s": wall,
        "wall_s_per_1000_crystals": wall * 1000 / n,
        "network_evaluations_per_crystal": model.expected_network_evaluations(),
        "network_evaluations_per_1000_crystals": 1000 * model.expected_network_evaluations(),
        "batched_forward_calls": calls,
        "samples": concat_crystals(parts),
    }


def select_crystals(crystals, order: list[int]):
    """Reorder the structures of a CrystalBatch."""
    import torch

    first = torch.cumsum(crystals.num_atoms, 0) - crystals.num_atoms
    return gather_structures(
        crystals.num_atoms,
        first,
        crystals.atomic_numbers,
        crystals.frac_coords,
        crystals.lattice,
        torch.tensor(order, dtype=torch.long),
    )
