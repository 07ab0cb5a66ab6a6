"""Helpers shared by the panel, notebook and web-app tests (imported, not a conftest).

- :func:`make_csr`: a real PKCS#10 request (cryptography, or openssl as a person would).
- :func:`write_ledger`, :func:`write_heartbeat`: an ``outbox/`` as the contract describes it.
- :class:`FakeDaemon`: a small stand-in that answers ``inbox/`` in the contract's format
  (receipts, ledger rows, certificates, heartbeat), so the panels are tested headless,
  fast, and on scenarios the real daemon makes hard to stage (a refusal, a slow issue);
  and every channel's inbox as the contract's section 4 says (``inbox/<canale>/``, the
  administrators' ``state/admin/inbox/``), each answered in its own receipts folder.
- :func:`make_channels`: ``certdesk canale add`` (and ``retire``), in this process.
- :class:`RealDaemon`: ``certdesk init`` then ``certdesk watch`` as a subprocess.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certdesk.channel_admin import add_channel, retire_channel
from certdesk.channels import ADMIN_CHANNEL, is_channel_name
from certdesk.frame import LEDGER_COLUMNS
from certdesk.home import Home
from certdesk.names import is_ignored_name, safe_name
from certdesk.outbox import Outbox
from certdesk.reasons import Motivazione
from certdesk.store import Store

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
CF_PERSON = "RSSMRA80A01H501U"
CF_COMPANY = "00743110157"

_KEYS: dict[int, rsa.RSAPrivateKey] = {}


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rsa_key(slot: int = 0) -> rsa.RSAPrivateKey:
    """A cached 2048-bit key per slot: key generation is the slow part of a CSR."""
    if slot not in _KEYS:
        _KEYS[slot] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _KEYS[slot]


def make_csr(cn: str, *, slot: int = 0, pem: bool = True) -> bytes:
    """A signed PKCS#10 request whose Common Name is ``cn``."""
    key = rsa_key(slot)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .sign(key, hashes.SHA256())
    )
    encoding = serialization.Encoding.PEM if pem else serialization.Encoding.DER
    return csr.public_bytes(encoding)


def openssl_csr(directory: Path, cn: str) -> Path:
    """A CSR made as the contract's users make it: ``openssl req -new -newkey rsa:2048``."""
    out = directory / f"{cn}.csr"
    subprocess.run(
        ["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
         "-keyout", str(directory / f"{cn}.key"), "-out", str(out)],
        check=True, capture_output=True, timeout=60,
    )
    return out


def write_ledger(home: Path, rows: Iterable[Mapping[str, str]], *,
                 quoting: int = csv.QUOTE_MINIMAL) -> Path:
    """``outbox/ledger.csv`` with the contract's columns (missing cells empty).

    ``quoting=csv.QUOTE_ALL`` keeps a bare ``\r`` inside its cell (the csv module quotes
    none when lines end with ``\n``; the daemon escapes control characters instead).
    """
    path = home / "outbox" / "ledger.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(LEDGER_COLUMNS), lineterminator="\n",
                            quoting=quoting)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in LEDGER_COLUMNS})
    aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    aside.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(aside, path)
    return path


def ledger_row(id_op: str, cf: str, stato: str, richiesta: dt.datetime, *,
               days: int = 365, motivazione: str = "", annullamento: str = "") -> dict[str, str]:
    return {
        "IdOperazione": id_op,
        "CodiceFiscale": cf,
        "Profilo": "utente",
        "Certificato": f"{id_op}.pem" if stato != "RIFIUTATO" else "",
        "Stato": stato,
        "DataRichiesta": iso(richiesta),
        "DataScadenza": iso(richiesta + dt.timedelta(days=days)) if stato != "RIFIUTATO" else "",
        "Esito": "OK" if stato != "RIFIUTATO" else "KO",
        "Seriale": uuid.uuid4().hex[:16],
        "ImprontaSHA256": uuid.uuid4().hex * 2,
        "Motivazione": motivazione,
        "DataAnnullamento": annullamento,
        "FileOrigine": f"{id_op}.csr",
        "Emittente": "gen1" if stato in ("ATTIVATO", "SCADUTO", "ANNULLATO") else "",
        "Canale": "",
    }


