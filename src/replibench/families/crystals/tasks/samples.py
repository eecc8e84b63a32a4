"""Sampled crystals: batched sampling with its cost (wall time, network evaluations), joining and
reordering CrystalBatch parts, and the prediction table with one P1 CIF per structure."""

from __future__ import annotations

import time
from typing import Any


def crystals_to_cifs(crystals) -> list[str | None]:
    """CIF text (pymatgen CifWriter, P1) of each crystal of a CrystalBatch (:func:`cifs_from_arrays`)."""
    return cifs_from_arrays(crystals.atomic_numbers.cpu().numpy(), crystals.frac_coords.double().cpu().numpy(),
                            crystals.lattice.double().cpu().numpy(), crystals.num_atoms.cpu().numpy())


def cifs_from_arrays(z, frac, lattices, counts) -> list[str | None]:
    """CIF text (pymatgen CifWriter, P1) of each crystal: atomic numbers ``z`` (atoms,), fractional
    coordinates ``frac`` (atoms, 3), ``lattices`` (crystals, 3, 3) in Å, atoms per crystal
    ``counts``; None where the lattice is not finite or singular, or pymatgen refuses the structure."""
    import warnings

    import numpy as np
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.cif import CifWriter

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


#: schema metadata keys a shard's sampling cost is recorded under; merging shards adds them up
SUMMED_METADATA = ("batched_forward_calls", "sampling_wall_s")


def predictions_table(material_ids: list[str], sample_index: list[int], crystals, extra: dict[str, str]):
    """Rows of generated structures (see module docstring) with ``extra`` as schema metadata and an
    empty ``cif`` column: the sampling job (GPU) writes arrays only; :func:`merge_prediction_tables`
    (the CPU job that gathers the shards) adds the CIFs with pymatgen."""
    import numpy as np
    import pyarrow as pa

    counts = crystals.num_atoms.cpu().numpy()
    offsets = pa.array(np.concatenate([[0], counts.cumsum()]).astype("int32"))
    z = pa.array(crystals.atomic_numbers.cpu().numpy().astype("int8"))
    frac = crystals.frac_coords.double().cpu().numpy().reshape(-1)
    frac_offsets = pa.array((offsets.to_numpy() * 3).astype("int32"))
    columns = [
        pa.array(material_ids, pa.string()),
        pa.array(sample_index, pa.int32()),
        pa.array(counts, pa.int32()),
        pa.ListArray.from_arrays(offsets, z),
        pa.ListArray.from_arrays(frac_offsets, pa.array(frac)),
        pa.FixedSizeListArray.from_arrays(pa.array(crystals.lattice.double().cpu().numpy().reshape(-1)), 9),
        pa.nulls(len(counts), pa.string()),
    ]
    return pa.Table.from_arrays(columns, schema=prediction_schema().with_metadata(
        {k.encode(): v.encode() for k, v in extra.items()}))


def prediction_schema():
    """The columns of a crystal prediction table (module docstring)."""
    import pyarrow as pa

    return pa.schema([
        ("material_id", pa.string()),
        ("sample_index", pa.int32()),
        ("num_atoms", pa.int32()),
        ("atomic_numbers", pa.list_(pa.int8())),
        ("frac_coords", pa.list_(pa.float64())),
        ("lattice", pa.list_(pa.float64(), 9)),
        ("cif", pa.string()),
    ])


def merge_prediction_tables(tables: list, order: list[int] | None = None):
    """The shards' tables (in unit order) as one prediction table: rows concatenated, then taken in
    ``order`` (CSP: test order, then sample index), the sampling cost of
    :data:`SUMMED_METADATA` summed over the shards, and the ``cif`` column filled (pymatgen, CPU)."""
    import numpy as np
    import pyarrow as pa

    metadata: dict[bytes, bytes] = {}
    for table in tables:
        for key, value in (table.schema.metadata or {}).items():
            if key.decode() in SUMMED_METADATA and key in metadata:
                total = float(metadata[key]) + float(value)
                value = (f"{total:.3f}" if key == b"sampling_wall_s" else str(int(total))).encode()
            metadata[key] = value
    merged = pa.concat_tables([table.replace_schema_metadata(None) for table in tables])
    if order is not None:
        merged = merged.take(pa.array(order, pa.int64()))
    counts = merged.column("num_atoms").to_numpy()
    z = merged.column("atomic_numbers").combine_chunks().flatten().to_numpy()
    frac = merged.column("frac_coords").combine_chunks().flatten().to_numpy().reshape(-1, 3)
    lattices = merged.column("lattice").combine_chunks().flatten().to_numpy().reshape(-1, 3, 3)
    cifs = pa.array(cifs_from_arrays(z, frac, lattices, counts) if len(counts) else [], pa.string())
    merged = merged.set_column(merged.schema.get_field_index("cif"), "cif", cifs)
    return merged.replace_schema_metadata(metadata)


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


