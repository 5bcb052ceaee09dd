"""The server's bounds on work and on connections, against a real uvicorn server on a loopback
socket: work whose client left stops, a stop does not wait for work in flight, half-sent requests
are closed, and a sample request's work is capped."""
import contextlib
import json
import socket
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
from fastapi.testclient import TestClient  # noqa: E402

from genlab.serve import create_app  # noqa: E402
from genlab.serve.app import MAX_SAMPLE_WORK, make_server  # noqa: E402

LONG = {"n": 16, "steps": 1000}   # 16,000 network passes in 1,000 steps: far longer than any wait here


@contextlib.contextmanager
def running(app, **timeouts):
    """``app`` served by :func:`make_server` on a free loopback port, in a thread."""
    server = make_server(app, **timeouts)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    try:
        yield server, thread, listener.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


def connect(port: int, data: bytes = b"") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    return s


def post(path: str, body: dict) -> bytes:
    content = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(content)}\r\n\r\n").encode() + content


def answer(s: socket.socket, seconds: float = 5) -> bytes:
    """What the server sends until it closes the connection (or ``seconds`` pass)."""
    s.settimeout(seconds)
    got = b""
    with contextlib.suppress(socket.timeout, ConnectionError):
        while chunk := s.recv(65536):
            got += chunk
            if b"\r\n\r\n" in got and b"connection: close" not in got.lower():
                head, _, body = got.partition(b"\r\n\r\n")
                length = [int(v) for k, _, v in (line.partition(b":") for line in head.split(b"\r\n"))
                          if k.strip().lower() == b"content-length"]
                if length and len(body) >= length[0]:
                    break
    return got


def wait_for(condition, seconds: float = 5) -> float:
    """Seconds until ``condition()`` held (fails after ``seconds``)."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, "waited too long"
        time.sleep(0.01)
    return time.monotonic() - start


@pytest.fixture(scope="module")
def long_run(diffusion_runs):
    return diffusion_runs / "long"


def test_work_whose_client_left_stops(long_run):
    app = create_app(long_run)
    explorer = app.state.explorer
    with running(app) as (_, _, port):
        client = connect(port, post("/api/sample", LONG))
        wait_for(lambda: explorer._jobs)   # at work
        time.sleep(0.3)
        client.close()
        assert wait_for(lambda: explorer.stopped == 1) < 2
        started = time.monotonic()
        reply = answer(connect(port, post("/api/sample", {"n": 1, "steps": 1})))
        assert reply.startswith(b"HTTP/1.1 200") and time.monotonic() - started < 3   # the model is free


def test_a_stop_does_not_wait_for_work_in_flight(long_run):
    app = create_app(long_run)
    with running(app) as (server, thread, port):
        client = connect(port, post("/api/sample", LONG))
        wait_for(lambda: app.state.explorer._jobs)
        time.sleep(0.3)
        started = time.monotonic()
        server.should_exit = True   # what SIGTERM and Ctrl-C do
        thread.join(10)
        assert not thread.is_alive() and time.monotonic() - started < 3
        reply = answer(client)
        assert reply.startswith(b"HTTP/1.1 503") and b"the server is stopping" in reply


def test_half_sent_requests_are_closed(long_run):
    with running(create_app(long_run), header_seconds=0.4, body_seconds=0.4) as (_, _, port):
        started = time.monotonic()
        silent = connect(port)
        half_head = connect(port, b"GET /api/info HTTP/1.1\r\nHost: local")
        half_body = connect(port, b"POST /api/decode HTTP/1.1\r\nHost: localhost\r\n"
                                  b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"z\": [")
        whole = connect(port, b"GET /api/info HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert answer(whole, 2).startswith(b"HTTP/1.1 200")   # a whole request is served
        # a kept-alive connection's next request has the same deadline, from the last response
        whole.sendall(b"GET /api/stats HTTP/1.1\r\nHost: local")
        assert answer(silent) == b""
        assert answer(half_head).startswith(b"HTTP/1.1 408")
        assert answer(half_body).startswith(b"HTTP/1.1 408")
        assert answer(whole).startswith(b"HTTP/1.1 408")
        assert time.monotonic() - started < 3
        # work that outlasts the deadlines is not cut off: they are for the request's arrival only
        started = time.monotonic()
        reply = answer(connect(port, post("/api/sample", {"n": 1, "steps": 1000})), 30)
        assert reply.startswith(b"HTTP/1.1 200") and time.monotonic() - started > 0.4, reply[:200]


def test_sample_work_is_capped_and_timed(diffusion_runs):
    def refused(response, status, words):
        assert response.status_code == status, (response.status_code, response.text)
        assert words in response.json()["detail"], response.json()

    c = TestClient(create_app(diffusion_runs / "long", work_seconds=0.2))
    assert c.get("/api/info").json()["limits"]["sample_work"] == MAX_SAMPLE_WORK
    refused(c.post("/api/sample", json={"n": 256, "steps": 1000}), 422, "n x steps")
    refused(c.post("/api/sample", json={"n": 256, "steps": MAX_SAMPLE_WORK // 256 + 1}), 422, "fewer samples or steps")
    started = time.monotonic()
    refused(c.post("/api/sample", json=LONG), 503, "limit of 0.2 s")
    assert time.monotonic() - started < 2
    assert c.post("/api/sample", json={"n": 2, "steps": 2}).status_code == 200   # still serving
