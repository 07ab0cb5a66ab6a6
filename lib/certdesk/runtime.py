"""Opening a home: configuration, CA, store and signer wired into an Engine."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from .authority import CertificateAuthority, ca_exists
from .clock import now_utc
from .codes import refusal
from .config import Config, load_config
from .hierarchy import create_ca
from .home import Home
from .issuers import Issuers
from .keys import KeyProvider, provider_for, resolve_secret
from .publish import Publisher
from .service import Engine
from .signing import Signer, make_signer
from .store import Store

__all__ = ["init_home", "open_engine", "open_init", "open_store", "publish_ca"]

log = logging.getLogger("certdesk")


def open_init(
    home: Home, secret_file: Path | None, keys: str | None
) -> tuple[Config, KeyProvider, bytes, str]:
    """What every ``init`` needs: the configuration (``keys``, when the command line
    names a provider, must be the one certdesk.toml names: a typo never leaves the CA's
    keys in files when a token was meant), the secret and a provider that may make keys."""
    config = load_config(home.root)
    if keys is not None and keys != config.keys.provider:
        raise refusal(
            "CONFIGURAZIONE_NON_VALIDA", "fornitore_diverso", richiesto=keys,
            configurato=config.keys.provider,
        )  # fmt: skip
    home.ensure()
    secret, source = resolve_secret(home, config, secret_file, generate=True)
    return config, provider_for(home, config, secret, source, writable=True), secret, source


def publish_ca(home: Home, config: Config, secret: bytes, source: str = "") -> None:
    """Load the CA just made (its key proved with a probe signature), publish its chain."""
    ca = CertificateAuthority.load(home, config, secret, source=source)
    publisher = Publisher(home)
    publisher.ensure_layout()
    publisher.write_ca(ca.root_pem(), ca.issuing_pem())


def init_home(
    home: Home, passphrase_file: Path | None = None, *, keys: str | None = None,
    adopt: bool = False,
) -> str:  # fmt: skip
    """Create the CA (refusing to overwrite one) and publish its certificates.

    Returns a sentence saying where the keys are and what opens them."""
    generated_before = home.passphrase_file.exists()
    config, provider, secret, source = open_init(home, passphrase_file, keys)
    try:
        create_ca(home, config, provider, adopt=adopt)
    except BaseException:
        if not generated_before:  # a refused init leaves no secret it made for nothing
            home.passphrase_file.unlink(missing_ok=True)
        raise
    publish_ca(home, config, secret, source)
    if config.keys.provider == "pkcs11":
        how = "adopted" if adopt else "generated"
        return (
            f"CA keys {how} in the token {config.keys.token_label!r} (labels "
            f"{config.keys.root_key_label!r}, {config.keys.issuing_key_label!r}); "
            f"PIN from {source}"
        )
    if source == str(home.passphrase_file) and not generated_before:
        return (
            f"generated a random CA passphrase into {home.passphrase_file} (mode 0600): for real "
            "use, move it out of the home and pass it with CERTDESK_CA_PASSPHRASE or "
            "--passphrase-file"
        )
    return f"CA keys encrypted with the passphrase from {source}"


def open_store(home: Home, *, read_only: bool = False) -> Store:
    """The home's store; ``read_only``: only to read, never made nor upgraded (``status``,
    ``canale list``, ``verify-ledger``, ``archivio``)."""
    if read_only:
        return Store(home.database, read_only=True)
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
    secret, source = resolve_secret(home, config, passphrase_file)
    ca = CertificateAuthority.load(home, config, secret, source=source)
    store = Store(home.database)
    signer = (
        signer_factory(home, ca, secret)
        if signer_factory is not None
        else make_signer(home, ca, secret, workers)
    )
    issuers = Issuers(home, config, ca, secret, source)
    return Engine(home, config, ca, store, signer, clock=clock, issuers=issuers)
