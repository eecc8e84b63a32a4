"""Compositional validity with the SMACT rules, giving the papers' answers on the current smact.

The papers ran ``smact_validity`` (CDVAE ``scripts/eval_utils.py``; DiffCSP and CrysBFN copies) on
smact 2.2.1. Current smact (4.0.x) changed four things that change verdicts, all handled here:

1. ``Element.oxidation_states`` defaults to the ICSD-2024 list; the papers used the SMACT-2014 list
   (``oxidation_states_smact14`` today). Two entries of smact 2.2.1's table also differ from today's
   ``oxidation_states_smact14`` (Ir's lowest state -2 vs -3; He/Ne/Ar ``[]`` vs ``None``):
   :data:`SMACT_221_OXIDATION_STATE_OVERRIDES`.
2. smact 2.2.1's Pauling electronegativity of Zr is 0.33 (a data typo; today 1.33). The papers ran
   with 0.33: :data:`SMACT_221_ELECTRONEGATIVITY_OVERRIDES`.
3. ``neutral_ratios`` returned ``(bool, ratios)``; it now returns only the list, so the papers'
   two-name unpacking raises ``ValueError``. We test charge neutrality directly: with
   ``stoichs=[(c,) for c in counts]`` (counts already divided by their gcd) neutral_ratios reduces to
   ``sum(ox_i * c_i) == 0``.
4. ``pauling_test`` now returns False when an electronegativity is missing. In 2.2.1 a missing value
   in a cation–anion pair raised ``TypeError`` (``None >= float``), which the papers catch as
   "assume it is okay"; a missing value in a same-sign pair returned False. Pairs are visited in
   ``itertools.combinations`` order and the first decisive pair wins, so we replay that order.

The rules (CDVAE): one element → valid; all elements in ``smact.metals`` → valid (alloy shortcut);
otherwise valid iff some combination of allowed oxidation states (Cartesian product, one state per
element) is charge-neutral for the reduced counts and passes the Pauling test. We search that
product depth-first in ``itertools.product`` order, pruning prefixes that can no longer reach a
total charge of 0 — exact, and fast where CDVAE's full enumeration is exponential.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import lru_cache

#: smact 2.2.1 ``data/oxidation_states.txt`` entries that differ from smact 4's ``oxidation_states_smact14``.
SMACT_221_OXIDATION_STATE_OVERRIDES: dict[str, tuple[int, ...]] = {
    "Ir": (-2, -1, 1, 2, 3, 4, 5, 6, 7, 8),
    "He": (),
    "Ne": (),
    "Ar": (),
}
#: smact 2.2.1 ``data/element_data.txt`` Pauling electronegativities that differ from smact 4's.
SMACT_221_ELECTRONEGATIVITY_OVERRIDES: dict[str, float] = {"Zr": 0.33}


@lru_cache(maxsize=None)
def smact14_element(symbol: str) -> tuple[tuple[int, ...], float | None]:
    """(oxidation states, Pauling electronegativity) of ``symbol`` as smact 2.2.1 gave them."""
    import smact

    element = smact.Element(symbol)
    states = SMACT_221_OXIDATION_STATE_OVERRIDES.get(symbol)
    if states is None:
        states = tuple(element.oxidation_states_smact14 or ())
    eneg = SMACT_221_ELECTRONEGATIVITY_OVERRIDES.get(symbol, element.pauling_eneg)
    return tuple(int(s) for s in states), (None if eneg is None else float(eneg))


@lru_cache(maxsize=1)
def smact_metals() -> frozenset[str]:
    """``smact.metals`` (79 elements; identical in smact 2.2.1 and 4.0.x)."""
    import smact

    return frozenset(smact.metals)


def pauling_test_smact221(oxidation_states: Sequence[int], electronegativities: Sequence[float | None]) -> bool:
    """smact 2.2.1 ``pauling_test`` as the papers called it, TypeError caught as "okay".

    For each pair (in ``combinations`` order): a cation at least as electronegative as an anion
    fails; a missing value in a cation–anion pair is the caught TypeError (pass); a missing value in
    any other pair fails.
    """
    for (ox1, en1), (ox2, en2) in itertools.combinations(zip(oxidation_states, electronegativities), 2):
        if ox1 > 0 and ox2 < 0:
            if en1 is None or en2 is None:
                return True  # 2.2.1: None >= float → TypeError → CDVAE: "assume it is okay"
            if en1 >= en2:
                return False
        elif ox1 < 0 and ox2 > 0:
            if en1 is None or en2 is None:
                return True
            if en1 <= en2:
                return False
        elif en1 is None or en2 is None:
            return False
    return True


def reduced_composition(atomic_numbers: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(elements sorted by Z, counts divided by their gcd), as ``Crystal.get_composition`` builds them."""
    counts: dict[int, int] = {}
    for z in atomic_numbers:
        counts[int(z)] = counts.get(int(z), 0) + 1
    elements = tuple(sorted(counts))
    divisor = math.gcd(*counts.values())
    return elements, tuple(counts[z] // divisor for z in elements)


def smact_valid(
    elements: Sequence[int],
    counts: Sequence[int],
    *,
    max_combinations: int | None = None,
    use_pauling_test: bool = True,
    include_alloys: bool = True,
) -> bool:
    """SMACT compositional validity of reduced composition (``elements`` as Z, ``counts``).

    ``max_combinations``: DiffCSP's cap (product of the numbers of allowed states; above it the
    composition is invalid without searching). Raises ``ValueError`` for an empty composition.
    """
    from pymatgen.core.periodic_table import Element

    if len(elements) == 0:
        raise ValueError("composition has no elements")
    symbols = [Element.from_Z(int(z)).symbol for z in elements]
    if len(set(symbols)) == 1:
        return True
    if include_alloys and all(symbol in smact_metals() for symbol in symbols):
        return True
    table = [smact14_element(symbol) for symbol in symbols]
    states = [entry[0] for entry in table]
    enegs = [entry[1] for entry in table]
    if max_combinations is not None and math.prod(len(s) for s in states) > max_combinations:
        return False
    counts = [int(c) for c in counts]
    # Charge reachable by the elements after position i: [min, max], for pruning.
    low = [0] * (len(states) + 1)
    high = [0] * (len(states) + 1)
    for i in range(len(states) - 1, -1, -1):
        if not states[i]:
            return False  # empty product: no combination exists
        low[i] = low[i + 1] + counts[i] * min(states[i])
        high[i] = high[i + 1] + counts[i] * max(states[i])

    chosen: list[int] = []

    def search(position: int, charge: int) -> bool:
        if position == len(states):
            if charge != 0:
                return False
            return (not use_pauling_test) or pauling_test_smact221(chosen, enegs)
        for state in states[position]:
            total = charge + counts[position] * state
            if total + low[position + 1] > 0 or total + high[position + 1] < 0:
                continue
            chosen.append(state)
            if search(position + 1, total):
                return True
            chosen.pop()
        return False

    return search(0, 0)


def composition_valid(atomic_numbers: Sequence[int], *, max_combinations: int | None = None) -> bool:
    """:func:`smact_valid` of a structure's atoms (reduced as the papers reduce them)."""
    elements, counts = reduced_composition(atomic_numbers)
    return smact_valid(elements, counts, max_combinations=max_combinations)
