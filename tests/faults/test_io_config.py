"""Issue 12 items 6 and 9: config mistakes are refused at plan time with the key (or the line)
named — a short checksum pin, a pin for an undeclared file, a duplicated YAML key, an empty family
list, a YAML syntax error under Snakemake — and config.yaml's own examples work with Snakemake."""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path

import pytest
import yaml

from replibench.config import load_config, validate_config
from replibench.data.checksum import parse_checksum
from replibench.data.download import RemoteFile, fetch
from replibench.errors import ConfigError

from .conftest import ETT_ONLY

ROOT = Path(__file__).resolve().parents[2]


def _with_pins(pins: dict) -> dict:
    config = copy.deepcopy(ETT_ONLY)
    config["data"]["checksums"] = pins
    return config


@pytest.mark.parametrize(("pin", "expected"), [
    ("sha256:abcd", "a sha256 digest has 64 hex digits, this one has 4"),
    ("md5:" + "a" * 31, "a md5 digest has 32 hex digits, this one has 31"),
    ("git-sha1:" + "a" * 64, "a git-sha1 digest has 40 hex digits, this one has 64"),
])
def test_a_pin_of_the_wrong_length_is_refused_at_plan_time(pin, expected):
    with pytest.raises(ConfigError, match=r"config\.yaml: data\.checksums\.lra/lra_release\.gz: .*" + expected):
        validate_config(_with_pins({"lra/lra_release.gz": pin}))


def test_full_length_pins_of_each_algorithm_are_accepted():
    pins = {"lra/lra_release.gz": "md5:" + "a" * 32, "perov_5/train.csv": "git-sha1:" + "b" * 40,
            "carbon_24/train.csv": "sha256:" + "C" * 64}
    assert validate_config(_with_pins(pins))["data"]["checksums"] == pins


def test_a_short_pin_never_reaches_the_network(file_server, tmp_path):
    """`replibench download --checksum sha256:abcd` fails before any request (was: after the whole file)."""
    remote = RemoteFile("blob.bin", "http://127.0.0.1:9/blob.bin", "test/blob.bin", None, None)
    with pytest.raises(ValueError, match="64 hex digits"):
        fetch(remote, tmp_path / "raw" / "blob.bin", mirror=file_server.url, progress=False,
              pinned_checksum="sha256:abcd")
    assert file_server.behaviour.requests == [] and not list((tmp_path / "raw").glob("*"))
    with pytest.raises(ValueError, match="32 hex digits"):
        parse_checksum("md5:abc")


@pytest.mark.parametrize("key", ["lra/lra_release.tar.gz", "lra_release.gz", "perov5/train.csv"])
def test_a_pin_for_an_undeclared_file_is_refused(key):
    with pytest.raises(ConfigError, match=rf"data\.checksums: '{re.escape(key)}' is not a declared remote file; "
                                          r"keys are <dataset folder>/<file>, one of: .*lra/lra_release\.gz"):
        validate_config(_with_pins({key: "md5:" + "a" * 32}))


@pytest.mark.parametrize(("text", "expected"), [
    ("preset: smoke\npreset: paper\nfamilies: [ett]\n",
     r"found duplicate key 'preset' \(first at line 1\)\s+in \".*config.yaml\", line 2, column 1"),
    ("preset: smoke\nett:\n  seeds: [1]\n  runs: []\n  seeds: [2]\n",
     r"found duplicate key 'seeds' \(first at line 3\)\s+in \".*config.yaml\", line 5, column 3"),
    ("data: {workers: 1, workers: 2}\n", r"found duplicate key 'workers' \(first at line 1\)"),
    ("preset: smoke\nfamilies: [ett\n", r"expected ',' or '\]'.*\s+in \".*config.yaml\", line 3, column 1"),
    ("preset: smoke\n  families: [ett]\n", r"mapping values are not allowed here\s+in \".*config.yaml\", line 2"),
])
def test_duplicate_keys_and_syntax_errors_name_the_line(tmp_path, text, expected):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"config\.yaml: not valid YAML: (?s:.*)" + expected):
        load_config(path)


def test_the_shipped_config_has_no_duplicate_key_and_equal_keys_in_different_mappings_are_fine(tmp_path):
    assert load_config(ROOT / "config.yaml") == yaml.safe_load((ROOT / "config.yaml").read_text())
    path = tmp_path / "c.yaml"
    path.write_text("a: {x: 1}\nb: {x: 2}\nc: [{x: 1}, {x: 2}]\n")
    assert load_config(path) == {"a": {"x": 1}, "b": {"x": 2}, "c": [{"x": 1}, {"x": 2}]}


def test_an_empty_family_list_is_refused():
    with pytest.raises(ConfigError, match=r"config\.yaml: families: \[\] should be non-empty"):
        validate_config({**copy.deepcopy(ETT_ONLY), "families": []})


def _header_examples() -> list[list[str]]:
    """The `snakemake --config …` commands shown in config.yaml's header comment, as argument lists."""
    header = "".join(line[1:] for line in (ROOT / "config.yaml").read_text().splitlines(keepends=True)
                     if line.startswith("#"))
    commands = re.findall(r"`(snakemake --config [^`]+)`", header)
    return [shlex.split(command)[2:] for command in commands]


def test_every_config_example_in_config_yaml_is_accepted_by_snakemake():
    """Item 9: the header showed `--config data.mirror=…`, which Snakemake refuses."""
    from snakemake.cli import parse_config
    from snakemake.utils import update_config

    examples = _header_examples()
    assert len(examples) >= 3 and any(e[0].startswith("data=") for e in examples)
    for entries in examples:
        config = load_config(ROOT / "config.yaml")
        update_config(config, parse_config(entries))  # what Snakemake does with --config
        validate_config(config)
    with pytest.raises(ValueError, match="valid identifier"):
        parse_config(["data.mirror=http://127.0.0.1:8000"])  # the old example


def _dry_run(workdir: Path, *args: str):
    from spine.test_workflow import snakemake

    return snakemake(workdir, "-n", *args, timeout=300)


@pytest.mark.workflow
@pytest.mark.parametrize(("text", "args", "expected"), [
    ("preset: smoke\nfamilies: [ett\n", (), r"config\.yaml: not valid YAML(?s:.*)line 3, column 1"),
    ("preset: smoke\npreset: paper\n", (), r"found duplicate key 'preset' \(first at line 1\)(?s:.*)line 2"),
    (None, ("families=[]",), r"families: \[\] should be non-empty"),
    (None, ("data={checksums: {lra/lra_release.gz: sha256:abcd}}",), r"64 hex digits, this one has 4"),
    (None, ("data={checksums: {lra/nope.gz: md5:00000000000000000000000000000000}}",), r"'lra/nope.gz' is not a declared"),
], ids=["syntax-error", "duplicate-key", "no-families", "short-pin", "unknown-pin"])
def test_snakemake_stops_before_planning(ett_workdir, text, args, expected):
    if text is not None:
        (ett_workdir / "config.yaml").write_text(text)
    result = _dry_run(ett_workdir, *(("--config", *args) if args else ()))
    assert result.returncode != 0
    output = result.stdout + result.stderr  # Snakemake prints a Snakefile's error on either
    assert re.search(expected, output), output[-2000:]
    assert "Job stats" not in output
