"""Serve the sample app (sample_app/) on localhost with one model and one gallery.

Only the app's own files are served: the page, its scripts, onnxruntime-web's wasm runtime from
sample_app/node_modules (no CDN), the model as /model.onnx, the gallery as /gallery.pvg, and (unless told
not to) the OCR models of the installed `pocketvec[text]` extra as /ocr/<name>/det.onnx, rec.onnx and
keys.txt, with which the page verifies a gallery that keeps its items' printed text.
Cross-origin-isolation headers let onnxruntime-web use wasm threads.

A page on another origin must not read the model or the gallery: a DNS-rebinding page reaches the
server under its own host name, so only requests naming localhost or an IP address (the bound one,
or any when bound to every address) with the served port are answered; others get 421. Idle
connections time out and at most MAX_CONNECTIONS are served at once (one thread each).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import warnings
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pocketvec.errors import ConfigError, ModelFileError, PocketvecWarning

IDLE_TIMEOUT_S = 15.0  # a connection that sends nothing for this long is closed
MAX_CONNECTIONS = 32  # connections served at once, one thread each; more are closed at once
WILDCARDS = ("0.0.0.0", "::", "")

PACKAGED_APP_DIR = Path(__file__).resolve().parent / "sample_app"  # in a wheel (see setup.py)
REPOSITORY_APP_DIR = Path(__file__).resolve().parents[2] / "sample_app"  # in a checkout or editable install
DEFAULT_APP_DIR = PACKAGED_APP_DIR if (PACKAGED_APP_DIR / "index.html").is_file() else REPOSITORY_APP_DIR
ORT_DIST = Path("node_modules/onnxruntime-web/dist")
ORT_ENTRY = ORT_DIST / "ort.wasm.min.mjs"
SERVED_FOLDERS = (Path("src"), ORT_DIST)  # besides the top-level files below
TOP_FILES = ("index.html", "style.css", "sw.js")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8", ".wasm": "application/wasm", ".json": "application/json",
    ".onnx": "application/octet-stream", ".pvg": "application/octet-stream", ".txt": "text/plain; charset=utf-8",
}


OCR_FOLDER = "ocr"  # /ocr/<name>/<file>: the OCR models a gallery's `text_reader` names
OCR_FILES = ("det.onnx", "rec.onnx", "keys.txt")


def ocr_file(name: str, file: str) -> Path | None:
    """The file `file` of the OCR models that read a gallery whose `text_reader` is `name`: those models when
    the runtime knows the name, else the default ones (as `printed_text.text_verification`); None when they are
    not installed (a recogniser whose keys are in its metadata has no keys.txt)."""
    from pocketvec.runtime.text_reader import DEFAULT_MODELS, PACKAGES, TextReaderError, find_models

    if file not in OCR_FILES:
        return None
    try:
        models = find_models(name if name in PACKAGES else DEFAULT_MODELS)  # never a folder named by a URL
    except TextReaderError:
        return None
    return dict(zip(OCR_FILES, (models.det, models.rec, models.keys), strict=True))[file]


@dataclass(frozen=True)
class AppFiles:
    app_dir: Path
    model: Path
    gallery: Path | None = None
    text: bool = True  # serve the OCR models (text verification)

    def resolve(self, url_path: str) -> Path | None:
        """The file behind a URL path, or None when it is not part of the app."""
        rel = unquote(url_path).lstrip("/") or "index.html"
        if rel == "model.onnx":
            return self.model
        if rel == "gallery.pvg":
            return self.gallery
        parts = rel.split("/")
        if parts[0] == OCR_FOLDER:
            return ocr_file(parts[1], parts[2]) if self.text and len(parts) == 3 else None
        candidate = Path(rel)
        if ".." in candidate.parts:
            return None
        if rel in TOP_FILES or any(candidate.parent == folder for folder in SERVED_FOLDERS):
            path = self.app_dir / candidate
            return path if path.is_file() else None
        return None


def check_app_dir(app_dir: Path) -> Path:
    """The app folder with its npm packages installed, or a clear error saying how to get them."""
    if not (app_dir / "index.html").is_file():
        raise ConfigError(f"{app_dir}: not the pocketvec sample app (no index.html); pass --app-dir")
    if not (app_dir / ORT_ENTRY).is_file():
        raise ConfigError(f"{app_dir}: onnxruntime-web is not installed (no {ORT_ENTRY}); "
                          "run `bash scripts/setup.sh` or `npm ci` in sample_app")
    return app_dir


def check_model_and_gallery(model: Path, gallery: Path | None, text: bool = True) -> str:
    """Open the model (it must carry pocketvec metadata) and refuse a gallery of another model; a gallery that
    keeps its items' printed text without the OCR models to serve gets one warning line."""
    from pocketvec.runtime.engines import open_engine
    from pocketvec.runtime.enroll import open_gallery

    if model.suffix.lower() != ".onnx":
        raise ModelFileError(f"{model}: the browser app runs ONNX models (.onnx); got {model.suffix or 'no suffix'}")
    engine = open_engine(model)
    if gallery is not None:
        opened = open_gallery(engine, gallery)  # another export of the same run: one warning line, as `match` gives
        if opened.reads_text and text and ocr_file(opened.text_reader or "", "det.onnx") is None:
            warnings.warn(PocketvecWarning(
                f"{gallery} keeps its items' printed text but the OCR models {opened.text_reader!r} are not "
                "installed: the page matches without text verification (pip install 'pocketvec[text]')"), stacklevel=2)
    return engine.metadata.embedding_space_id


