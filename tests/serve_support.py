"""Helpers for the publication service's tests (``certdesk serve``, ``certdesk run``).

A home whose certificates name a free loopback port; ``certdesk serve`` in a subprocess
(its own session, always stopped); OCSP requests and answers made and judged by the
openssl command line; plain HTTP with the standard library. Servers listen on 127.0.0.1
only, every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.x509 import ocsp
from daemon_support import CLI, codice_fiscale, make_csr, wait_for

from conftest import PASSPHRASE, drop, run_certdesk


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def publish_on(home: Path, port: int, **publish: str) -> None:
    """Make ``home``'s certificates name ``127.0.0.1:port``: its certdesk.toml without an
    explicit ``crl_url`` (the URLs are derived), with ``[publish] listen``."""
    path = home / "certdesk.toml"
    kept = [line for line in path.read_text().splitlines() if not line.startswith("crl_url")]
    settings = {"listen": f"127.0.0.1:{port}", **publish}
    kept += ["[publish]", *(f'{key} = "{value}"' for key, value in settings.items())]
    path.write_text("\n".join(kept) + "\n")


def process(home: Path) -> None:
    run_certdesk(home, "watch", "--once", "--workers", "1")


def request_certificates(home: Path, people: range) -> dict[int, dict[str, Any]]:
    """One certificate for each person ``n`` of ``people``: their receipts, by ``n``."""
    for n in people:
        drop(home, f"p{n}.csr", make_csr(n))
    process(home)
    return {n: _receipt(home, f"p{n}.csr") for n in people}


def cancel(home: Path, n: int, id_operazione: str, motivazione: str, *, wait: bool = True) -> str:
    """File an annullamento of person ``n``'s certificate; process it unless ``wait`` is
    False (a live daemon does it). Its file name."""
    name = f"annulla-{n}-{id_operazione}.json"
    document = {"tipo": "annullamento", "codice_fiscale": codice_fiscale(n),
                "id_operazione": [id_operazione], "motivazione": motivazione,
                "operatore": "test"}  # fmt: skip
    drop(home, name, json.dumps(document).encode())
    if wait:
        process(home)
        assert _receipt(home, name)["esito"] == "OK"
    return name


def _receipt(home: Path, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((home / "outbox" / "receipts" / f"{name}.json").read_text())
    return loaded


@dataclass
class Served:
    """``certdesk serve`` on ``127.0.0.1:port`` in a subprocess; its log in a file."""

    home: Path
    port: int
    args: tuple[str, ...] = ()
    log_path: Path = field(init=False)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.log_path = self.home.parent / f"{self.home.name}-serve-{self.port}.log"

    def start(self) -> Served:
        # The service never needs the CA passphrase: it does not get one.
        env = {k: v for k, v in os.environ.items() if k != "CERTDESK_CA_PASSPHRASE"}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*CLI, "--home", str(self.home), "serve", "--listen", f"127.0.0.1:{self.port}",
                 *self.args],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
            )  # fmt: skip
        wait_for(self._listening, 20, "certdesk serve to listen")
        return self

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"certdesk serve exited {self.proc.returncode}:\n{self.log()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
            return True
        return False

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def access_lines(self) -> list[str]:
        """The access log's lines so far (it is written every quarter of a second)."""
        time.sleep(0.4)
        return [line for line in self.log().splitlines() if " INFO 127.0.0.1 " in line]

    def stop(self, timeout: float = 15) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self) -> Served:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def http_request(
    port: int, method: str, path: str, body: bytes | None = None, **headers: str
) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        sent = {k.replace("_", "-"): v for k, v in headers.items()}
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


def ocsp_status(der: bytes) -> str:
    """What an OCSP answer says: good/revoked/unknown, or its unsigned response status."""
    response = ocsp.load_der_ocsp_response(der)
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return response.response_status.name
    return response.certificate_status.name


def ocsp_request(issuer: Path, *select: str, hash_option: str = "-sha1") -> bytes:
    """A DER OCSP request made by openssl: ``select`` is ``-cert FILE`` or ``-serial N``
    (repeatable); no nonce, as RFC 5019 clients send."""
    done = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(issuer), hash_option, *select, "-no_nonce",
         "-reqout", "/dev/stdout"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return done.stdout


def openssl_ocsp_url(
    served: Served, issuer: Path, chain: Path, *select: str, nonce: bool = False
) -> subprocess.CompletedProcess[str]:
    """``openssl ocsp -url`` (it POSTs), verifying the answer against ``chain``."""
    return subprocess.run(
        ["openssl", "ocsp", "-issuer", str(issuer), *select, "-url", served.url("/ocsp"),
         "-CAfile", str(chain), *([] if nonce else ["-no_nonce"])],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def passphrase_env() -> dict[str, str]:
    return {"CERTDESK_CA_PASSPHRASE": PASSPHRASE}
