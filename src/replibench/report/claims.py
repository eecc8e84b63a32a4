"""Claim rows: a paper's measured claim (not a metric of a trained model) checked by measuring it here.

The first is the Gaunt paper's efficiency claim (Luo et al., ICLR 2024, Figure 1 and its
``efficiency-comparison/`` notebooks): the Gaunt tensor product is much faster than Clebsch–Gordan
ones as the degree L grows. A family measures such a claim in a ``claim`` job
(``replibench claim``, ``rules/claims.smk``) and writes one JSON file per setting:

    {"family": "oc20", "claim": "gaunt-efficiency", "setting": "feature-interaction",
     "title": "...", "paper": "...", "paper_source": "...", "device": "cpu ... 1 thread",
     "rows": [{"L": 2, "pass": "forward", "baseline": "e3nn", "gaunt_ms": 0.41, "baseline_ms": 0.52,
               "max_abs_difference": 3e-7, "paper_gaunt_ms": 0.76, "paper_baseline_ms": 6.67}, ...]}

Each row becomes a leaderboard row of kind "claim": the time ratio Gaunt / baseline here (below 1:
Gaunt faster) beside the paper's ratio where its notebooks printed both times. A claim row never
counts as a reproduction of a metric; its status says whether the claim holds on this device.
Times vary from run to run, so the Markdown prints ratios to two significant digits.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any

from replibench.errors import DataError

#: the fields every claim file and every row must have (types checked when read)
CLAIM_FIELDS = {"family": str, "claim": str, "setting": str, "title": str, "paper": str, "paper_source": str,
                "device": str, "rows": list}
ROW_FIELDS = {"L": int, "pass": str, "baseline": str, "gaunt_ms": float, "baseline_ms": float}
OPTIONAL_ROW_FIELDS = ("max_abs_difference", "paper_gaunt_ms", "paper_baseline_ms", "lmax", "channels", "batch",
                       "correlation")
#: the time ratio below which "faster" is claimed: within 5 % either way the two are "as fast"
AS_FAST_BAND = 0.05


def _check_type(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def read_claims(paths: list[Path]) -> list[dict[str, Any]]:
    """Read and check claim files; a malformed one is an error naming the file, the row and the field."""
    claims = []
    for path in paths:
        try:
            claim = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise DataError(f"{path}: cannot read the claim file: {error}") from error
        for name, kind in CLAIM_FIELDS.items():
            if not _check_type(claim.get(name), kind):
                raise DataError(f"{path}: field {name!r} must be a {kind.__name__}, found {claim.get(name)!r}")
        for index, row in enumerate(claim["rows"]):
            for name, kind in ROW_FIELDS.items():
                if not _check_type(row.get(name), kind):
                    expected = "a positive number" if kind is float else f"a {kind.__name__}"
                    raise DataError(f"{path}: rows[{index}].{name} must be {expected}, found {row.get(name)!r}")
            for name in ("paper_gaunt_ms", "paper_baseline_ms"):
                if row.get(name) is not None and not _check_type(row[name], float):
                    raise DataError(f"{path}: rows[{index}].{name} must be a positive number or null, "
                                    f"found {row[name]!r}")
        claims.append(claim)
    return sorted(claims, key=lambda c: (c["family"], c["claim"], c["setting"]))


def claim_rows(claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flat rows with the ratios and the status worked out (ratio = Gaunt time / baseline time)."""
    rows = []
    for claim in claims:
        for row in claim["rows"]:
            ratio = row["gaunt_ms"] / row["baseline_ms"]
            paper = (row["paper_gaunt_ms"] / row["paper_baseline_ms"]
                     if row.get("paper_gaunt_ms") and row.get("paper_baseline_ms") else None)
            if ratio < 1.0 - AS_FAST_BAND:
                status = "holds here: Gaunt faster"
            elif ratio <= 1.0 + AS_FAST_BAND:
                status = "as fast (within 5 %)"
            else:
                status = "fails here: Gaunt slower"
            rows.append({**{key: claim[key] for key in ("family", "claim", "setting", "title", "device")},
                         **row, "ratio": ratio, "paper_ratio": paper, "status": status})
    return rows


