"""Scoring sampled crystals the way ``metrics.json`` and the leaderboard hold them: flat names.

:func:`evaluate_csp` / :func:`evaluate_gen` return nested results (``variants`` → metrics). A run's
``metrics.json`` holds plain ``{name: number}`` instead, named so that every number says what it is:

- the run's own variant under its convention: the plain names of :data:`METRICS`
  (``match_rate``, ``rmse``, ``cov_recall``, …);
- CSP with fewer samples than the run drew: ``<name>_k<k>`` (``match_rate_k1`` of a 20-sample run
  counts the first sample of each test crystal; the family turns these into ``k1`` rows);
- another convention computed from the same samples: ``<name>@<convention>``
  (``match_rate@crysbfn``: our DiffCSP samples under CrysBFN's gating).

A metric that cannot be computed (formation-energy EMD without a property model, EMDs with too
few valid crystals, RMSE with no match) is ``None``, and ``unavailable`` says why.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from replibench.families.metric_info import MetricInfo

_NAME = re.compile(r"^(?P<base>[a-z][a-z0-9_]*?)(?:_k(?P<k>\d+))?(?:@(?P<convention>[a-z]+))?$")


def split_metric_name(name: str) -> tuple[str, int | None, str | None]:
    """``"match_rate_k1@crysbfn"`` → ``("match_rate", 1, "crysbfn")``; plain names → (name, None, None)."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"{name!r} is not a crystal metric name (<metric>[_k<k>][@<convention>])")
    k = match.group("k")
    return match.group("base"), (int(k) if k else None), match.group("convention")


def metric_name(base: str, *, k: int | None = None, convention: str | None = None) -> str:
    """Inverse of :func:`split_metric_name`."""
    return base + (f"_k{k}" if k is not None else "") + (f"@{convention}" if convention else "")


def metric_info_for(name: str) -> MetricInfo:
    """Direction and unit of a (possibly suffixed) metric name, from :data:`METRICS`."""
    from replibench.families.crystals.metrics import METRICS

    base, k, convention = split_metric_name(name)
    if base not in METRICS:
        raise KeyError(f"unknown crystal metric {base!r} (from {name!r}); known: {sorted(METRICS)}")
    info = METRICS[base]
    notes = ([f"first {k} sample(s) per test crystal"] if k is not None else []) + (
        [f"under the {convention} convention"] if convention else [])
    # a k-sample run's first-k numbers are shown as the family's derived k<k> rows
    return MetricInfo(info.direction, info.unit, info.description + (f" ({'; '.join(notes)})" if notes else ""),
                      comparison_only=k is not None or info.comparison_only)


def flatten_evaluation(result: dict[str, Any], *, primary_variant: str,
                       convention: str | None = None) -> tuple[dict[str, float | None], dict[str, str]]:
    """(flat metrics, unavailable reasons) of one :func:`evaluate_csp`/:func:`evaluate_gen` result.

    ``primary_variant`` (``k20``, ``default``) keeps plain names; other CSP variants get ``_k<k>``.
    ``convention`` (an extra one) suffixes every name with ``@<convention>``.
    """
    if primary_variant not in result["variants"]:
        raise ValueError(f"variant {primary_variant!r} not evaluated; have {sorted(result['variants'])}")
    metrics: dict[str, float | None] = {}
    for variant, values in result["variants"].items():
        k = None if variant == primary_variant else int(variant.removeprefix("k"))
        for base, value in values.items():
            metrics[metric_name(base, k=k, convention=convention)] = None if value is None else float(value)
    unavailable: dict[str, str] = {}
    for key, reason in result["unavailable"].items():  # "wdist_prop" or "k20.rmse"
        variant, _, base = key.rpartition(".")
        k = None if variant in ("", primary_variant) else int(variant.removeprefix("k"))
        unavailable[metric_name(base, k=k, convention=convention)] = reason
    for name, value in metrics.items():
        if value is None and name not in unavailable:
            unavailable[name] = "not computable from these samples"
    return metrics, unavailable


def _csp_inputs(predictions, truth) -> tuple[list[list[str]], list[str]]:
    """Samples per test crystal (in ``sample_index`` order) and the test CIFs, from two tables."""
    from replibench.errors import DataError

    ids = truth.column("material_id").to_pylist()
    samples: dict[str, list[tuple[int, str]]] = {mid: [] for mid in ids}
    rows = zip(predictions.column("material_id").to_pylist(), predictions.column("sample_index").to_pylist(),
               predictions.column("cif").to_pylist())
    for row, (mid, index, cif) in enumerate(rows):
        if mid not in samples:
            raise DataError(f"predictions row {row}: material_id {mid!r} is not a test crystal")
        samples[mid].append((int(index), cif or ""))  # a null CIF is a crystal that could not be built
    return ([[cif for _, cif in sorted(found)] for found in (samples[mid] for mid in ids)],
            truth.column("cif").to_pylist())


def evaluate_samples(
    *, task: str, predictions, truth, convention: str, dataset: str, seed: int, num_workers: int = 1,
    primary_samples: int | None = None, ks: Sequence[int] | None = None,
    extra_conventions: Sequence[str] = (), allow_fewer_valid: bool = False, property_model=None,
) -> dict[str, Any]:
    """Score a prediction table (``material_id``, ``sample_index``, ``cif``) against the test table
    (``material_id``, ``cif``) under ``convention`` and every one of ``extra_conventions``.

    CSP: ``primary_samples`` (default: the most samples any test crystal has) is the run's variant;
    ``ks`` lists the other sample counts to report. Gen: every prediction row is one crystal.
    Returns ``{"metrics": flat, "unavailable": name → reason, "details": per convention: counts,
    protocol (and for gen the property histograms)}``.
    """
    from replibench.families.crystals.metrics.evaluate import evaluate_csp, evaluate_gen

    metrics: dict[str, float | None] = {}
    unavailable: dict[str, str] = {}
    details: dict[str, Any] = {}
    for name in dict.fromkeys([convention, *extra_conventions]):
        if task == "csp":
            samples, truths = _csp_inputs(predictions, truth)
            primary = primary_samples or max(len(s) for s in samples)
            result = evaluate_csp(predictions=samples, truths=truths, convention=name, workers=num_workers,
                                  ks=sorted({primary, *(ks or [])}))
            variant = f"k{primary}"
        elif task == "gen":
            result = evaluate_gen(generated=[cif or "" for cif in predictions.column("cif").to_pylist()],
                                  truths=truth.column("cif").to_pylist(), dataset=dataset, convention=name,
                                  workers=num_workers, seed=seed, allow_fewer_valid=allow_fewer_valid,
                                  property_model=property_model)
            variant = "default"
        else:
            raise ValueError(f"unknown crystal task {task!r}; expected 'csp' or 'gen'")
        flat, missing = flatten_evaluation(result, primary_variant=variant,
                                           convention=None if name == convention else name)
        metrics.update(flat)
        unavailable.update(missing)
        details[name] = {key: result[key] for key in ("counts", "protocol", "distributions") if key in result}
    return {"metrics": metrics, "unavailable": unavailable, "details": details}