def host_allowed(header: str | None, bound: str, port: int) -> bool:
    """Whether a request's Host header names this server: localhost or an IP address (the bound one, or
    any when bound to every address; any loopback one when bound to loopback), with the served port. A
    host name is what a DNS-rebinding page would send."""
    try:
        parts = urlsplit(f"//{header or ''}")
        name, named_port = parts.hostname, parts.port or 80
    except ValueError:  # a port that is not a number, or out of range
        return False
    if not name or named_port != port:
        return False
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return bound in WILDCARDS or address == ipaddress.ip_address(bound) or (
        address.is_loopback and ipaddress.ip_address(bound).is_loopback)


class _Handler(BaseHTTPRequestHandler):
    files: AppFiles  # set on the subclass made by make_server
    timeout = IDLE_TIMEOUT_S  # socket timeout: an idle connection ends instead of keeping its thread

    def do_GET(self) -> None:  # http.server's naming
        self._send(head_only=False)

    def do_HEAD(self) -> None:
        self._send(head_only=True)

    def _send(self, head_only: bool) -> None:
        bound, port = self.server.server_address[:2]
        if not host_allowed(self.headers.get("Host"), bound, port):
            self.send_error(HTTPStatus.MISDIRECTED_REQUEST, "this server answers only to localhost or its address")
            return
        try:
            path = self.files.resolve(urlsplit(self.path).path)
            found = path is not None and path.is_file()
        except (ValueError, OSError):  # a path the OS refuses: not part of the app either
            found = False
        if not found:
            self.send_error(HTTPStatus.NOT_FOUND, "not part of the pocketvec app")
            return
        body = path.read_bytes()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream"))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet: the CLI prints the URL
        pass


class AppServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with at most MAX_CONNECTIONS connections (threads) at once: one more is
    closed as soon as it is accepted; a slot frees when a connection ends or idles out."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # the thread did not start: its slot is free again
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def make_server(model: str | Path, gallery: str | Path | None = None, port: int = 8000, host: str = "127.0.0.1",
                app_dir: str | Path | None = None, idle_timeout_s: float = IDLE_TIMEOUT_S,
                text: bool = True) -> AppServer:
    """A server for the app (port 0 picks a free port); checks the port and every file first. `text`: serve the
    installed OCR models, with which the page verifies a gallery that keeps printed text."""
    from pocketvec.ranges import RANGES

    RANGES["port"].check("port", port)
    model = Path(model)
    gallery = Path(gallery) if gallery is not None else None
    files = AppFiles(check_app_dir(Path(app_dir) if app_dir else DEFAULT_APP_DIR), model, gallery, text)
    check_model_and_gallery(model, gallery, text)
    handler = type("AppHandler", (_Handler,), {"files": files, "timeout": idle_timeout_s})
    try:
        return AppServer((host, port), handler)
    except OSError as e:
        raise ConfigError(f"cannot listen on {host}:{port} ({e.strerror}); pick another --port") from e


def server_urls(server: ThreadingHTTPServer) -> list[str]:
    """The URLs the server answers at, the one to open first: localhost for a loopback address; for every
    address (0.0.0.0), this machine's network address (what a phone opens) and localhost; else the address."""
    host, port = server.server_address[:2]
    if host in WILDCARDS:
        hosts = [name for name in (_network_address(), "localhost") if name]
    else:
        hosts = ["localhost" if ipaddress.ip_address(host).is_loopback else host]
    return [f"http://{name}:{port}/" for name in hosts]


def server_url(server: ThreadingHTTPServer) -> str:
    return server_urls(server)[0]


def _network_address() -> str | None:
    """This machine's address on its network (the one a default route leaves from), or None offline."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # UDP: no packet is sent
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if ipaddress.ip_address(address).is_loopback or address in WILDCARDS else address


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="pocketvec-app", daemon=True)
    thread.start()
    return thread