def _degree(row: dict[str, Any]) -> str:
    """L, with the correlation order where the setting has one (many-body: nu-fold products)."""
    return f"{row['L']} (ν = {row['correlation']})" if row.get("correlation") else str(row["L"])


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2g}"


def claims_markdown(claims: list[dict[str, Any]]) -> list[str]:
    """The claim rows as Markdown tables, one per claim setting, with the sources listed."""
    if not claims:
        return []
    lines = ["## Claims (kind: claim)", "",
             "A paper's measured claim checked here, not a trained model's metric; these rows never count as "
             "reproduced. ratio = Gaunt time / baseline time on the device named (below 1: Gaunt faster); "
             "paper = the same ratio from the times the authors' notebooks printed (their GPU). Times vary "
             "between runs: ratios are printed to two significant digits.", ""]
    by_setting: dict[tuple, list[dict[str, Any]]] = {}
    for row in claim_rows(claims):
        by_setting.setdefault((row["family"], row["claim"], row["setting"]), []).append(row)
    for claim in claims:
        rows = by_setting.get((claim["family"], claim["claim"], claim["setting"]), [])
        lines += [f"### {claim['family']}: {claim['title']}", "",
                  f"Device: {claim['device']}. Paper: {claim['paper']} ({claim['paper_source']}).", "",
                  "| L | pass | baseline | ratio here | paper ratio | status |", "|---|---|---|---|---|---|"]
        for row in rows:
            lines.append(f"| {_degree(row)} | {row['pass']} | {row['baseline']} | {_ratio(row['ratio'])} | "
                         f"{_ratio(row['paper_ratio'])} | {row['status']} |")
        lines.append("")
    return lines


def claims_html(claims: list[dict[str, Any]]) -> str:
    """The claim rows as HTML tables (times in ms with the ratios)."""
    if not claims:
        return ""
    parts = ['<h2 id="claims">Claims (kind: claim)</h2><p>A paper\'s measured claim checked here, not a trained '
             "model's metric; never counted as reproduced. ratio = Gaunt time / baseline time (below 1: Gaunt "
             "faster); paper = the ratio of the times the authors' notebooks printed.</p>"]
    rows = claim_rows(claims)
    for claim in claims:
        parts.append(f"<h3>{escape(claim['family'])}: {escape(claim['title'])}</h3><p>Device: "
                     f"{escape(claim['device'])}. Paper: {escape(claim['paper'])} ({escape(claim['paper_source'])})."
                     "</p><table class=\"summary\"><thead><tr><th>L</th><th>pass</th><th>baseline</th>"
                     "<th>Gaunt ms</th><th>baseline ms</th><th>ratio</th><th>paper Gaunt ms</th>"
                     "<th>paper baseline ms</th><th>paper ratio</th><th>max |Δ|</th><th>status</th></tr></thead><tbody>")
        for row in rows:
            if (row["family"], row["claim"], row["setting"]) != (claim["family"], claim["claim"], claim["setting"]):
                continue
            cells = [_degree(row), row["pass"], row["baseline"], f"{row['gaunt_ms']:.4g}", f"{row['baseline_ms']:.4g}",
                     f"{row['ratio']:.3g}", "–" if row.get("paper_gaunt_ms") is None else f"{row['paper_gaunt_ms']:.4g}",
                     "–" if row.get("paper_baseline_ms") is None else f"{row['paper_baseline_ms']:.4g}",
                     _ratio(row["paper_ratio"]),
                     "–" if row.get("max_abs_difference") is None else f"{row['max_abs_difference']:.1e}",
                     row["status"]]
            parts.append("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in cells) + "</tr>")
        parts.append("</tbody></table>")
    return "".join(parts)