def make_channels(root: Path, *names: str, retired: Iterable[str] = ()) -> None:
    """``certdesk canale add`` for each of ``names``, then ``retire`` for each of
    ``retired``, in this process (the same code): the folders and the store's records."""
    home = Home.at(root)
    home.ensure()
    store = Store(home.database)
    try:
        for name in names:
            add_channel(home, store, name)
        for name in retired:
            retire_channel(home, store, name)
    finally:
        store.close()


#: The ``pausa`` of a daemon paused for lack of disk space (27/11/2026 12:58 in Rome).
PAUSA_SPAZIO = {
    "codice": "SPAZIO_INSUFFICIENTE",
    "messaggio": "Free space on /srv/certdesk is 80 MiB, below the 512 MiB reserve: "
                 "free some space <now>.",
    "dal": "2026-11-27T11:58:00Z",
}
#: What every panel says of that daemon.
PAUSED_WARNING = (
    "Il daemon è in pausa dal 27/11/2026 12:58 (spazio su disco insufficiente): le "
    "richieste restano in attesa e saranno elaborate alla ripresa."
)


def write_heartbeat(home: Path, *, state: str = "running", age: float = 0.0,
                    pid: int | None = None, extra: Mapping[str, Any] | None = None) -> None:
    """``outbox/daemon.json``; ``extra`` adds or replaces keys (``{"pausa": ...}``)."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age)
    beat = {"pid": pid if pid is not None else os.getpid(), "version": "test",
            "started": iso(now), "updated": iso(now), "last_scan": iso(now),
            "counts": {}, "state": state, **(extra or {})}
    path = home / "outbox" / "daemon.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(".daemon.json.tmp")
    aside.write_text(json.dumps(beat), encoding="utf-8")
    os.replace(aside, path)


def read_ledger_rows(home: Path) -> list[dict[str, str]]:
    path = home / "outbox" / "ledger.csv"
    if not path.exists():
        return []
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


class FakeDaemon:
    """Answers ``inbox/`` in the contract's format, from a thread, until stopped.

    ``two_phase``: a request's receipt says IN_GENERAZIONE first and the ledger turns
    ATTIVATO a moment later (as a daemon with a signing pool may do).

    Every inbox is answered: ``inbox/``, each channel's ``inbox/<canale>/`` and the
    administrators' ``state/admin/inbox/``; a request's row records its channel, and a
    cancellation sees only what its channel may cancel (the administrators' everything).
    """

    def __init__(self, home: Path, *, two_phase: bool = False, validity_days: int = 365) -> None:
        self.home = home
        self.two_phase = two_phase
        self.validity_days = validity_days
        self.rows: list[dict[str, str]] = read_ledger_rows(home)
        self.processed: list[str] = []
        self._timers: list[threading.Timer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-daemon", daemon=True)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        self._ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certdesk test CA")])

    def __enter__(self) -> FakeDaemon:
        for sub in ("inbox", "outbox/receipts", "outbox/certs", "state/archive",
                    "state/admin/inbox"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        write_heartbeat(self.home)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        for timer in self._timers:
            timer.join(10)
        assert not self._thread.is_alive(), "fake daemon did not stop"
        write_heartbeat(self.home, state="stopped")

    def _run(self) -> None:
        while not self._stop.is_set():
            write_heartbeat(self.home)
            for canale, inbox in list(self._inboxes()):
                for path in sorted(inbox.iterdir()):
                    if path.is_file() and not is_ignored_name(path.name):
                        self._handle(path, canale)
            self._stop.wait(0.05)

    def _inboxes(self) -> Iterator[tuple[str, Path]]:
        home = Home(self.home)
        yield "", home.inbox
        yield ADMIN_CHANNEL, home.admin_inbox
        for folder in sorted(home.inbox.iterdir()):
            if folder.is_dir() and is_channel_name(folder.name):
                yield folder.name, folder

    # -- one input ------------------------------------------------------------------------

    def _handle(self, path: Path, canale: str = "") -> None:
        data = path.read_bytes()
        if path.suffix == ".csr":
            receipt = self._request(path.name, data, canale)
        elif path.suffix == ".json":
            receipt = self._cancellation(path.name, data, canale)
        else:
            receipt = self._ko(path.name, "sconosciuto", "TIPO_FILE_SCONOSCIUTO",
                               "file non riconosciuto")
        shutil.move(str(path), str(self.home / "state" / "archive" / path.name))
        self._publish_ledger()
        self._write_receipt(path.name, receipt, canale)
        self.processed.append(path.name)

    def _request(self, name: str, data: bytes, canale: str = "") -> dict[str, Any]:
        try:
            csr = (x509.load_pem_x509_csr(data) if data.lstrip().startswith(b"-----")
                   else x509.load_der_x509_csr(data))
            if not csr.is_signature_valid:
                raise ValueError("firma non valida")
            cn = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        except (ValueError, IndexError) as exc:
            return self._ko(name, "richiesta", "CSR_NON_VALIDA", f"richiesta illeggibile: {exc}")
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        id_op = uuid.uuid4().hex[:20]
        expires = now + dt.timedelta(days=self.validity_days)
        cert = (
            x509.CertificateBuilder()
            .subject_name(csr.subject).issuer_name(self._ca_name)
            .public_key(csr.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(expires)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(self._ca_key, hashes.SHA256())
        )
        row = {
            "IdOperazione": id_op, "CodiceFiscale": str(cn), "Profilo": "utente",
            "Certificato": f"{id_op}.pem", "Stato": "ATTIVATO", "DataRichiesta": iso(now),
            "DataScadenza": iso(expires), "Esito": "OK", "Seriale": f"{cert.serial_number:x}",
            "ImprontaSHA256": cert.fingerprint(hashes.SHA256()).hex(), "Motivazione": "",
            "DataAnnullamento": "", "FileOrigine": name, "Canale": canale,
        }
        receipt: dict[str, Any] = {
            "file": name, "tipo": "richiesta", "esito": "OK", "id_operazione": id_op,
            "stato": "ATTIVATO", "certificato": f"{id_op}.pem", "data_richiesta": iso(now),
            "data_scadenza": iso(expires), "errori": [],
        }
        pem = cert.public_bytes(serialization.Encoding.PEM)
        if self.two_phase:
            self.rows.append({**row, "Stato": "IN_GENERAZIONE", "Certificato": ""})
            receipt.update(stato="IN_GENERAZIONE", certificato=None)

            def finish() -> None:
                (self.home / "outbox" / "certs" / f"{id_op}.pem").write_bytes(pem)
                self.rows[-1] = row
                self._publish_ledger()

            timer = threading.Timer(0.5, finish)
            self._timers.append(timer)
            timer.start()
        else:
            (self.home / "outbox" / "certs" / f"{id_op}.pem").write_bytes(pem)
            self.rows.append(row)
        return receipt

    def _cancellation(self, name: str, data: bytes, canale: str = "") -> dict[str, Any]:
        try:
            req = json.loads(data)
            cf = str(req["codice_fiscale"]).upper()
            ids = [str(i) for i in req["id_operazione"]]
            reason = Motivazione(req["motivazione"])
        except (ValueError, KeyError, TypeError) as exc:
            return self._ko(name, "annullamento", "ANNULLAMENTO_NON_VALIDO", str(exc))
        if reason.requires_note and not str(req.get("nota", "")).strip():
            return self._ko(name, "annullamento", "NOTA_OBBLIGATORIA",
                            "la motivazione Altro richiede una nota")
        # what this channel may cancel: its own requests; the administrators' every one
        mine = [r for r in self.rows if r["CodiceFiscale"] == cf
                and (canale == ADMIN_CHANNEL or r.get("Canale", "") == canale)]
        active = [r for r in mine if r["Stato"] == "ATTIVATO"]
        by_id = {r["IdOperazione"]: r for r in mine}
        for i in ids:
            if i not in by_id:
                return self._ko(name, "annullamento", "ID_OPERAZIONE_NON_TROVATO",
                                f"nessuna richiesta {i} per {cf}")
            if by_id[i]["Stato"] != "ATTIVATO":
                return self._ko(name, "annullamento", "CERTIFICATO_NON_ATTIVO",
                                f"il certificato {i} non è in stato ATTIVATO")
        first = not any(r["Stato"] == "ANNULLATO" for r in mine)
        if first:
            targets = active
        elif len(ids) != 1:
            return self._ko(name, "annullamento", "UN_SOLO_CERTIFICATO",
                            "dopo il primo annullamento se ne annulla uno alla volta")
        else:
            targets = [by_id[ids[0]]]
        now = iso(dt.datetime.now(dt.UTC))
        for r in targets:
            r.update(Stato="ANNULLATO", Motivazione=reason.value, DataAnnullamento=now)
        return {"file": name, "tipo": "annullamento", "esito": "OK",
                "id_operazione": [r["IdOperazione"] for r in targets], "stato": "ANNULLATO",
                "certificato": None, "data_richiesta": None, "data_scadenza": None,
                "errori": []}

    def _ko(self, name: str, tipo: str, code: str, message: str) -> dict[str, Any]:
        return {"file": name, "tipo": tipo, "esito": "KO", "id_operazione": None,
                "stato": "RIFIUTATO", "certificato": None, "data_richiesta": None,
                "data_scadenza": None, "errori": [{"codice": code, "messaggio": message}]}

    def _publish_ledger(self) -> None:
        write_ledger(self.home, self.rows)

    def _write_receipt(self, name: str, receipt: dict[str, Any], canale: str = "") -> None:
        receipts = Outbox.of_channel(Home(self.home), canale).receipts
        receipts.mkdir(parents=True, exist_ok=True)
        path = receipts / f"{safe_name(name)}.json"
        aside = path.with_name(f".{path.name}.tmp")
        aside.write_text(json.dumps(receipt, ensure_ascii=False), encoding="utf-8")
        os.replace(aside, path)


# -- the real engine ----------------------------------------------------------------------


def certdesk_cli() -> list[str] | None:
    """How to run the real ``certdesk`` CLI, or None while the engine has not landed."""
    try:
        import certdesk.cli  # noqa: F401
    except ImportError:
        return None
    exe = VENV_BIN / "certdesk"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from certdesk.cli import main; sys.exit(main())"]


def daemon_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CERTDESK_CA_PASSPHRASE", "test-passphrase-not-secret")
    env["CERTDESK_HOME"] = str(home)
    return env


class RealDaemon:
    """``certdesk init`` (once) and ``certdesk watch`` in the background, stopped on exit."""

    def __init__(self, home: Path, *, startup: float = 60.0) -> None:
        cli = certdesk_cli()
        assert cli is not None, "the certdesk CLI is not installed"
        self.cli = cli
        self.home = home
        self.startup = startup
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home.parent / f"{home.name}-daemon.log"

    def run(self, *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.cli, "--home", str(self.home), *args],
                              env=daemon_env(self.home), capture_output=True, text=True,
                              timeout=timeout, check=False)

    def init(self) -> None:
        if (self.home / "outbox" / "ca").exists():
            return
        done = self.run("init")
        assert done.returncode == 0, done.stderr

    def __enter__(self) -> RealDaemon:
        self.init()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*self.cli, "--home", str(self.home), "watch", "--workers", "1"],
                env=daemon_env(self.home), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        from certdesk.panels import daemon_health

        deadline = time.monotonic() + self.startup
        while not daemon_health(self.home).alive:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"certdesk watch did not start:\n{self.log.read_text()}")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
