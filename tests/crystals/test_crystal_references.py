"""The papers' reported numbers: exact keys, known names, values as the research notes give them."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from replibench.datasets.crystals import DATASETS
from replibench.metrics.crystals import CONVENTIONS, METRICS

REFERENCES = Path(__file__).resolve().parents[2] / "references" / "crystals.yaml"
KEYS = {"paper", "table", "dataset", "task", "variant", "model", "metric", "value", "convention", "source", "note"}


def load() -> list[dict]:
    return yaml.safe_load(REFERENCES.read_text(encoding="utf-8"))


def test_every_row_has_exactly_the_agreed_keys_and_known_names():
    rows = load()
    assert rows
    for row in rows:
        assert set(row) == KEYS, row
        assert row["model"] in {"cdvae", "diffcsp", "crysbfn"}
        assert row["dataset"] in DATASETS and row["convention"] in CONVENTIONS
        assert row["metric"] in METRICS and row["task"] in {"csp", "gen", "recon"}
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*", row["variant"])
        assert isinstance(row["value"], float) and row["note"]


def test_headline_numbers_are_the_notes_values():
    index = {(r["paper"].split(",")[1].strip(), r["dataset"], r["task"], r["variant"], r["model"], r["metric"]): r["value"]
             for r in load()}
    assert index["DiffCSP", "mp-20", "csp", "k1", "diffcsp", "match_rate"] == 51.49
    assert index["DiffCSP", "mp-20", "csp", "k20", "diffcsp", "rmse"] == 0.0492
    assert index["CDVAE", "mp-20", "gen", "default", "cdvae", "cov_recall"] == 99.15
    assert index["CrysBFN", "mp-20", "csp", "k1", "crysbfn", "match_rate"] == 64.35
    assert len(index) == len(load())  # no duplicated (paper, dataset, task, variant, model, metric)
