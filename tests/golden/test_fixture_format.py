"""Every golden fixture names its upstream repo@commit, the weight-name mapping and its generator,
holds numbers only, and the set stays small."""

from __future__ import annotations

import re

import pytest

from golden.golden import all_fixtures, load_fixture

MAX_TOTAL_BYTES = 2_000_000  # "a few hundred KB in all": a generous ceiling, so a 10 MB fixture cannot slip in


@pytest.mark.parametrize("path", all_fixtures(), ids=lambda p: p.stem)
def test_fixture_has_provenance(path):
    fixture = load_fixture(path.stem)
    assert re.fullmatch(r"[\w.-]+/[\w.-]+", fixture.meta["repo"])
    assert re.fullmatch(r"[0-9a-f]{40}", fixture.meta["commit"])
    assert isinstance(fixture.meta["weight_map"], dict)
    assert fixture.meta["generator"].startswith("tools/golden/")
    assert fixture.arrays, "a fixture without arrays compares nothing"
    for name, array in fixture.arrays.items():
        assert array.dtype.kind in "fciub", f"{path.name}:{name} has dtype {array.dtype}"


def test_fixtures_stay_small():
    total = sum(path.stat().st_size for path in all_fixtures())
    assert total <= MAX_TOTAL_BYTES, f"golden fixtures take {total} bytes (limit {MAX_TOTAL_BYTES})"
