"""The app server answers only requests naming it (no DNS rebinding), times idle connections out,
bounds its threads and names the URL it really serves. Real sockets against a real server."""

from __future__ import annotations

import select
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pocketvec import app_server
from pocketvec.app_server import MAX_CONNECTIONS, ORT_ENTRY, host_allowed, make_server, serve_in_thread, server_urls

REPO_APP = Path(__file__).resolve().parents[2] / "sample_app"


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """The sample app's page with a stand-in for onnxruntime-web (its npm package is not needed here)."""
    folder = tmp_path / "app"
    folder.mkdir()
    shutil.copy(REPO_APP / "index.html", folder / "index.html")
    (folder / ORT_ENTRY).parent.mkdir(parents=True)
    (folder / ORT_ENTRY).write_text("export {};\n")
    return folder


@pytest.fixture
def serve(onnx_model: Path, app_dir: Path) -> Iterator:
    started = []

    def start(**kwargs) -> app_server.AppServer:
        server = make_server(onnx_model, port=0, app_dir=app_dir, **kwargs)
        serve_in_thread(server)
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def request(port: int, host: str | None, path: str = "/model.onnx", address: str = "127.0.0.1") -> tuple[int, bytes]:
    """(status, body) of a raw HTTP/1.0 GET with the given Host header (None: none at all)."""
    with socket.create_connection((address, port), timeout=10) as sock:
        head = f"GET {path} HTTP/1.0\r\n" + (f"Host: {host}\r\n" if host is not None else "") + "\r\n"
        sock.sendall(head.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def test_a_request_naming_another_host_gets_421(serve, onnx_model: Path) -> None:
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: it must not read the model."""
    port = serve().server_address[1]
    model = onnx_model.read_bytes()
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"LOCALHOST:{port}"):
        assert request(port, host) == (200, model), host
    for host in (f"evil.example:{port}", "evil.example", f"localhost:{port + 1}", "localhost", f"127.0.0.1:{port}x",
                 f"localhost.evil.example:{port}", f"192.168.1.5:{port}", "", None, f"[::1]:{port}:1"):
        status, body = request(port, host)
        assert status == 421 and model[:64] not in body, host
    assert request(port, f"evil.example:{port}", "/")[0] == 421


def test_which_hosts_name_a_server() -> None:
    assert host_allowed("192.168.1.5:8000", "0.0.0.0", 8000)  # a phone on the network, bound to every address
    assert host_allowed("localhost:8000", "0.0.0.0", 8000)
    assert not host_allowed("rebind.example:8000", "0.0.0.0", 8000)
    assert host_allowed("192.168.1.5:8000", "192.168.1.5", 8000)
    assert not host_allowed("10.0.0.7:8000", "192.168.1.5", 8000)
    assert host_allowed("[::1]:8000", "127.0.0.1", 8000) and host_allowed("127.0.0.2:8000", "127.0.0.1", 8000)
    assert host_allowed("example:80", "0.0.0.0", 80) is False and host_allowed("10.1.1.1", "0.0.0.0", 80)


def test_an_idle_connection_is_closed(serve) -> None:
    port = serve(idle_timeout_s=1.0).server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        start = time.monotonic()
        sock.sendall(b"GET / HT")  # half a request, then nothing: closed without an answer
        assert sock.recv(1024) == b""
        assert time.monotonic() - start < 5


def test_idle_connections_do_not_grow_threads(serve) -> None:
    """150 idle sockets kept 150 threads: now at most MAX_CONNECTIONS, the others are closed at once,
    and once the idle ones go the server answers again."""
    server = serve(idle_timeout_s=60.0)
    port = server.server_address[1]
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(150)]
    try:
        alive, deadline = set(idle), time.monotonic() + 30
        while len(alive) > MAX_CONNECTIONS and time.monotonic() < deadline:
            readable = select.select(list(alive), [], [], 0.5)[0]
            alive -= {sock for sock in readable if sock.recv(1) == b""}
        assert len(alive) == MAX_CONNECTIONS  # the others were closed at once
        assert not select.select(list(alive), [], [], 1.0)[0]  # these stay open, each with its thread
        assert threading.active_count() - before <= MAX_CONNECTIONS
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 10
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert request(port, f"localhost:{port}", "/")[0] == 200


def test_every_address_prints_the_address_a_phone_opens(serve) -> None:
    """`--host 0.0.0.0` printed http://localhost; now this machine's network address first (when it
    has one), then localhost; each answers."""
    server = serve(host="0.0.0.0")
    port = server.server_address[1]
    urls = server_urls(server)
    assert urls[-1] == f"http://localhost:{port}/"
    network = app_server._network_address()
    if network is not None:
        assert urls == [f"http://{network}:{port}/", f"http://localhost:{port}/"]
        assert app_server.server_url(server) != f"http://localhost:{port}/"
    for url in urls:
        host = url.split("/")[2]
        assert request(port, host, "/", address=host.rsplit(":", 1)[0].replace("localhost", "127.0.0.1"))[0] == 200


@pytest.mark.parametrize("port", [70000, -1, 10**400])
def test_the_library_refuses_a_port_out_of_range(onnx_model: Path, app_dir: Path, port: int) -> None:
    from pocketvec.errors import ConfigError

    with pytest.raises(ConfigError, match="port"):
        make_server(onnx_model, port=port, app_dir=app_dir)


def test_the_ocr_models_are_served_for_text_verification(serve) -> None:
    """/ocr/<name>/ serves the installed extra's files (a name the runtime does not know: the default models, as
    Python reads such a gallery); nothing else under it, nothing with --no-text."""
    from pocketvec.runtime.printed_text import text_available
    from pocketvec.runtime.text_reader import find_models

    if not text_available():
        pytest.skip("the pocketvec[text] extra (its OCR models) is missing")
    models = find_models("ppocrv5")
    port = serve().server_address[1]
    host = f"localhost:{port}"
    assert request(port, host, "/ocr/ppocrv5/keys.txt") == (200, models.keys.read_bytes())
    assert request(port, host, "/ocr/my-own-reader/det.onnx") == (200, models.det.read_bytes())
    for path in ("/ocr/ppocrv5/cls.onnx", "/ocr/ppocrv5/det.onnx/x", "/ocr/ppocrv5", "/ocr/..%2F..%2Fetc/passwd",
                 "/ocr/%2Ftmp/det.onnx"):
        assert request(port, host, path)[0] == 404, path
    plain = serve(text=False).server_address[1]
    assert request(plain, f"localhost:{plain}", "/ocr/ppocrv5/det.onnx")[0] == 404
