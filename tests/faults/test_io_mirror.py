"""Issue 12 item 1: data.mirror cannot inject shell commands, and only http(s) URLs or existing
folders are used as mirrors (refused at plan time, before any job, with the key named).

Also the audit: every value a rule pastes into its shell command is quoted (`:q`)."""

from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from replibench.config import validate_config
from replibench.data.download import RemoteFile, check_mirror, fetch
from replibench.errors import ConfigError, DataError

from .conftest import ETT_ONLY

ROOT = Path(__file__).resolve().parents[2]
ISSUE_MIRROR = "http://127.0.0.1:9/$(touch marker)"  # the reported case, verbatim
ETTH1_SHA256 = "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066"


def _config(mirror):
    return {**ETT_ONLY, "data": {**ETT_ONLY["data"], "mirror": mirror}}


@pytest.mark.parametrize("mirror", ["http://127.0.0.1:8000", "https://mirror.example.org/replibench/",
                                    "http://127.0.0.1:9/$(touch${IFS}marker)"])
def test_http_and_https_urls_are_accepted(mirror):
    check_mirror(mirror)  # a URL may hold `$(…)`: it is quoted where it meets a shell, never refused for that
    assert validate_config(_config(mirror))["data"]["mirror"] == mirror


def test_an_existing_folder_is_accepted_even_with_a_space(tmp_path):
    folder = tmp_path / "my mirror"
    folder.mkdir()
    assert validate_config(_config(str(folder)))["data"]["mirror"] == str(folder)


@pytest.mark.parametrize(("mirror", "expected"), [
    ("ftp://ftp.example.org/replibench", "scheme 'ftp:' is not supported"),
    ("file:///srv/mirror", "scheme 'file:' is not supported"),
    ("gopher://example.org/", "scheme 'gopher:' is not supported"),
    ("http:///no-host", "has no host"),
    ("http://", "has no host"),
    (ISSUE_MIRROR, "contains whitespace or control characters"),
    ("https://example.org/a\nb", "contains whitespace or control characters"),
    ("/nonexistent/mirror/folder", "mirror folder '/nonexistent/mirror/folder' does not exist"),
])
def test_other_mirrors_are_refused_at_plan_time_naming_the_key(mirror, expected):
    with pytest.raises(ConfigError, match=r"config\.yaml: data\.mirror: .*" + re.escape(expected)):
        validate_config(_config(mirror))


def test_fetch_refuses_a_bad_mirror_before_writing_anything(tmp_path):
    """The CLI (`replibench download --mirror`) checks the mirror too, not only the planner."""
    remote = RemoteFile("a.bin", "https://example.org/a.bin", "t/a.bin", 3, "sha256:" + "0" * 64)
    for mirror in ("ftp://example.org", "file:///etc", str(tmp_path / "missing")):
        with pytest.raises(DataError, match="mirror"):
            fetch(remote, tmp_path / "raw" / "a.bin", mirror=mirror, progress=False, retries=0)
    assert not (tmp_path / "raw").exists()


def _shell_templates() -> dict[str, str]:
    """rule name → its shell command template (the concatenated string literals after `shell:`)."""
    templates = {}
    for path in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"^rule (\w+):(.*?)(?=^rule |\Z)", text, flags=re.S | re.M):
            body = match.group(2)
            shell = re.search(r"^    shell:\n((?:        .*\n?)+)", body, flags=re.M)
            if shell:
                templates[match.group(1)] = "".join(ast.literal_eval(line.strip()) for line in
                                                    shell.group(1).splitlines() if line.strip())
    return templates


#: placeholders that are numbers Snakemake computes, never text from a user or a path
NUMERIC = {"threads", "resources.gpu"}


def test_every_value_pasted_into_a_shell_command_is_quoted():
    templates = _shell_templates()
    assert set(templates) >= {"download", "preprocess", "train", "evaluate", "report", "summary"}
    unquoted = {rule: field for rule, template in templates.items()
                for field in re.findall(r"\{([^{}]+)\}", template)
                if not field.endswith(":q") and field not in NUMERIC}
    assert unquoted == {}


def _write_config(workdir: Path, mirror: str) -> None:
    (workdir / "config.yaml").write_text(yaml.safe_dump(_config(mirror)))


@pytest.mark.workflow
def test_the_reported_injection_is_refused_before_any_job(ett_workdir):
    from spine.test_workflow import snakemake

    _write_config(ett_workdir, ISSUE_MIRROR)
    result = snakemake(ett_workdir, "--cores", "1", "data/raw/ett/ETTh1.csv", timeout=300)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "data.mirror" in output and "whitespace" in output, output[-2000:]
    assert not (ett_workdir / "marker").exists() and not (ROOT / "marker").exists()
    assert not (ett_workdir / "data").exists() and not (ett_workdir / "logs").exists()  # no job started


@pytest.mark.workflow
def test_an_injection_that_passes_validation_reaches_the_server_as_text(ett_workdir, file_server):
    """`$(touch${IFS}marker)` is a valid URL path; quoted, it is sent to the server, never run."""
    from spine.test_workflow import snakemake

    _write_config(ett_workdir, f"{file_server.url}/$(touch${{IFS}}marker)")
    result = snakemake(ett_workdir, "--cores", "1", "data/raw/ett/ETTh1.csv", timeout=300)
    assert result.returncode != 0
    assert not (ett_workdir / "marker").exists() and not (ROOT / "marker").exists()
    paths = {unquote(r["path"]) for r in file_server.behaviour.requests}
    assert paths == {"/$(touch${IFS}marker)/ett/ETTh1.csv"}
    log = (ett_workdir / "logs" / "download" / "ett" / "ETTh1.csv.log").read_text()
    assert "HTTP 404" in log and "data.mirror" in log
    assert list((ett_workdir / "data" / "raw" / "ett").glob("*")) == []  # no file, no .part


@pytest.mark.workflow
def test_a_folder_mirror_with_a_space_works_and_a_changed_raw_file_is_refused(ett_workdir, folder_mirror_with_space):
    """Item 1 (a folder with a space reaches the job intact) and item 4 (preprocess re-verifies)."""
    from spine.test_workflow import snakemake

    _write_config(ett_workdir, str(folder_mirror_with_space))
    first = snakemake(ett_workdir, "--cores", "1", "data/parquet/ett/etth1", timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    raw = ett_workdir / "data" / "raw" / "ett" / "ETTh1.csv"
    assert hashlib.sha256(raw.read_bytes()).hexdigest() == ETTH1_SHA256
    assert (ett_workdir / "data" / "parquet" / "ett" / "etth1" / "card.json").is_file()
    # the mirror is no job parameter (README): switching it reruns nothing
    switched = snakemake(ett_workdir, "-n", "--config", "data={mirror: 'http://127.0.0.1:9'}", "--", "data/parquet/ett/etth1",
                         timeout=300)
    assert switched.returncode == 0 and "Nothing to be done" in switched.stdout + switched.stderr, switched.stdout

    data = bytearray(raw.read_bytes())
    data[-3] = ord("9") if data[-3] != ord("9") else ord("8")  # one digit of the last row changed on disk
    raw.write_bytes(bytes(data))
    second = snakemake(ett_workdir, "--cores", "1", "data/parquet/ett/etth1", timeout=300)
    assert second.returncode != 0
    log = (ett_workdir / "logs" / "preprocess" / "ett" / "etth1.log").read_text()
    assert "ETTh1.csv: changed since it was downloaded" in log and f"sha256:{ETTH1_SHA256}" in log
    assert not (ett_workdir / "data" / "parquet" / "ett" / "etth1").exists()  # nothing half-written left
