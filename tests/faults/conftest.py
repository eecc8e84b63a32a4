"""Fixtures of the I/O fault suite (tests/faults/test_io_*.py): small local HTTP servers that
misbehave on purpose, and a Snakemake work folder restricted to ETTh1's download/preprocess.

The general mirror (`mirror`, `file_server`) lives in tests/conftest.py; these add what it cannot do.
"""

from __future__ import annotations

import http.server
import shutil
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # the spine's workflow helpers (make_workdir, snakemake)
    sys.path.insert(0, str(TESTS))

#: The smallest config that plans ETTh1: the fault tests ask only for its download/preprocess targets.
ETT_ONLY = {
    "preset": "smoke",
    "families": ["ett"],
    "data": {"mirror": None, "workers": 1},
    "ett": {"seeds": [2021],
            "runs": [{"task": "forecast", "models": ["naive"], "datasets": ["etth1"], "horizons": [96]}]},
}


@dataclass
class Endless:
    """A server that answers every GET with 200 and streams ``chunk`` until the client goes away."""

    url: str
    chunked: bool
    requests: int = 0  # GETs received
    sent: list[int] = field(default_factory=list)  # bytes sent per request (appended when it ends)


def _endless_handler(state: Endless):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if state.chunked else "HTTP/1.0"

        def log_message(self, *_args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            state.requests += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if state.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()  # no Content-Length: the body ends when the server closes (it never does)
            chunk, sent = b"x" * 65536, 0
            try:
                while sent < 1 << 30:  # 1 GiB: a safety stop for the test machine, never reached
                    if state.chunked:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    else:
                        self.wfile.write(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                state.sent.append(sent)
                self.close_connection = True

    return Handler


@pytest.fixture(params=[False, True], ids=["close-delimited", "chunked"])
def endless_server(request) -> Iterator[Endless]:
    """An HTTP server on 127.0.0.1 streaming forever without Content-Length (both framings)."""
    state = Endless(url="", chunked=request.param)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _endless_handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def ett_workdir(tmp_path) -> Path:
    """A Snakemake work folder (config, references, lock file) planning ETTh1 only."""
    from spine.test_workflow import make_workdir

    return make_workdir(tmp_path, ETT_ONLY)


@pytest.fixture
def folder_mirror_with_space(tmp_path, shared_data) -> Path:
    """A folder mirror whose path holds a space: ``<tmp>/my mirror/ett/ETTh1.csv`` (the real file)."""
    root = tmp_path / "my mirror"
    (root / "ett").mkdir(parents=True)
    shutil.copyfile(shared_data / "ett" / "ETTh1.csv", root / "ett" / "ETTh1.csv")
    return root
