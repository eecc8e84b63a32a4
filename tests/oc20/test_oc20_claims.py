"""The OC20 family's claim job: the Gaunt paper's efficiency claim measured and written in the
format the leaderboard reads (a real measurement at one small L, to stay fast)."""

from __future__ import annotations

import json

import pytest

from replibench.cli import main
from replibench.errors import ConfigError
from replibench.families.oc20 import family as oc20_family
from replibench.report.claims import claim_rows, read_claims


def test_claim_job_writes_rows_the_report_reads(tmp_path, monkeypatch):
    monkeypatch.setitem(oc20_family.CLAIM_DEGREES, "convolution", (2, 3))
    monkeypatch.setattr(oc20_family, "CLAIM_REPEATS", 1)
    out = tmp_path / "claims" / "convolution.json"
    assert main(["claim", "--family", "oc20", "--claim", "gaunt-efficiency", "--setting", "convolution",
                 "--out", str(out)]) in (0, None)
    claim = json.loads(out.read_text())
    assert (claim["family"], claim["claim"], claim["setting"]) == ("oc20", "gaunt-efficiency", "convolution")
    assert "1 thread" in claim["device"] and "7c5630a7f1316a1408c5811d836df864f26c02cb" in claim["paper_source"]
    rows = claim_rows(read_claims([out]))
    # L = 2, 3 x (forward, forward+backward) x (e3nn, eSCN)
    assert sorted((r["L"], r["pass"], r["baseline"]) for r in rows) == sorted(
        (L, p, b) for L in (2, 3) for p in ("forward", "forward+backward") for b in ("e3nn", "escn"))
    assert all(r["max_abs_difference"] < 1e-5 for r in rows)  # the same function, float32
    forward_e3nn = {r["L"]: r for r in rows if r["pass"] == "forward" and r["baseline"] == "e3nn"}
    assert forward_e3nn[2]["paper_ratio"] == pytest.approx(0.84 / 3.91)  # the notebook's 4.64x at L = 2


def test_unknown_claim_or_setting_is_refused():
    with pytest.raises(ConfigError, match="no claim 'gaunt-efficiency' with setting 'attention'"):
        oc20_family.FAMILY.measure_claim("gaunt-efficiency", "attention", device="cpu", threads=1)
