"""certdesk's configuration: defaults, overridden by an optional ``certdesk.toml`` in the home.

Example ``certdesk.toml``::

    [ca]
    root_common_name = "certdesk Root CA"
    issuing_common_name = "certdesk Issuing CA"
    organization = "Esempio S.r.l."
    root_key = "rsa4096"          # rsa2048 | rsa3072 | rsa4096 | ec-p256 | ec-p384
    issuing_key = "rsa3072"
    root_validity_days = 7300
    issuing_validity_days = 3650
    # Where relying parties fetch the CRL and ask OCSP: by default derived from
    # [publish] public_url; written here, they win (e.g. a CDN serving outbox/ca/).
    crl_url = ""                  # default: <public_url>/ca/issuing.crl
    ocsp_url = ""                 # default: <public_url>/ocsp

    [certificates]
    validity_days = 1095
    allow_ec = false              # accept ECDSA P-256/P-384 CSRs

    [crl]
    next_update_hours = 24

    [daemon]
    rescan_seconds = 2.0
    settle_seconds = 0.5
    batch_size = 64               # requests per store transaction and signing round trip
    min_free_mib = 64             # below this (plus ledger.csv's size) free, claim nothing new

    [publish]
    listen = "127.0.0.1:8080"     # where certdesk serve listens
    # The service's public base URL, from which new certificates' CRL, OCSP and caIssuers
    # URLs are derived (default: "http://" + listen); a path is served under that path.
    public_url = "https://pki.example.it/certdesk"

    [archive]                     # the originals of inputs in state/archive/, state/quarantine/
    retention_days = 0            # delete days' packs older than this; 0 keeps everything

    [keys]                        # where the CA's private keys live (docs/hsm.md)
    provider = "file"             # file: encrypted PKCS#8 in state/ca/ | pkcs11: a token
    module = "/usr/lib/softhsm/libsofthsm2.so"   # the token's PKCS#11 library
    token_label = "certdesk"
    root_key_label = "certdesk-root"
    issuing_key_label = "certdesk-issuing"
    pin_file = ""                 # mode 0600; else the PIN is $CERTDESK_PKCS11_PIN
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .codes import refusal
from .publication import DEFAULT_LISTEN, PublicUrls, parse_listen, valid_public_url

__all__ = ["KEY_PROVIDERS", "KEY_TYPES", "Config", "KeySettings", "load_config", "public_urls"]

KEY_TYPES = ("rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384")
KEY_PROVIDERS = ("file", "pkcs11")
# The settings' types as the administrator reads them in a CONFIGURAZIONE_NON_VALIDA.
_TYPE_NAMES = {
    bool: "true o false",
    int: "un numero intero",
    float: "un numero",
    str: "un testo tra virgolette",
}


@dataclass(frozen=True)
class CaSettings:
    root_common_name: str = "certdesk Root CA"
    issuing_common_name: str = "certdesk Issuing CA"
    organization: str = "certdesk"
    root_key: str = "rsa4096"
    issuing_key: str = "rsa3072"
    root_validity_days: int = 7300
    issuing_validity_days: int = 3650
    # "" = derived from [publish] public_url (``public_urls``); written in certdesk.toml, wins.
    crl_url: str = ""
    ocsp_url: str = ""


@dataclass(frozen=True)
class CertificateSettings:
    validity_days: int = 1095
    allow_ec: bool = False


@dataclass(frozen=True)
class CrlSettings:
    next_update_hours: int = 24


@dataclass(frozen=True)
class DaemonSettings:
    rescan_seconds: float = 2.0
    settle_seconds: float = 0.5
    # Requests per store transaction and per signing round trip: amortises the commit and
    # the durability barrier; the pipeline keeps two such chunks signing (make bench).
    batch_size: int = 64
    # The free-space reserve (daemon/reserve.py): with less free than this plus the size
    # of ledger.csv, the daemon pauses instead of claiming new inputs.
    min_free_mib: float = 64.0


@dataclass(frozen=True)
class PublishSettings:
    """``certdesk serve``: where it listens, and the public base URL of what it serves."""

    listen: str = DEFAULT_LISTEN
    public_url: str = ""  # "" = "http://" + listen


@dataclass(frozen=True)
class ArchiveSettings:
    """``[archive]``: how long the originals of inputs are kept (``archive_retention``)."""

    retention_days: int = 0  # 0 = for ever; N: a day's pack goes N days after that day


@dataclass(frozen=True)
class KeySettings:
    """``[keys]``: which provider holds the CA's private keys (``certdesk.keys``). The
    PIN is never here: it comes from ``CERTDESK_PKCS11_PIN`` or ``pin_file``."""

    provider: str = "file"
    module: str = ""  # the PKCS#11 library (.so) of the token; required for pkcs11
    token_label: str = "certdesk"
    root_key_label: str = "certdesk-root"
    issuing_key_label: str = "certdesk-issuing"
    pin_file: str = ""


@dataclass(frozen=True)
class Config:
    ca: CaSettings = field(default_factory=CaSettings)
    certificates: CertificateSettings = field(default_factory=CertificateSettings)
    crl: CrlSettings = field(default_factory=CrlSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    publish: PublishSettings = field(default_factory=PublishSettings)
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    keys: KeySettings = field(default_factory=KeySettings)


def public_urls(config: Config, listen: str | None = None) -> PublicUrls:
    """The URLs new certificates name and ``certdesk serve`` answers at (``listen``: the
    address the service was told on its command line, when there is one)."""
    return PublicUrls.derive(
        listen=listen or config.publish.listen,
        public_url=config.publish.public_url,
        crl_url=config.ca.crl_url,
        ocsp_url=config.ca.ocsp_url,
    )


def _section(default: Any, values: Any, name: str) -> Any:
    if not isinstance(values, dict):
        raise refusal("CONFIGURAZIONE_NON_VALIDA", "tabella", sezione=name)
    known = {f.name: f for f in fields(default)}
    for key, value in values.items():
        if key not in known:
            raise refusal("CONFIGURAZIONE_NON_VALIDA", "impostazione", sezione=name, chiave=key)
        expected = type(getattr(default, key))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise refusal(
                "CONFIGURAZIONE_NON_VALIDA",
                "tipo",
                sezione=name,
                chiave=key,
                tipo=_TYPE_NAMES.get(expected, expected.__name__),
                valore=value,
            )
        values = {**values, key: value}
    return replace(default, **values)


def load_config(home: Path) -> Config:
    """The configuration of ``home``: defaults unless ``home/certdesk.toml`` overrides them."""
    path = home / "certdesk.toml"
    if not path.exists():
        return Config()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise refusal("CONFIGURAZIONE_NON_VALIDA", "toml", errore=exc) from None
    base = Config()
    sections: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in {f.name for f in fields(base)}:
            raise refusal("CONFIGURAZIONE_NON_VALIDA", "sezione", sezione=name)
        sections[name] = _section(getattr(base, name), value, name)
    config = replace(base, **sections)
    for key_name in ("root_key", "issuing_key"):
        if getattr(config.ca, key_name) not in KEY_TYPES:
            raise refusal(
                "CONFIGURAZIONE_NON_VALIDA",
                "tipo_chiave",
                chiave=key_name,
                ammessi=", ".join(KEY_TYPES),
            )
    if config.certificates.validity_days < 1 or config.crl.next_update_hours < 1:
        raise refusal("CONFIGURAZIONE_NON_VALIDA", "periodi")
    if not 0 <= config.daemon.min_free_mib < float("inf"):
        raise refusal("CONFIGURAZIONE_NON_VALIDA", "spazio_minimo")
    if config.archive.retention_days < 0:
        raise refusal("CONFIGURAZIONE_NON_VALIDA", "conservazione")
    _check_urls(config)
    _check_keys(config.keys)
    return config


def _check_keys(keys: KeySettings) -> None:
    if keys.provider not in KEY_PROVIDERS:
        raise refusal(
            "CONFIGURAZIONE_NON_VALIDA", "fornitore_chiavi", ammessi=", ".join(KEY_PROVIDERS)
        )
    if keys.provider == "pkcs11" and not (keys.module and keys.token_label):
        raise refusal("CONFIGURAZIONE_NON_VALIDA", "pkcs11")


def _check_urls(config: Config) -> None:
    if parse_listen(config.publish.listen) is None:
        raise refusal("CONFIGURAZIONE_NON_VALIDA", "ascolto", valore=config.publish.listen)
    # crl_url and ocsp_url stay free text, as before (an ldap:// CRL is X.509 too): only
    # the base URL certdesk serve answers under must be one it can serve.
    public_url = config.publish.public_url
    if public_url and not valid_public_url(public_url):
        raise refusal("CONFIGURAZIONE_NON_VALIDA", "url_pubblico", valore=public_url)
