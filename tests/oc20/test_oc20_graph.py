"""Radius graph against a brute-force reference (periodic images, small cells, ties)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from replibench.families.oc20.tasks.graph import build_radius_graph, edge_vectors, image_ranges


def brute_force(pos, cell, pbc, cutoff, max_neighbors, reach=4):
    """Loops over every (i, j, image) in a generous image box; top-k by (d², j, image)."""
    pos, cell = np.asarray(pos, float), np.asarray(cell, float)
    ranges = [range(-reach, reach + 1) if p else range(0, 1) for p in pbc]
    edges = set()
    for i in range(len(pos)):
        candidates = []
        for j in range(len(pos)):
            for image in itertools.product(*ranges):
                vec = pos[j] + np.array(image, float) @ cell - pos[i]
                d2 = float(vec @ vec)
                if 1e-4 < d2 <= cutoff * cutoff:
                    candidates.append((d2, j, image))
        candidates.sort()
        kept = candidates if max_neighbors <= 0 else candidates[:max_neighbors]
        edges.update((j, i, image) for _, j, image in kept)
    return edges


def as_set(edge_index, offsets):
    return {(int(j), int(i), tuple(int(x) for x in o)) for (j, i), o in zip(edge_index.T, offsets)}


@pytest.fixture(scope="module")
def rattled_slab():
    from ase.build import add_adsorbate, fcc111, molecule

    slab = fcc111("Pt", size=(2, 2, 3), vacuum=6.0)
    add_adsorbate(slab, molecule("CO"), 1.9, "ontop")
    slab.pbc = True
    slab.rattle(0.05, seed=3)
    return slab


@pytest.mark.parametrize("max_neighbors", [0, 50, 12])
def test_slab_matches_brute_force(rattled_slab, max_neighbors):
    pos, cell = rattled_slab.positions, rattled_slab.cell.array
    edge_index, offsets = build_radius_graph(pos, cell, (True, True, True), 6.0, max_neighbors)
    assert as_set(edge_index, offsets) == brute_force(pos, cell, (True, True, True), 6.0, max_neighbors)
    if max_neighbors > 0:
        assert np.bincount(edge_index[1]).max() == max_neighbors


def test_matches_ase_neighbor_list(rattled_slab):
    from ase.neighborlist import neighbor_list

    i, j, shifts = neighbor_list("ijS", rattled_slab, 6.0)
    edge_index, offsets = build_radius_graph(rattled_slab.positions, rattled_slab.cell.array, max_neighbors=0)
    assert as_set(edge_index, offsets) == {(int(b), int(a), tuple(s)) for a, b, s in zip(i, j, shifts)}


def test_cell_smaller_than_cutoff():
    """Primitive fcc Cu (plane spacing 2.08 Å < 6 Å): many images of the one atom."""
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.6)
    atoms.rattle(0.0)
    edge_index, offsets = build_radius_graph(atoms.positions, atoms.cell.array, max_neighbors=0)
    assert image_ranges(atoms.positions, atoms.cell.array, (True,) * 3, 6.0) == [3, 3, 3]
    assert as_set(edge_index, offsets) == brute_force(atoms.positions, atoms.cell.array, (True,) * 3, 6.0, 0, reach=5)
    assert edge_index.shape[1] == 78  # fcc shells within 6 Å: 12 + 6 + 24 + 12 + 24
    assert np.all((edge_index[0] == 0) & (edge_index[1] == 0))
    two = bulk("NaCl", "rocksalt", a=4.0)  # two atoms, cell spacing < cutoff
    two.rattle(0.02, seed=1)
    e2, o2 = build_radius_graph(two.positions, two.cell.array, max_neighbors=20)
    assert as_set(e2, o2) == brute_force(two.positions, two.cell.array, (True,) * 3, 6.0, 20, reach=5)


def test_non_periodic_axis_and_unwrapped_positions(rattled_slab):
    pos, cell = rattled_slab.positions.copy(), rattled_slab.cell.array
    pbc = (True, True, False)
    e1, o1 = build_radius_graph(pos, cell, pbc, 6.0, 0)
    assert as_set(e1, o1) == brute_force(pos, cell, pbc, 6.0, 0)
    assert np.all(o1[:, 2] == 0)
    moved = pos.copy()
    moved[0] += 2 * cell[0] - 3 * cell[1]  # an atom far outside the cell: same physical graph
    e2, o2 = build_radius_graph(moved, cell, pbc, 6.0, 0)
    v1 = np.round(edge_vectors(pos, cell, e1, o1), 9)
    v2 = np.round(edge_vectors(moved, cell, e2, o2), 9)
    key = lambda e, v: sorted((int(a), int(b), *x) for (a, b), x in zip(e.T, v))
    assert key(e1, v1) == key(e2, v2)


def test_edge_convention_and_cutoff(rattled_slab):
    pos, cell = rattled_slab.positions, rattled_slab.cell.array
    edge_index, offsets = build_radius_graph(pos, cell)
    vectors = edge_vectors(pos, cell, edge_index, offsets)
    lengths = np.linalg.norm(vectors, axis=1)
    assert lengths.max() <= 6.0 and lengths.min() > 0.01
    # sorted by target, then distance: each target's kept lengths are non-decreasing
    for i in np.unique(edge_index[1]):
        assert np.all(np.diff(lengths[edge_index[1] == i]) >= -1e-12)


def test_ties_are_broken_by_source_then_image():
    """Simple cubic, a = 2 Å, exact distances: 6 at 2 Å, 12 at 2√2 Å (ties in binary arithmetic)."""
    cell = 2.0 * np.eye(3)
    pos = np.zeros((1, 3))
    edge_index, offsets = build_radius_graph(pos, cell, cutoff=3.0, max_neighbors=8)
    assert edge_index.shape[1] == 8
    first_shell = {(-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, -1), (0, 0, 1)}
    assert {tuple(o) for o in offsets[:6]} == first_shell
    assert [tuple(o) for o in offsets[6:]] == [(-1, -1, 0), (-1, 0, -1)]  # lexicographically first images
    # fairchem's non-strict rule keeps the whole degenerate shell (0.01 Å² tolerance)
    loose_index, loose_offsets = build_radius_graph(pos, cell, cutoff=3.0, max_neighbors=8,
                                                    enforce_max_neighbors_strictly=False)
    assert loose_index.shape[1] == 18
    # same input → same bytes
    again = build_radius_graph(pos, cell, cutoff=3.0, max_neighbors=8)
    assert np.array_equal(again[0], edge_index) and np.array_equal(again[1], offsets)


def test_non_strict_matches_fairchem_rule_on_rattled(rattled_slab):
    pos, cell = rattled_slab.positions, rattled_slab.cell.array
    full_e, full_o = build_radius_graph(pos, cell, max_neighbors=0)
    d2 = np.sum(edge_vectors(pos, cell, full_e, full_o) ** 2, axis=1)
    loose_e, loose_o = build_radius_graph(pos, cell, max_neighbors=10, enforce_max_neighbors_strictly=False)
    expected = set()
    for i in range(len(pos)):
        mine = np.sort(d2[full_e[1] == i])
        limit = mine[10] + 0.01 if len(mine) > 10 else np.inf
        sel = (full_e[1] == i) & (d2 <= limit)
        expected |= as_set(full_e[:, sel], full_o[sel])
    assert as_set(loose_e, loose_o) == expected


def test_singular_cell_is_an_error():
    from replibench.errors import DataError

    with pytest.raises(DataError, match="singular"):
        build_radius_graph(np.zeros((2, 3)), np.zeros((3, 3)))
