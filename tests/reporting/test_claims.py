"""Claim rows (a paper's measured claim, e.g. the Gaunt TP's speed-up): read, checked, rendered."""

from __future__ import annotations

import json

import pytest

from replibench.errors import DataError
from replibench.report.claims import claim_rows, claims_html, claims_markdown, read_claims


def _claim(rows):
    return {"family": "oc20", "claim": "gaunt-efficiency", "setting": "feature-interaction",
            "title": "feature interaction, 128 channels", "paper": "Gaunt (ICLR 2024)",
            "paper_source": "test_equi_feat.ipynb", "device": "cpu, 1 thread", "rows": rows}


def _write(tmp_path, claim, name="c.json"):
    path = tmp_path / name
    path.write_text(json.dumps(claim))
    return path


def test_ratios_and_status_from_the_times(tmp_path):
    rows = [{"L": 2, "pass": "forward", "baseline": "e3nn", "gaunt_ms": 1.0, "baseline_ms": 4.0,
             "paper_gaunt_ms": 0.76, "paper_baseline_ms": 6.67},
            {"L": 3, "pass": "forward", "baseline": "e3nn", "gaunt_ms": 2.0, "baseline_ms": 1.0},
            {"L": 4, "pass": "forward", "baseline": "e3nn", "gaunt_ms": 1.02, "baseline_ms": 1.0}]
    flat = claim_rows(read_claims([_write(tmp_path, _claim(rows))]))
    assert [row["ratio"] for row in flat] == pytest.approx([0.25, 2.0, 1.02])
    assert flat[0]["paper_ratio"] == pytest.approx(0.76 / 6.67)  # 0.114: the notebook's 8.78x
    assert flat[1]["paper_ratio"] is None
    assert [row["status"] for row in flat] == ["holds here: Gaunt faster", "fails here: Gaunt slower",
                                               "as fast (within 5 %)"]


def test_markdown_and_html_show_every_row(tmp_path):
    rows = [{"L": 2, "pass": "forward+backward", "baseline": "e3nn", "gaunt_ms": 1.0, "baseline_ms": 3.0,
             "paper_gaunt_ms": 0.76, "paper_baseline_ms": 6.67, "max_abs_difference": 2e-7}]
    claims = read_claims([_write(tmp_path, _claim(rows))])
    markdown = "\n".join(claims_markdown(claims))
    assert "| 2 | forward+backward | e3nn | 0.33 | 0.11 | holds here: Gaunt faster |" in markdown
    html = claims_html(claims)
    assert "<td>0.333</td>" in html and "<td>2.0e-07</td>" in html
    assert claims_markdown([]) == [] and claims_html([]) == ""


def test_a_malformed_claim_names_the_file_row_and_field(tmp_path):
    bad = _claim([{"L": 2, "pass": "forward", "baseline": "e3nn", "gaunt_ms": 0.0, "baseline_ms": 1.0}])
    path = _write(tmp_path, bad)
    with pytest.raises(DataError, match=r"c\.json: rows\[0\]\.gaunt_ms must be a positive number, found 0\.0"):
        read_claims([path])
    missing = _claim([])
    del missing["device"]
    with pytest.raises(DataError, match=r"m\.json: field 'device' must be a str"):
        read_claims([_write(tmp_path, missing, "m.json")])
