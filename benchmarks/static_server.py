"""The reference for the responder: Debian's nginx serving the same response files."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

__all__ = ["static_server"]

# One worker process, as the responder is one process; sendfile, keep-alive, no log.
_CONFIG = """\
worker_processes {workers};
daemon off;
master_process on;
user root;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  types {{ application/ocsp-response der; }}
  client_body_temp_path {prefix}/tmp;
  proxy_temp_path {prefix}/tmp;
  fastcgi_temp_path {prefix}/tmp;
  uwsgi_temp_path {prefix}/tmp;
  scgi_temp_path {prefix}/tmp;
  server {{
    listen 127.0.0.1:{port};
    location /ocsp/ {{ alias {files}/; }}
  }}
}}
"""


@contextlib.contextmanager
def static_server(work: Path, files: Path, port: int, workers: int = 1) -> Iterator[str]:
    """nginx serving ``files`` at ``/ocsp/<name>`` on 127.0.0.1:``port``; its base URL."""
    prefix = work / "nginx"
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    config = prefix / "nginx.conf"
    config.write_text(
        _CONFIG.format(prefix=prefix, port=port, files=files, workers=workers), encoding="utf-8"
    )
    proc = subprocess.Popen(
        ["nginx", "-c", str(config), "-p", str(prefix)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_listening(proc, base)
        yield base
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful stop of master and workers
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_listening(proc: subprocess.Popen[bytes], base: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"nginx exited at start: {err}")
        try:
            urllib.request.urlopen(base + "/", timeout=1).close()
            return
        except OSError as exc:  # 404 (HTTPError) means it answers
            if getattr(exc, "code", None) is not None:
                return
            time.sleep(0.05)
    raise RuntimeError("nginx did not start listening within 10 s")