def batch_seed(seed: int, batch: int) -> int:
    """Seed of sample batch ``batch`` of a sampling pass seeded with ``seed``. Every batch has its own
    generator, so a shard draws its batches without drawing the ones before it and the samples do
    not depend on how the evaluation is sharded; batch 0 keeps ``seed`` itself, so a pass of one
    batch (every smoke run) samples exactly what it did when all batches shared one generator."""
    import numpy as np

    return seed if batch == 0 else int(np.random.SeedSequence([seed, batch]).generate_state(1)[0])


def num_sample_batches(count: int, batch_size: int) -> int:
    """Batches of ``batch_size`` crystals (the last one smaller) that ``count`` crystals are sampled in."""
    return -(-count // batch_size)


def measure_sampling(model, num_atoms, atomic_numbers, *, batch_size: int, seed: int,
                     batches: range | None = None) -> dict[str, Any]:
    """Sample crystals with the given atom counts (and compositions, CSP) — or, when ``num_atoms`` is an
    int, that many crystals from a model that decodes its own atom counts (CDVAE's ``generate``) — in batches of
    ``batch_size`` — all of them, or only the batches numbered in ``batches`` (a shard) — and report
    wall time and network evaluations, also per 1,000 crystals. Batch b draws from a generator
    seeded with :func:`batch_seed`. ``network_evaluations_per_crystal`` is the number of backbone
    passes each crystal goes through (DiffCSP 2 T, CrysBFN N), independent of batching, so per
    1,000 crystals it is 1,000 times that; ``batched_forward_calls`` counts the batched calls
    actually made (it depends on ``batch_size``)."""
    import torch

    device = next(model.parameters()).device
    decodes_counts = isinstance(num_atoms, int)
    total = num_atoms if decodes_counts else int(num_atoms.shape[0])
    first_atom = None if decodes_counts else torch.cumsum(num_atoms, 0) - num_atoms
    if batches is None:
        batches = range(num_sample_batches(total, batch_size))
    calls, parts, n = 0, [], 0
    model.eval()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for number in batches:
        lo = number * batch_size
        generator = torch.Generator(device=device).manual_seed(batch_seed(seed, number))
        if decodes_counts:
            result = model.generate(min(batch_size, total - lo), generator=generator)
        else:
            counts = num_atoms[lo : lo + batch_size]
            types = None
            if atomic_numbers is not None:
                types = atomic_numbers[int(first_atom[lo]) : int(first_atom[lo] + counts.sum())].to(device)
            result = model.sample(counts.to(device), types, generator=generator)
        calls += result.network_evaluations
        parts.append(result.crystals)
        n += result.crystals.num_structures
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - start
    return {
        "crystals": n,
        "batch_size": batch_size,
        "device": str(device),
        "wall_s": wall,
        "wall_s_per_1000_crystals": wall * 1000 / n if n else None,
        "network_evaluations_per_crystal": model.expected_network_evaluations(),
        "network_evaluations_per_1000_crystals": 1000 * model.expected_network_evaluations(),
        "batched_forward_calls": calls,
        "samples": concat_crystals(parts) if parts else None,
    }


def empty_crystals():
    """A CrystalBatch of no crystals (an empty shard's)."""
    import torch

    from replibench.families.crystals.types import CrystalBatch, structure_index

    num_atoms = torch.zeros(0, dtype=torch.long)
    return CrystalBatch(torch.zeros(0, dtype=torch.long), torch.zeros(0, 3), torch.zeros(0, 3, 3), num_atoms,
                        structure_index(num_atoms))
