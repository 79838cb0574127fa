"""Issue 20 item 7: connection caps per client and in all, slow bodies bounded by a minimal
rate, and the open-file limit raised at start-up.  Servers on 127.0.0.1 only."""
from __future__ import annotations

import logging
import resource
import socket
import time

import httpx

from rag.api.app import create_app
from rag.api.connections import ConnectionTracker, check_file_limit
from rag.api.server_options import protocol_with_header_timeout
from rag.settings import Settings
from support import serve


class Fake:
    def __init__(self, idle: bool = True):
        self.is_idle, self.dropped = idle, False

    def idle(self) -> bool:
        return self.is_idle

    def drop(self) -> None:
        self.dropped = True


def test_a_client_over_its_cap_loses_its_oldest_idle_connection():
    tracker = ConnectionTracker(per_client=2, total=100)
    a, b, c = Fake(), Fake(idle=False), Fake()
    assert tracker.admit("10.0.0.1", a) and tracker.admit("10.0.0.1", b)
    assert tracker.admit("10.0.0.1", c) and a.dropped and not b.dropped  # a was idle: closed for c
    busy = Fake(idle=False)
    c.is_idle = False
    assert not tracker.admit("10.0.0.1", busy)  # both running requests: the new one is refused
    assert tracker.admit("10.0.0.2", Fake())  # another client is not affected
    assert tracker.stats()["open"] == 3 and tracker.stats()["refused"] == 1 and tracker.stats()["evicted"] == 1


def test_the_total_cap_closes_an_idle_connection_of_the_busiest_client_and_proxies_are_exempt():
    tracker = ConnectionTracker(per_client=3, total=4, exempt=["10.9.0.0/16"])
    first = [Fake() for _ in range(3)]
    for f in first:
        assert tracker.admit("10.0.0.1", f)
    other = Fake()
    assert tracker.admit("10.0.0.2", other)
    assert tracker.admit("10.0.0.3", Fake()) and first[0].dropped and not other.dropped
    proxied = [Fake(idle=False) for _ in range(6)]
    assert all(tracker.admit("10.9.1.1", p) for p in proxied[:2])  # a trusted proxy: no per-client cap
    assert tracker.stats()["open"] == 4  # the total cap: each took the slot of an idle connection
    tracker.release(proxied[0])
    assert tracker.stats()["open"] == 3


def _partial_headers(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    return sock


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(0.05)
    try:
        return sock.recv(100) == b""
    except (TimeoutError, BlockingIOError):
        return False
    except ConnectionResetError:
        return True


def test_idle_connections_over_the_cap_are_closed_and_probes_get_in(fake_pipeline):
    settings = Settings(**{**fake_pipeline.settings.model_dump(), "rate_limit": "", "log_json": False})
    tracker = ConnectionTracker(per_client=8, total=1000)
    with serve(create_app(settings, fake_pipeline, warm_up=False), http=protocol_with_header_timeout(30, tracker)) as url:
        port = int(url.rsplit(":", 1)[1])
        socks = [_partial_headers(port) for _ in range(40)]
        time.sleep(0.3)
        # Each probe gets in by evicting an idle connection, not by waiting for one to time out
        # (30 s of header deadline, past the probe's own 5 s): counted, not timed.
        for _ in range(10):
            assert httpx.get(url + "/healthz", timeout=5).status_code == 200
        open_now = [s for s in socks if not _closed(s)]
        assert len(open_now) <= 8
        assert tracker.stats()["evicted"] >= 32
        for s in socks:
            s.close()


def test_a_client_whose_connections_all_run_requests_gets_503(fake_pipeline):
    settings = Settings(**{**fake_pipeline.settings.model_dump(), "rate_limit": "", "log_json": False})
    tracker = ConnectionTracker(per_client=3, total=1000)
    with serve(create_app(settings, fake_pipeline, warm_up=False), http=protocol_with_header_timeout(30, tracker)) as url:
        port = int(url.rsplit(":", 1)[1])
        slow = []
        for _ in range(3):  # slow bodies: the request runs while the body trickles
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
            slow.append(sock)
        time.sleep(0.3)
        r = httpx.get(url + "/healthz", timeout=5)
        assert r.status_code == 503 and r.headers["retry-after"] and "RAG_MAX_CONNECTIONS_PER_CLIENT" in r.text
        for s in slow:
            s.close()
        time.sleep(0.3)
        assert httpx.get(url + "/healthz", timeout=5).status_code == 200


def test_a_slow_declared_body_is_cut_at_the_minimal_rate(fake_pipeline):
    idle_timeout = 1.0
    settings = Settings(**{**fake_pipeline.settings.model_dump(), "rate_limit": "", "log_json": False, "body_idle_timeout_s": idle_timeout,
                           "body_total_timeout_s": 300.0})
    with serve(create_app(settings, fake_pipeline, warm_up=False)) as url:
        sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        sock.sendall(b"POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        started = time.monotonic()
        sock.settimeout(10)
        answer = b""
        while time.monotonic() - started < 8:  # one byte every 0.5 s: never idle for 1 s, but far under 64 KiB/s
            try:
                sock.sendall(b" ")
            except OSError:
                break
            try:
                sock.settimeout(0.5)
                chunk = sock.recv(1000)
                if chunk:
                    answer += chunk
                    break
            except TimeoutError:
                pass
        sock.close()
        # Cut by the minimal rate within a few idle timeouts (the byte every 0.5 s keeps it from
        # ever being idle), long before the 8 s the client would go on for.
        assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - started < 4 * idle_timeout


def test_the_open_file_limit_is_raised_to_the_hard_limit(caplog):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        with caplog.at_level(logging.INFO, logger="rag.api.connections"):
            now = check_file_limit(minimum=hard + 1 if hard != resource.RLIM_INFINITY else 1 << 30)
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard and now == hard
        assert "raised the open-file limit from 256" in caplog.text and "LimitNOFILE" in caplog.text  # under the minimum: warned
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
