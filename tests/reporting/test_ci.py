"""What CI runs around the leaderboard: the GitHub workflow, the publish script, .ci/run, git."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from replibench.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "leaderboard.yml"


@pytest.fixture(scope="module")
def workflow():
    document = yaml.safe_load(WORKFLOW.read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads the key `on` as true
    return document


def steps(workflow) -> list[dict]:
    return workflow["jobs"]["leaderboard"]["steps"]


def step(workflow, uses: str | None = None, runs: str | None = None) -> dict:
    for candidate in steps(workflow):
        if (uses and candidate.get("uses", "").startswith(uses)) or (runs and runs in candidate.get("run", "")):
            return candidate
    raise AssertionError(f"no step uses {uses!r} / runs {runs!r}")


def test_workflow_runs_the_smoke_pipeline_on_main_and_pull_requests(workflow):
    assert workflow["on"]["push"]["branches"] == ["main"] and "pull_request" in workflow["on"]
    order = [s.get("uses", s.get("run", "")) for s in steps(workflow)]
    position = {key: next(i for i, text in enumerate(order) if key in text)
                for key in ("tools/install.sh", "snakemake --cores", "snakemake --report", "publish-leaderboard.sh",
                            "actions/upload-artifact", "replibench compare", "peter-evans/create-pull-request")}
    assert list(position.values()) == sorted(position.values()), position
    artifact = step(workflow, uses="actions/upload-artifact")["with"]["path"]
    assert "leaderboard/" in artifact and "snakemake-report.zip" in artifact


def test_main_gets_a_pull_request_never_a_direct_commit(workflow):
    opener = step(workflow, uses="peter-evans/create-pull-request")
    assert opener["if"] == "steps.changed.outputs.changed == 'true'"
    assert opener["with"]["add-paths"] == "leaderboard" and opener["with"]["branch"] != "main"
    assert "refs/heads/main" in step(workflow, runs="leaderboard/leaderboard.md")["if"]
    for candidate in steps(workflow):
        assert "git push" not in candidate.get("run", "") and "git commit" not in candidate.get("run", "")


def test_pull_requests_get_the_differences_as_a_comment_and_a_gate(workflow):
    compare = step(workflow, runs="replibench compare")
    assert "format('origin/{0}', github.base_ref)" in compare["env"]["BASELINE_REF"]
    comment = step(workflow, uses="actions/github-script")
    assert "github.event_name == 'pull_request'" in comment["if"] and "metric-diff.md" in comment["with"]["script"]
    gate = step(workflow, runs="exit 1")
    assert "steps.compare.outputs.status != '0'" in gate["if"] and "metrics-change-expected" in gate["if"]


def test_the_commands_the_workflow_calls_exist(workflow):
    script = step(workflow, runs="replibench compare")["run"]
    command = script[script.index("replibench compare"):].split("||")[0].replace("\\\n", " ")
    arguments = shlex.split(command)[1:]
    parsed = build_parser().parse_args([a.replace("$RUNNER_TEMP", "/tmp") for a in arguments])
    assert parsed.command == "compare" and str(parsed.candidate) == "results/results.parquet"
    assert (ROOT / "tools" / "install.sh").is_file() and (ROOT / "tools" / "publish-leaderboard.sh").is_file()


def test_publish_copies_the_committed_part_and_drops_stale_figures(tmp_path):
    results = tmp_path / "results"
    (results / "plots" / "ett").mkdir(parents=True)
    for name in ("leaderboard.md", "leaderboard.html", "results.parquet", "plots/ett/paper_vs_ours.png"):
        (results / name).write_text(name)
    (results / "plots" / ".snakemake_timestamp").write_text("")  # Snakemake's marker of a directory output
    (results / "ett" / "run").mkdir(parents=True)
    (results / "ett" / "run" / "metrics.json").write_text("{}")
    out = tmp_path / "repo" / "leaderboard"
    (out / "plots" / "old").mkdir(parents=True)
    (out / "plots" / "old" / "gone.png").write_text("stale")
    (out / "leaderboard.html.dvc").write_text("outs: []")  # the DVC pointer of the HTML page stays
    script = ROOT / "tools" / "publish-leaderboard.sh"
    done = subprocess.run(["bash", str(script), str(results), str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "leaderboard.html", "leaderboard.html.dvc", "leaderboard.md", "plots/ett/paper_vs_ours.png", "results.parquet"]
    assert (out / "leaderboard.html.dvc").read_text() == "outs: []"
    assert [p.name for p in out.parent.iterdir()] == ["leaderboard"]  # no staging folder left behind
    (results / "results.parquet").unlink()
    failed = subprocess.run(["bash", str(script), str(results), str(out)], capture_output=True, text=True)
    assert failed.returncode == 1 and "results.parquet is missing: run the workflow" in failed.stderr
    assert (out / "results.parquet").is_file()  # a failed publish leaves the previous one intact


def test_ci_requires_the_browser_test_and_installs_chromium():
    text = (ROOT / ".ci" / "run").read_text()
    assert "export REPLIBENCH_REQUIRE_BROWSER=1" in text
    assert "apt-get install -y -q --no-install-recommends chromium chromium-driver" in text


def test_git_keeps_leaderboard_and_ignores_results():
    ignored = subprocess.run(["git", "check-ignore", "-q", "results/results.parquet"], cwd=ROOT)
    kept = subprocess.run(["git", "check-ignore", "-q", "leaderboard/results.parquet"], cwd=ROOT)
    if ignored.returncode == 128:
        pytest.skip("not a git checkout")
    assert ignored.returncode == 0 and kept.returncode == 1
