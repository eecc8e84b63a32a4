"""Snakemake's working-folder lock (already held; kept held): a second run that would write the
same files while a first one runs is refused before it starts a job, and a lock left by a run
killed with SIGKILL is reported with the way out (`--unlock`); after it, the run completes from
the partial download without a stale or half-written file left."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from .conftest import ETT_ONLY

ROOT = Path(__file__).resolve().parents[2]
TARGET = "data/raw/ett/ETTh1.csv"


class _Stalling:
    """Serves <root>/ett/ETTh1.csv; a full (non-Range) GET sends the first 100 kB, then waits for
    ``release`` before sending the rest. Range requests (resumes) are served at once."""

    def __init__(self, content: bytes) -> None:
        self.content, self.release, self.started = content, threading.Event(), threading.Event()
        self.ranges: list[str | None] = []

    def handler(self):
        state = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path != "/ett/ETTh1.csv":
                    self.send_error(404)
                    return
                header = self.headers.get("Range")
                state.ranges.append(header)
                start = int(header.removeprefix("bytes=").split("-")[0]) if header else 0
                body = state.content[start:]
                self.send_response(206 if header else 200)
                if header:
                    self.send_header("Content-Range", f"bytes {start}-{len(state.content) - 1}/{len(state.content)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if header is None:
                        self.wfile.write(body[:100_000])
                        self.wfile.flush()
                        state.started.set()
                        state.release.wait(120)
                        body = body[100_000:]
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler


@pytest.fixture
def stalling_mirror(shared_data):
    state = _Stalling((shared_data / "ett" / "ETTh1.csv").read_bytes())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), state.handler())
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


def _start(workdir: Path, *args: str) -> subprocess.Popen:
    """A Snakemake run in its own process group (so the test can kill it and its job together)."""
    return subprocess.Popen([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
                             "--cores", "1", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    from spine.test_workflow import snakemake

    return snakemake(workdir, "--cores", "1", *args, timeout=300)


def _workdir(ett_workdir: Path, mirror_url: str) -> Path:
    (ett_workdir / "config.yaml").write_text(yaml.safe_dump({**ETT_ONLY, "data": {"mirror": mirror_url, "workers": 1}}))
    return ett_workdir


def _wait_for(event: threading.Event, process: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not event.wait(0.2):
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "the first run never started its download"


@pytest.mark.workflow
def test_a_second_run_is_refused_while_the_first_holds_the_lock(ett_workdir, stalling_mirror):
    workdir = _workdir(ett_workdir, stalling_mirror.url)
    first = _start(workdir, TARGET)
    try:
        _wait_for(stalling_mirror.started, first)
        second = _run(workdir, "data/parquet/ett/etth1")  # needs the file the first run is writing
        output = second.stdout + second.stderr
        assert second.returncode != 0 and "Directory cannot be locked" in output, output[-3000:]
        assert not (workdir / "data" / "parquet").exists() and not (workdir / "logs" / "preprocess").exists()
        assert len(stalling_mirror.ranges) == 1  # the second run started no download of its own
    finally:
        stalling_mirror.release.set()
        out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out[-3000:]
    assert sorted(p.name for p in (workdir / "data" / "raw" / "ett").iterdir()) == ["ETTh1.csv"]
    assert list((workdir / ".snakemake" / "locks").glob("*")) == []  # released on exit


@pytest.mark.workflow
def test_a_lock_left_by_a_killed_run_is_reported_then_unlock_resumes_cleanly(ett_workdir, stalling_mirror):
    workdir = _workdir(ett_workdir, stalling_mirror.url)
    first = _start(workdir, TARGET)
    try:
        _wait_for(stalling_mirror.started, first)
        time.sleep(1.0)  # let the job write the first bytes of its .part file
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # this test's own Snakemake and its job, nothing else
        first.communicate(timeout=60)
    raw = workdir / "data" / "raw" / "ett"
    assert not (raw / "ETTh1.csv").exists()  # never a file that looks complete
    part = raw / "ETTh1.csv.part"
    partial = part.stat().st_size if part.exists() else 0
    assert stalling_mirror.content.startswith(part.read_bytes() if partial else b"")

    refused = _run(workdir, TARGET)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "Directory cannot be locked" in output and "--unlock" in output
    assert not (raw / "ETTh1.csv").exists()

    assert _run(workdir, "--unlock").returncode == 0
    stalling_mirror.release.set()
    done = _run(workdir, TARGET)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert (raw / "ETTh1.csv").read_bytes() == stalling_mirror.content
    assert sorted(p.name for p in raw.iterdir()) == ["ETTh1.csv"]  # no .part, no .bad-*
    assert stalling_mirror.ranges[-1] == (f"bytes={partial}-" if partial else None)  # resumed from the .part
