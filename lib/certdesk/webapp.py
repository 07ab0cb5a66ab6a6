"""The admin notebooks as a web app: Voila on 127.0.0.1, token-protected.

    python -m certdesk.webapp --home DIR        (``make admin``)

- listens on 127.0.0.1 only, port ``CERTDESK_ADMIN_PORT`` (default 8866); a busy port is
  an error (``--Voila.port_retries=0``), never a silent move to another port;
- the token is ``CERTDESK_ADMIN_TOKEN``, or a random one printed at start: a request
  without it is refused (Voila redirects it to its login page). The token reaches Voila
  through the environment (``JUPYTER_TOKEN``), not the command line, so ``ps`` does not
  show it;
- each notebook has ``--pool-size`` kernels (default 1) started ahead and warmed up to the
  point where the notebook waits for a page (:func:`certdesk.panels.wait_for_viewer`):
  a page gets one of them, so it shows its panel without waiting for an interpreter and
  its imports, and a new one is warmed for the next page (``--pool-size 0``: every page
  starts its own kernel). A page's kernel is shut down when its page closes or reloads (the
  page's shutdown beacon), or ``--disconnected-grace`` seconds (default 20) after its page
  stopped answering (a crashed browser); a kernel idle for ``--cull-idle`` seconds is
  culled even with its page open (see :mod:`certdesk.webapp_server`);
- exports are files in a private folder (``CERTDESK_EXPORTS`` in the kernels), served
  with the token at ``certdesk/esportazioni/<name>`` and deleted after an hour;
- the kernels find the home in ``CERTDESK_HOME`` (see :func:`certdesk.panels.notebook_home`);
- the token never reaches a log: Voila runs under :mod:`certdesk.voila_launcher`, which
  redacts it from every log line of the process (:mod:`certdesk.logredact`). The one line
  that shows it is ours, printed before Voila starts, with the URL to open when the token
  was generated.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_PORT", "AdminServer", "build_command", "main", "notebooks_dir"]

DEFAULT_PORT = 8866
#: Kernels idle this long are shut down, tab open or not (a person's clicks keep it busy).
DEFAULT_CULL_IDLE = 1800
CULL_INTERVAL = 60
#: A kernel with no page connected is shut down after this long (webapp_kernels.DEFAULT_GRACE,
#: repeated here so that this module needs nothing but the standard library).
DEFAULT_DISCONNECTED_GRACE = 20.0
#: Warmed-up kernels kept waiting per notebook (each holds its imports: about 200 MiB).
DEFAULT_POOL_SIZE = 1
#: Seconds after a page takes its notebook's warmed-up kernel before the next one starts
#: warming up (Voila's default is 1). Warming up is seconds of a core (an interpreter, its
#: imports); started while the page still loads, it took the browser's and the kernel's
#: CPU and made every first visit slower (docs/benchmarks.md). A page of the same
#: notebook opened sooner waits for it.
POOL_FILL_DELAY = 3.0


def notebooks_dir() -> Path:
    """The repository's ``notebooks/`` (lib/certdesk/webapp.py -> ../../notebooks)."""
    return Path(__file__).resolve().parents[2] / "notebooks"


@dataclass(frozen=True)
class AdminServer:
    """What :func:`build_command` needs: the home, where, and the token."""

    home: Path
    notebooks: Path
    port: int
    token: str
    token_generated: bool
    cull_idle: int = DEFAULT_CULL_IDLE
    disconnected_grace: float = DEFAULT_DISCONNECTED_GRACE
    pool_size: int = DEFAULT_POOL_SIZE

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"


def resolve(
    home: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    port: int | None = None,
    notebooks: str | os.PathLike[str] | None = None,
    cull_idle: int = DEFAULT_CULL_IDLE,
    disconnected_grace: float = DEFAULT_DISCONNECTED_GRACE,
    pool_size: int = DEFAULT_POOL_SIZE,
) -> AdminServer:
    """Settings from the arguments and the environment (a random token when none is set)."""
    env = os.environ if environ is None else environ
    if port is None:
        raw = env.get("CERTDESK_ADMIN_PORT", "").strip() or str(DEFAULT_PORT)
        try:
            port = int(raw)
        except ValueError:
            raise SystemExit(
                f"certdesk admin: CERTDESK_ADMIN_PORT non è un numero: {raw!r}"
            ) from None
    if not 0 < port < 65536:
        raise SystemExit(f"certdesk admin: porta non valida: {port}")
    token = env.get("CERTDESK_ADMIN_TOKEN", "").strip()
    generated = not token
    if generated:
        token = secrets.token_urlsafe(24)
    return AdminServer(
        home=Path(home).expanduser().resolve(),
        notebooks=Path(notebooks).resolve() if notebooks else notebooks_dir(),
        port=port,
        token=token,
        token_generated=generated,
        cull_idle=cull_idle,
        disconnected_grace=disconnected_grace,
        pool_size=pool_size,
    )


