"""Opening a home: configuration, CA, store and signer wired into an Engine."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from .authority import CertificateAuthority, ca_exists, create_ca, resolve_passphrase
from .clock import now_utc
from .config import load_config
from .home import Home
from .publish import Publisher
from .service import Engine
from .signing import Signer, make_signer
from .store import Store

__all__ = ["init_home", "open_engine", "open_store"]

log = logging.getLogger("certdesk")


def init_home(home: Home, passphrase_file: Path | None = None) -> str:
    """Create the CA (refusing to overwrite one) and publish its certificates.

    Returns a sentence saying where the passphrase came from."""
    config = load_config(home.root)
    home.ensure()
    generated_before = home.passphrase_file.exists()
    passphrase, source = resolve_passphrase(home, passphrase_file, generate=True)
    create_ca(home, config, passphrase)
    ca = CertificateAuthority.load(home, config, passphrase)
    publisher = Publisher(home)
    publisher.ensure_layout()
    publisher.write_ca(ca.root_pem(), ca.issuing_pem())
    if source == str(home.passphrase_file) and not generated_before:
        return (
            f"generated a random CA passphrase into {home.passphrase_file} (mode 0600): for real "
            "use, move it out of the home and pass it with CERTDESK_CA_PASSPHRASE or "
            "--passphrase-file"
        )
    return f"CA keys encrypted with the passphrase from {source}"


def open_store(home: Home) -> Store:
    home.ensure()
    return Store(home.database)


def open_engine(
    home: Home,
    *,
    passphrase_file: Path | None = None,
    workers: int | None = None,
    init_if_missing: bool = False,
    clock: Callable[[], datetime] = now_utc,
    signer_factory: Callable[[Home, CertificateAuthority, bytes], Signer] | None = None,
) -> Engine:
    """The engine of ``home``; ``signer_factory`` replaces the worker pool (``make_signer``)
    for a caller that signs otherwise, e.g. the benchmark that times the engine alone."""
    config = load_config(home.root)
    if init_if_missing and not ca_exists(home):
        log.info("no CA in %s: creating one (first use)", home.ca_dir)
        log.info("%s", init_home(home, passphrase_file))
    home.ensure()
    passphrase, _ = resolve_passphrase(home, passphrase_file)
    ca = CertificateAuthority.load(home, config, passphrase)
    store = Store(home.database)
    signer = (
        signer_factory(home, ca, passphrase)
        if signer_factory is not None
        else make_signer(home, ca, passphrase, workers)
    )
    return Engine(home, config, ca, store, signer, clock=clock)
