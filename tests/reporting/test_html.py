"""leaderboard.html without a browser: offline by construction, every row and its provenance."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from replibench.report import build_leaderboard, load_references
from replibench.results import read_results_table

from .records import build_report


class Collector(HTMLParser):
    """Tags with their attributes, and the text, of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    paths = build_report(tmp_path_factory.mktemp("report"))
    page = Collector()
    page.feed(paths["html"].read_text(encoding="utf-8"))
    return paths, page


def test_the_page_loads_nothing_from_anywhere(report):
    paths, page = report
    for tag, attrs in page.tags:
        assert tag not in ("link", "iframe", "object", "embed"), tag
        if tag == "script":
            assert "src" not in attrs
        for name in ("src", "href"):
            value = attrs.get(name, "")
            assert "://" not in value and not value.startswith("//"), (tag, value)
    csp = [attrs["content"] for tag, attrs in page.tags if attrs.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]
    # every linked file exists beside the page (figures, metrics.json of each run)
    for tag, attrs in page.tags:
        target = attrs.get("src") or (attrs.get("href") if tag == "a" else None)
        if target and not target.startswith("#"):
            assert (paths["html"].parent / target).is_file(), target


def test_every_row_with_its_provenance_and_figures(report):
    paths, page = report
    board = build_leaderboard(read_results_table(paths["results"]),
                              load_references([paths["html"].parents[1] / "references" / "toy.yaml"]))
    entries = [attrs for tag, attrs in page.tags if tag == "tbody" and attrs.get("class") == "entry"]
    assert len(entries) == len(board)
    assert {e["data-family"] for e in entries} == {"ett", "crystal-toy", "lra-toy"}
    text = "".join(page.text)
    for fact in ("0123456789abcdef0123456789abcdef01234567", "a" * 64, "etth2.csv: ", "b" * 64, "c" * 64, "4242",
                 "cuda:0 (NVIDIA H100)", "one sample per test structure", "arXiv 2309.04475", "±5 %"):
        assert fact in text, fact
    figures = {attrs["src"] for tag, attrs in page.tags if tag == "img"}
    assert "plots/ett/paper_vs_ours.png" in figures and "plots/ett/learning_curves_etth1_forecast.png" in figures
    assert "plots/crystal-toy/paper_vs_ours.png" in figures
    # a note from the references is text, not markup
    assert "<b>unescaped?</b>" in text and ("b", {}) not in page.tags