def build_command(server: AdminServer, python: str = sys.executable) -> list[str]:
    """The Voila command line (without the token, which goes in the environment).

    Voila runs under :mod:`certdesk.voila_launcher`, which takes the same arguments and
    installs the token redaction in that process before Voila logs anything.
    """
    return [
        python, "-m", "certdesk.voila_launcher", str(server.notebooks),
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        f"--Voila.port={server.port}",
        "--Voila.port_retries=0",
        # the token comes from JUPYTER_TOKEN; auto_token makes Voila ask for one at all
        "--Voila.auto_token=True",
        f"--MappingKernelManager.cull_idle_timeout={server.cull_idle}",
        f"--MappingKernelManager.cull_interval={CULL_INTERVAL}",
        "--MappingKernelManager.cull_connected=True",
        "--VoilaConfiguration.show_tracebacks=False",
        f"--CertdeskVoila.disconnected_grace={server.disconnected_grace:g}",
        *_pool_options(server.pool_size),
    ]


def _pool_options(pool_size: int) -> list[str]:
    if pool_size <= 0:
        return []
    return ["--VoilaConfiguration.preheat_kernel=True",
            f"--VoilaConfiguration.default_pool_size={pool_size}",
            f"--VoilaKernelManager.fill_delay={POOL_FILL_DELAY:g}"]


def build_env(server: AdminServer, base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["CERTDESK_HOME"] = str(server.home)
    env["JUPYTER_TOKEN"] = server.token
    env.pop("JUPYTER_TOKEN_FILE", None)
    return env


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m certdesk.webapp",
        description="Serve the certdesk admin notebooks with Voila on 127.0.0.1 (token required).",
    )
    parser.add_argument("--home", default=os.environ.get("CERTDESK_HOME", "."),
                        help="the certdesk home (inbox/, outbox/); default: $CERTDESK_HOME or .")
    parser.add_argument("--port", type=int, default=None,
                        help=f"default: $CERTDESK_ADMIN_PORT or {DEFAULT_PORT}")
    parser.add_argument("--notebooks", default=None, help="default: the repository's notebooks/")
    parser.add_argument("--cull-idle", type=int, default=DEFAULT_CULL_IDLE, metavar="SECONDS",
                        help="shut down kernels idle this long (default %(default)s)")
    parser.add_argument("--disconnected-grace", type=float,
                        default=DEFAULT_DISCONNECTED_GRACE, metavar="SECONDS",
                        help="shut down a kernel this long after its page stopped answering "
                             "(default %(default)s)")
    parser.add_argument("--pool-size", type=int, default=DEFAULT_POOL_SIZE, metavar="N",
                        help="kernels kept warmed up per notebook for the next pages "
                             "(0: none; default %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    server = resolve(args.home, port=args.port, notebooks=args.notebooks,
                     cull_idle=args.cull_idle, disconnected_grace=args.disconnected_grace,
                     pool_size=args.pool_size)
    if server.disconnected_grace <= 0:
        print("certdesk admin: --disconnected-grace deve essere positivo", file=sys.stderr)
        return 2
    if server.pool_size < 0:
        print("certdesk admin: --pool-size non può essere negativo", file=sys.stderr)
        return 2
    if not server.home.is_dir():
        print(f"certdesk admin: la cartella {server.home} non esiste", file=sys.stderr)
        return 2
    if importlib.util.find_spec("voila") is None:
        print("certdesk admin: Voila non è installato: pip install -e '.[notebooks]'",
              file=sys.stderr)
        return 2
    if not (server.notebooks / "richiesta.ipynb").is_file():
        print(f"certdesk admin: nessun notebook in {server.notebooks}", file=sys.stderr)
        return 2
    print(f"certdesk admin: home {server.home}", flush=True)
    print(f"certdesk admin: http://127.0.0.1:{server.port}/", flush=True)
    if server.token_generated:
        # one line, the only one of the whole log that shows the token (see logredact)
        print(f"certdesk admin: token generato (CERTDESK_ADMIN_TOKEN non impostato), "
              f"apri {server.url}", flush=True)
    else:
        print("certdesk admin: token da CERTDESK_ADMIN_TOKEN", flush=True)
    command = build_command(server)
    # exec: Voila gets the signals (Ctrl-C, SIGTERM) and shuts its kernels down itself
    os.execve(sys.executable, command, build_env(server))


if __name__ == "__main__":
    sys.exit(main())
