"""Crystal plots for the leaderboard: property distributions, generated vs test.

Drawn from the histograms that generation runs store in ``metrics.json``
(``protocol.by_convention.<convention>.distributions``: density in g/cm^3 on shared bins, number of
distinct elements per integer), i.e. from the same samples the EMDs were computed on (the EMD
subsample of valid generated crystals vs the test set), so the report stays a function of the
``metrics.json`` files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def run_distributions(record: dict[str, Any]) -> dict[str, Any] | None:
    """The histograms of a generation record under its own convention, or ``None``."""
    if record.get("task") != "gen":
        return None
    protocol = record.get("protocol", {})
    own = protocol.get("by_convention", {}).get(protocol.get("convention"), {})
    distributions = own.get("distributions")
    return distributions if distributions and {"density", "num_elems"} <= set(distributions) else None


def plot_property_distributions(records: list[dict[str, Any]], out_dir: Path) -> list:
    """One figure per dataset: a row per generation run, density and #elements panels, generated
    (EMD sample) vs test, each normalised to a fraction. Returns a ``PlotRef`` per figure, linked to
    the dataset's generation rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from replibench.report.plots import PlotRef, save_figure

    by_dataset: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for record in sorted(records, key=lambda r: (r["dataset"], r["model"], r["variant"], r["seed"])):
        distributions = run_distributions(record)
        if distributions is not None:
            by_dataset.setdefault(record["dataset"], []).append((record, distributions))
    written = []
    for dataset, runs in sorted(by_dataset.items()):
        figure, axes = plt.subplots(len(runs), 2, figsize=(9, 2.6 * len(runs)), squeeze=False)
        for (record, dist), (density_axis, elements_axis) in zip(runs, axes):
            label = f"{record['model']}/{record['variant']}/seed{record['seed']} ({record['preset']})"
            edges = np.asarray(dist["density"]["edges"])
            for key, colour in (("test", "grey"), ("generated", "tab:blue")):
                counts = np.asarray(dist["density"][key], dtype=float)
                name = f"{key} (n={int(counts.sum())}{', valid' if key == 'generated' else ''})"
                density_axis.stairs(counts / max(counts.sum(), 1.0), edges, label=name, color=colour,
                                    fill=key == "test", alpha=0.5 if key == "test" else 1.0)
            density_axis.set(xlabel="density (g/cm³)", ylabel="fraction", title=f"{dataset} {label}")
            values = np.asarray(dist["num_elems"]["values"])
            width = 0.4
            for offset, key, colour in ((-width / 2, "test", "grey"), (width / 2, "generated", "tab:blue")):
                counts = np.asarray(dist["num_elems"][key], dtype=float)
                elements_axis.bar(values + offset, counts / max(counts.sum(), 1.0), width=width, label=key,
                                  color=colour)
            elements_axis.set(xlabel="number of elements", ylabel="fraction", xticks=values)
            elements_axis.legend(fontsize=7)
            density_axis.legend(fontsize=7)
        path = save_figure(figure, Path(out_dir) / f"property_distributions_{dataset}.png")
        written.append(PlotRef("crystals", path, f"{dataset}: density and number of elements, generated vs test",
                               {"dataset": dataset, "task": "gen"}))
    return written
