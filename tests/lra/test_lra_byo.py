"""`replibench metrics lra lra-classify`: a classifier's predictions made elsewhere, scored against our
test labels exactly as our own evaluation scores them; bad files are named with the offending row."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from replibench.cli import main
from replibench.families.lra.datasets.listops_gen import ListOpsConfig
from replibench.families.lra.datasets.preprocess import preprocess_listops_generated
from replibench.families.lra.family import FAMILY
from replibench.families.lra.tasks.classify import LraClassifyTask


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("parquet")
    preprocess_listops_generated(root / "lra" / "listops-generated",
                                 config=ListOpsConfig(min_length=20, max_length=80, num_train=32, num_val=8,
                                                      num_test=24), seed=0)
    return root


def _write(path, example_ids, predicted):
    pq.write_table(pa.table({"example_id": pa.array(example_ids, pa.int64()),
                             "predicted": pa.array(predicted, pa.int64())}), path)
    return path


def _cli(data_root, pred, out):
    return main(["metrics", "lra", "lra-classify", "--dataset", "listops-generated", "--pred", str(pred),
                 "--out", str(out), "--data-root", str(data_root)])


def test_external_predictions_score_like_our_evaluation_in_any_row_order(data_root, tmp_path):
    test = pq.read_table(data_root / "lra" / "listops-generated" / "test.parquet")
    ids, labels = test.column("example_id").to_numpy(), test.column("label").to_numpy()
    predicted = labels.copy()
    predicted[::3] = (predicted[::3] + 1) % 10  # every third one wrong: 8 of 24
    order = np.random.default_rng(0).permutation(len(ids))
    pred = _write(tmp_path / "pred.parquet", ids[order], predicted[order])
    assert _cli(data_root, pred, tmp_path / "m.json") == 0
    record = json.loads((tmp_path / "m.json").read_text())
    assert record["metrics"]["accuracy"] == pytest.approx(100.0 * 16 / 24)
    run = FAMILY.make_run("listops-generated", "lra-classify", "s4d-legs", {}, 0, "smoke")
    ours = LraClassifyTask().score(pa.table({"label": labels, "predicted": predicted}), None,
                                   FAMILY.run_settings({}, run))
    assert record["metrics"] == ours
    assert (record["variant"], record["variant_values"], record["protocol"]["test_examples"]) == ("default", {}, 24)


@pytest.mark.parametrize("change, message", [
    (lambda ids, p: (np.append(ids, ids[0]), np.append(p, 0)), "is predicted more than once"),
    (lambda ids, p: (ids[1:], p[1:]), "1 of 24 test examples have no prediction"),
    (lambda ids, p: (np.append(ids, 10**9), np.append(p, 0)), "row 24: example_id 1000000000 is not in"),
])
def test_repeated_missing_or_unknown_examples_are_errors_that_name_them(data_root, tmp_path, capsys, change,
                                                                        message):
    ids = pq.read_table(data_root / "lra" / "listops-generated" / "test.parquet").column("example_id").to_numpy()
    pred = _write(tmp_path / "pred.parquet", *change(ids, np.zeros(len(ids), np.int64)))
    assert _cli(data_root, pred, tmp_path / "m.json") == 2
    assert message in capsys.readouterr().err and not (tmp_path / "m.json").exists()


def test_the_generic_command_offers_exactly_the_tasks_that_score_files(capsys):
    """Each family's tasks either declare their options (and --out) or refuse, naming those that do."""
    import argparse

    from replibench.registry import FAMILIES, resolve

    scorable = set()
    for family_name in FAMILIES:
        for task_name in resolve("family", family_name).tasks:
            task = resolve("task", task_name)
            if task.score_file_help:
                parser = argparse.ArgumentParser()
                task.add_score_file_arguments(parser)
                assert "--out" in parser.format_help()
                scorable.add(f"{family_name} {task_name}")
    assert scorable == {"ett forecast", "crystals csp", "crystals gen", "lra lra-classify", "oc20 s2ef", "oc20 is2re"}
    assert main(["metrics", "lra", "state-tracking", "--pred", "x"]) == 2
    assert "tasks that do: lra-classify" in capsys.readouterr().err
    assert main(["metrics", "ett", "csp"]) == 2
    assert "ett has no task 'csp'; its tasks: forecast, impute" in capsys.readouterr().err
