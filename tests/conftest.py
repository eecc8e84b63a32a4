"""Shared fixtures: the real data in ../shared/data and a local HTTP mirror serving it.

The mirror is a real HTTP server on 127.0.0.1 (threaded, with HTTP Range support) whose
behaviour tests can change: fail the first requests with a status, cut a response short after N
bytes, or ignore Range headers — what real servers and networks do.
"""

from __future__ import annotations

import http.server
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$REPLIBENCH_SHARED_DATA`` or ``<repo>/../shared/data`` (or /work/shared/data for worktrees)."""
    candidates = [os.environ.get("REPLIBENCH_SHARED_DATA"), REPO_ROOT.parent / "shared" / "data",
                  Path("/work/shared/data")]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    pytest.skip("../shared/data is not available")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_data_dir()


@dataclass
class MirrorBehaviour:
    """What the test server does; tests mutate it between requests."""

    fail_status: int | None = None  # answer this status …
    fail_times: int = 0  # … for this many requests
    cut_after_bytes: int | None = None  # close the connection after sending this many body bytes (once)
    ignore_range: bool = False
    requests: list[dict] = field(default_factory=list)


class _MirrorHandler(http.server.BaseHTTPRequestHandler):
    root: Path
    behaviour: MirrorBehaviour
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        behaviour = self.behaviour
        behaviour.requests.append({"path": self.path, "range": self.headers.get("Range")})
        if behaviour.fail_times > 0:
            behaviour.fail_times -= 1
            self.send_response(behaviour.fail_status or 503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = (self.root / self.path.lstrip("/")).resolve()
        if self.root.resolve() not in path.parents or not path.is_file():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = path.read_bytes()
        start = 0
        range_header = self.headers.get("Range")
        if range_header and not behaviour.ignore_range:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if behaviour.cut_after_bytes is not None:
            cut, behaviour.cut_after_bytes = behaviour.cut_after_bytes, None
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@dataclass
class Mirror:
    url: str
    root: Path
    behaviour: MirrorBehaviour


def start_mirror(root: Path):
    behaviour = MirrorBehaviour()
    handler = type("Handler", (_MirrorHandler,), {"root": Path(root), "behaviour": behaviour})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, Mirror(url=f"http://127.0.0.1:{server.server_address[1]}", root=Path(root), behaviour=behaviour)


@pytest.fixture
def mirror(shared_data):
    """A fresh local HTTP mirror of ../shared/data (fresh behaviour per test)."""
    server, handle = start_mirror(shared_data)
    yield handle
    server.shutdown()
    server.server_close()


@pytest.fixture
def file_server(tmp_path):
    """A local HTTP server over a temporary folder the test fills itself."""
    root = tmp_path / "served"
    root.mkdir()
    server, handle = start_mirror(root)
    yield handle
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _one_thread():
    """Small models run faster on one thread on the 2-core machines (and results stay stable)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
