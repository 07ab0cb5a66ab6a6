"""``certdesk serve`` over HTTP: every error path answers a short status, never a traceback;
limits hold against oversized, malformed and slow requests and too many connections;
keep-alive works; one access-log line per request, without bodies; files renamed in while
it serves are always read whole; SIGTERM stops it.

One home with one certificate; one service with small limits (a 1-second timeout, eight
connections) so that the slow-client tests take a second each.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from serve_support import (
    Reply,
    Served,
    free_port,
    http_request,
    ocsp_request,
    ocsp_status,
    publish_on,
    request_certificates,
)

from conftest import run_certdesk

TIMEOUT = 1.0
MAX_CONNECTIONS = 8


@dataclass(frozen=True)
class Service:
    home: Path
    served: Served
    cert: Path
    issuer: Path

    @property
    def port(self) -> int:
        return self.served.port

    def request(self) -> bytes:
        return ocsp_request(self.issuer, "-cert", str(self.cert))

    def response_file(self) -> Path:
        serial = x509.load_pem_x509_certificate(self.cert.read_bytes()).serial_number
        return self.home / "outbox" / "ocsp" / f"{serial:x}.der"


@pytest.fixture(scope="module")
def service(ca_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    home = tmp_path_factory.mktemp("serve-http") / "home"
    shutil.copytree(ca_template, home)
    port = free_port()
    publish_on(home, port)
    receipt = request_certificates(home, range(1))[0]
    cert = home / "outbox" / "certs" / receipt["certificato"]
    args = ("--timeout", str(TIMEOUT), "--max-connections", str(MAX_CONNECTIONS))
    with Served(home, port, args) as served:
        yield Service(home, served, cert, home / "outbox" / "ca" / "issuing.pem")


def _post(service: Service, body: bytes, **headers: str) -> Reply:
    return http_request(service.port, "POST", "/ocsp", body, **headers)


def _ocsp_post(service: Service, body: bytes) -> str:
    reply = http_request(service.port, "POST", "/ocsp", body,
                         Content_Type="application/ocsp-request")  # fmt: skip
    assert reply.status == 200 and reply.headers["Content-Type"] == "application/ocsp-response"
    return ocsp_status(reply.body)


def _raw(port: int, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send ``data`` on a new connection; everything the server says until it closes (or
    ``wait`` seconds pass)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        chunks = []
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


# -- statuses ----------------------------------------------------------------------------------
def test_an_unknown_path_is_404(service: Service) -> None:
    for path in ("/", "/ca/", "/ca/issuing.key.pem", "/../state/passphrase", "/ocspx"):
        reply = http_request(service.port, "GET", path)
        assert reply.status == 404, path
        assert reply.body == b"not found\n"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("DELETE", "/ocsp", "GET, HEAD, POST"), ("PUT", "/ocsp", "GET, HEAD, POST"),
     ("POST", "/ca/issuing.crl", "GET, HEAD"), ("POST", "/health", "GET, HEAD"),
     ("POST", "/ocsp/MAA=", "GET, HEAD"), ("PATCH", "/ca/root.cer", "GET, HEAD")],
)  # fmt: skip
def test_a_wrong_method_is_405_with_allow(
    service: Service, method: str, path: str, allowed: str
) -> None:
    reply = http_request(service.port, method, path, b"x" if method != "DELETE" else None)
    assert reply.status == 405 and reply.headers["Allow"] == allowed


def test_a_post_of_another_content_type_is_415(service: Service) -> None:
    for content_type in ("application/octet-stream", "text/plain"):
        reply = _post(service, service.request(), Content_Type=content_type)
        assert reply.status == 415
    reply = http_request(service.port, "POST", "/ocsp", service.request())  # none at all
    assert reply.status == 415


def test_an_oversized_post_is_413_and_closed(service: Service) -> None:
    reply = _post(service, b"\x30" * 9000, Content_Type="application/ocsp-request")
    assert reply.status == 413 and reply.headers["Connection"] == "close"
    chunked = (
        b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + (b"1000\r\n" + b"0" * 4096 + b"\r\n") * 3
    )
    assert _raw(service.port, chunked).startswith(b"HTTP/1.1 413")


def test_an_rfc5019_get_over_255_bytes_of_base64_is_414(service: Service) -> None:
    assert http_request(service.port, "GET", "/ocsp/" + "A" * 256).status == 414
    assert http_request(service.port, "GET", "/ocsp/" + "%2F" * 256).status == 414
    line = b"GET /ocsp/" + b"A" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    said = _raw(service.port, line)
    assert said.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400")) and b"Traceback" not in said


@pytest.mark.parametrize(
    "path",
    ["/ocsp/not*base64!", "/ocsp/" + base64.b64encode(b"garbage").decode(), "/ocsp", "/ocsp/",
     "/ocsp/MAA%3D%3D?x=1"],
)  # fmt: skip
def test_a_malformed_get_is_answered_malformed_request(service: Service, path: str) -> None:
    reply = http_request(service.port, "GET", path)
    assert reply.status == 200 and ocsp_status(reply.body) == "MALFORMED_REQUEST"
    assert reply.headers["Cache-Control"] == "no-store"


def test_a_malformed_post_is_answered_malformed_request(service: Service) -> None:
    for body in (b"", b"garbage", service.request()[:-3], service.request() + b"\x00"):
        assert _ocsp_post(service, body) == "MALFORMED_REQUEST"


def test_head_gives_the_headers_without_the_body(service: Service) -> None:
    reply = http_request(service.port, "HEAD", "/ca/issuing.crl")
    crl = (service.home / "outbox" / "ca" / "issuing.crl").read_bytes()
    assert reply.status == 200 and reply.body == b""
    assert reply.headers["Content-Length"] == str(len(crl))


# -- never a traceback ------------------------------------------------------------------------
def test_a_fault_reading_a_response_is_internal_error_never_a_traceback(service: Service) -> None:
    response = service.response_file()
    aside = response.with_name(".aside")
    response.rename(aside)
    response.mkdir()  # a folder where the response should be: reading it fails
    try:
        reply = _post(service, service.request(), Content_Type="application/ocsp-request")
        assert reply.status == 200 and ocsp_status(reply.body) == "INTERNAL_ERROR"
        assert b"Traceback" not in reply.body and len(reply.body) == 5
        assert "Traceback" in service.served.log()  # the traceback stays in the log
    finally:
        response.rmdir()
        aside.rename(response)
    assert _ocsp_post(service, service.request()) == "GOOD"


def test_garbage_instead_of_http_is_400_without_a_traceback(service: Service) -> None:
    for junk in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
                 b"GET\x00/ HTTP/1.1\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n"):  # fmt: skip
        said = _raw(service.port, junk)
        assert said.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400")), said[:80]
        assert b"Traceback" not in said and b"File \"" not in said


# -- slow clients, connections, keep-alive -----------------------------------------------------
def test_a_client_whose_headers_trickle_in_is_cut_off(service: Service) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        closed = False
        for _ in range(40):  # a byte every 0.1 s: 4 s at most
            try:
                sock.sendall(b"X")
                time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if _peer_closed(sock):
                closed = True
                break
    assert closed and time.monotonic() - started < TIMEOUT + 2


def _peer_closed(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    finally:
        sock.setblocking(True)


def test_an_idle_keep_alive_connection_is_closed_after_the_timeout(service: Service) -> None:
    started = time.monotonic()
    said = _raw(service.port, b"", wait=TIMEOUT + 3)
    assert said == b"" and time.monotonic() - started < TIMEOUT + 2


def test_a_slow_post_body_is_408(service: Service) -> None:
    head = (b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
            b"Content-Length: 100\r\n\r\n" + b"\x30" * 10)  # fmt: skip
    started = time.monotonic()
    said = _raw(service.port, head, wait=TIMEOUT + 4)
    assert said.startswith(b"HTTP/1.1 408") and time.monotonic() - started < TIMEOUT + 2


def test_one_connection_over_the_limit_gets_503(service: Service) -> None:
    held = [socket.create_connection(("127.0.0.1", service.port), timeout=5)
            for _ in range(MAX_CONNECTIONS)]  # fmt: skip
    try:
        time.sleep(0.1)  # accepted
        said = _raw(service.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", wait=3)
        assert said.startswith(b"HTTP/1.1 503")
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.1)
    assert http_request(service.port, "GET", "/health").status == 200


def test_keep_alive_serves_several_requests_on_one_connection(service: Service) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
    try:
        sockets = set()
        for _ in range(3):
            connection.request("POST", "/ocsp", service.request(),
                               {"Content-Type": "application/ocsp-request"})  # fmt: skip
            response = connection.getresponse()
            assert response.status == 200 and ocsp_status(response.read()) == "GOOD"
            assert response.getheader("Connection") != "close"
            sockets.add(id(connection.sock))
        assert len(sockets) == 1
    finally:
        connection.close()


# -- the access log ----------------------------------------------------------------------------
def test_one_access_log_line_per_request_and_never_a_body(service: Service) -> None:
    before = len(service.served.access_lines())
    marker = b"BODY-MARKER-never-logged"
    assert _ocsp_post(service, marker) == "MALFORMED_REQUEST"
    assert http_request(service.port, "GET", "/nowhere").status == 404
    assert _ocsp_post(service, service.request()) == "GOOD"
    lines = service.served.access_lines()[before:]
    assert len(lines) == 3, lines
    assert ' POST "/ocsp" 200 5 ' in lines[0] and lines[0].endswith(" malformedRequest")
    assert ' GET "/nowhere" 404 ' in lines[1]
    serial = x509.load_pem_x509_certificate(service.cert.read_bytes()).serial_number
    assert lines[2].endswith(f" good {serial:x}")
    assert marker.decode() not in service.served.log()


# -- files renamed in while serving ------------------------------------------------------------
def test_responses_renamed_in_meanwhile_are_always_read_whole(service: Service) -> None:
    """The daemon writes aside and renames: every answer is one whole response."""
    response = service.response_file()
    original = response.read_bytes()
    stop = threading.Event()

    def rewrite() -> None:
        aside = response.with_name(".rewrite.tmp")
        for _ in range(2000):
            if stop.is_set():
                break
            aside.write_bytes(original)
            aside.replace(response)

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        answers = {_ocsp_post(service, service.request()) for _ in range(100)}
    finally:
        stop.set()
        writer.join(10)
    assert answers == {"GOOD"}


# -- start and stop ----------------------------------------------------------------------------
def test_sigterm_stops_it_with_exit_0(service: Service) -> None:
    other = Served(service.home, free_port())
    with other:
        assert http_request(other.port, "GET", "/health").status == 200
        assert other.stop() == 0
    assert "stopping" in other.log()


def test_a_port_in_use_or_a_bad_listen_address_is_one_clear_line(service: Service) -> None:
    taken = run_certdesk(service.home, "serve", "--listen", f"127.0.0.1:{service.port}",
                         check=False, timeout=30)  # fmt: skip
    assert taken.returncode == 1 and "certdesk: ASCOLTO_NON_DISPONIBILE:" in taken.stderr
    assert "Traceback" not in taken.stderr
    for listen in ("localhost", "127.0.0.1:99999", "::1:80", "host:port"):
        bad = run_certdesk(service.home, "serve", "--listen", listen, check=False, timeout=30)
        assert bad.returncode == 1 and "certdesk: OPZIONE_NON_VALIDA:" in bad.stderr, listen
