"""Integrator channels as Unix sees them: two channels, each with its own throw-away Unix
group and user, checked by really running commands as those users (``runuser``, else
``setpriv``), on a home laid out as docs/operations.md ("Channels") says and a daemon run
with ``UMask=0027``'s umask.

What each user can do: drop into its own inbox with the writer protocol (``.name.tmp``,
then rename) and not into the other's; read its own outbox (receipts, certificates, its
``ledger.csv``) and nothing of the other channel's nor of the top-level ``outbox/`` but
the CA's public files. What the daemon decides: a person with certificates in both
channels is cancelled per channel (the first cancellation cumulative within its channel
only, the other channel's certificates not disclosed); a ``.p7m`` the holder signs with
``openssl cms`` cancels its certificate from any channel, and the wrong signer, a
self-made certificate, a changed byte or a file that is not DER are refused with their
codes; ``certdesk canale`` refuses what it must, and a retired channel takes nothing. The
CA's published files stay readable by everyone under the daemon's umask.

Needs root (``groupadd``, ``useradd``); skipped otherwise. The groups and users have
random names and are removed at the end of the module, whatever happened. pytest's own
temporary folders are 0700, so the homes live in a folder of ``/tmp`` that others may
traverse, removed at the end too.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from daemon_support import codice_fiscale, make_csr

from certdesk.client import receipt_path
from conftest import OTHER, PERSON, crl, run_certdesk

# docs/operations.md, "Channels": the daemon runs with UMask=0027; an administrator runs
# `certdesk canale add` from a shell, whose umask is the usual one.
DAEMON_UMASK = 0o027
SHELL_UMASK = 0o022
HOLDER = codice_fiscale(7)  # a person with one certificate, through channel a only
ONLY_B = OTHER  # a person with a certificate through channel b only
UNKNOWN_ID = "20990101-000000999"  # an IdOperazione this CA never gave
ADMIN_COMMANDS = ("groupadd", "useradd", "userdel", "groupdel")


# -- throw-away Unix users -----------------------------------------------------------------------
def _as_user_prefix(user: str, group: str) -> list[str]:
    """The command that runs what follows as ``user``, with its groups from /etc/group
    (util-linux: setpriv, a few times quicker than runuser, which opens a PAM session)."""
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups", "--"]
    return ["runuser", "-u", user, "--"]


@dataclass(frozen=True)
class Integrator:
    """A channel's Unix group and a user in it, with a private working folder."""

    canale: str
    group: str
    user: str
    work: Path

    def run(
        self, *argv: str, data: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        """``argv`` as this user, in its working folder."""
        command = [*_as_user_prefix(self.user, self.group), "env", f"HOME={self.work}", *argv]
        result = subprocess.run(
            command, input=data, capture_output=True, cwd=self.work, timeout=60
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(f"as {self.user}: {argv} exited {result.returncode}: "
                                 f"{result.stderr.decode(errors='replace')}")  # fmt: skip
        return result

    def sh(
        self, script: str, *args: str | Path, data: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        return self.run("sh", "-c", script, "sh", *map(str, args), data=data, check=check)

    # what an integrator's program does
    def drop(self, home: Path, name: str, data: bytes, canale: str | None = None) -> None:
        """The writer protocol of docs/contract.md section 4: write ``.name.tmp``, rename."""
        inbox = home / "inbox" / (canale or self.canale)
        self.sh('cat > "$1/.$2.tmp" && mv "$1/.$2.tmp" "$1/$2"', inbox, name, data=data)

    def openssl(self, *args: str) -> bytes:
        return self.run("openssl", *args).stdout

    def new_key(self, name: str) -> Path:
        self.openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                     "-out", name)  # fmt: skip
        return self.work / name

    def csr(self, key: Path, subject: str) -> bytes:
        return self.openssl("req", "-new", "-key", str(key), "-subj", subject, "-sha256")

    def sign(self, document: dict[str, Any], name: str, cert: Path, key: Path,
             outform: str = "DER") -> bytes:  # fmt: skip
        """``NAME.json`` signed exactly as the contract tells holders to."""
        self.sh('cat > "$1"', f"{name}.json", data=json.dumps(document).encode())
        self.openssl("cms", "-sign", "-nodetach", "-binary", "-outform", outform,
                     "-signer", str(cert), "-inkey", str(key), "-in", f"{name}.json",
                     "-out", f"{name}.json.p7m")  # fmt: skip
        return (self.work / f"{name}.json.p7m").read_bytes()

    # what this user may and may not do
    def read(self, path: Path) -> bytes:
        return self.run("cat", str(path)).stdout

    def can_write(self, folder: Path) -> bool:
        probe = f".probe-{secrets.token_hex(4)}.tmp"
        done = self.sh(': > "$1/$2" && rm -f "$1/$2"', folder, probe, check=False)
        return done.returncode == 0

    def assert_denied(self, command: str, *paths: Path) -> None:
        """``command PATH`` fails for want of permission on each of ``paths`` (which
        exist: a missing one would prove nothing), all tried in one shell."""
        missing = [p for p in paths if not os.path.lexists(p)]
        assert paths and not missing, f"nothing to try, or missing: {missing}"
        script = ('for p do if e=$(' + command + ' -- "$p" 2>&1 >/dev/null); '
                  'then echo "+ $p"; else echo "- $p $e"; fi; done')  # fmt: skip
        lines = self.sh(script, *paths).stdout.decode(errors="replace").splitlines()
        assert len(lines) == len(paths), lines
        allowed = [line for line in lines if not line.startswith("- ")]
        other = [line for line in lines if "Permission denied" not in line]
        assert not allowed and not other, f"{self.user} ran {command}: {allowed + other}"

    def cannot_read(self, *paths: Path) -> None:
        self.assert_denied("cat", *paths)

    def cannot_list(self, *folders: Path) -> None:
        self.assert_denied("ls -A", *folders)


@dataclass(frozen=True)
class World:
    base: Path  # traversable by everyone; the homes live in it
    a: Integrator
    b: Integrator


def _admin(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        pytest.skip(f"cannot make throw-away Unix users: {' '.join(argv)} exited "
                    f"{result.returncode}: {result.stderr.strip()}")  # fmt: skip


def _exists(database: str, name: str) -> bool:
    found = subprocess.run(["getent", database, name], capture_output=True, timeout=30)
    return found.returncode == 0


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    if os.geteuid() != 0:
        pytest.skip("needs root: it makes Unix groups and users and runs commands as them")
    missing = [c for c in ADMIN_COMMANDS if shutil.which(c) is None]
    if not (shutil.which("runuser") or shutil.which("setpriv")):
        missing.append("runuser or setpriv")
    if missing:
        pytest.skip(f"needs {', '.join(missing)} to make and impersonate Unix users")
    tag = secrets.token_hex(3)
    base = Path(tempfile.mkdtemp(prefix="certdesk-channels-", dir="/tmp"))
    groups: list[str] = []
    users: list[str] = []
    try:
        base.chmod(0o755)
        integrators = []
        for canale in ("a", "b"):
            group, user = f"cdt{tag}{canale}g", f"cdt{tag}{canale}u"
            groups.append(group)
            _admin("groupadd", group)
            users.append(user)
            _admin("useradd", "--system", "--gid", group, "--no-create-home",
                   "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", user)  # fmt: skip
            work = base / f"work-{canale}"
            work.mkdir(mode=0o700)
            shutil.chown(work, user, group)
            integrators.append(Integrator(canale, group, user, work))
        yield World(base, *integrators)
    finally:
        for user in users:
            subprocess.run(["userdel", user], capture_output=True, timeout=60)
        for group in groups:
            subprocess.run(["groupdel", group], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
        left = [n for n in users if _exists("passwd", n)]
        left += [n for n in groups if _exists("group", n)]
        assert not left, f"could not remove the throw-away users and groups {left}"


# -- a home laid out as docs/operations.md says ------------------------------------------------
def _canale(home: Path, *args: str, umask: int = SHELL_UMASK) -> tuple[int, str, str]:
    """``certdesk --home HOME canale ARGS`` in this process (a command line costs a second
    of imports): its exit status, standard output and standard error."""
    from certdesk.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = os.umask(umask)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(["--home", str(home), "canale", *args])
    finally:
        os.umask(old)
    return status, out.getvalue(), err.getvalue()


def _home(world: World, ca_template: Path) -> Path:
    home = Path(tempfile.mkdtemp(prefix="home-", dir=world.base))
    home.rmdir()
    shutil.copytree(ca_template, home)  # a CA made by `certdesk init` under the usual umask
    home.chmod(0o755)
    for who in (world.a, world.b):
        status, _, err = _canale(home, "add", who.canale, "--group", who.group)
        assert status == 0, err
    # docs/operations.md, "Channels", set-up (the daemon is root here: no chown needed)
    (home / "outbox").chmod(0o751)
    (home / "inbox").chmod(0o1771)
    for private in ("certs", "receipts", "ledger.parquet"):
        (home / "outbox" / private).chmod(0o750)
    return home


def _watch(home: Path) -> None:
    done = run_certdesk(home, "watch", "--once", "--workers", "1", umask=DAEMON_UMASK)
    assert "Traceback" not in done.stderr, done.stderr


def _receipt(home: Path, canale: str, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(receipt_path(home, name, canale=canale).read_text())
    return loaded


def _codes(result: dict[str, Any]) -> list[str]:
    return [e["codice"] for e in result["errori"]]


def _issued(home: Path, canale: str, name: str) -> str:
    result = _receipt(home, canale, name)
    assert result["esito"] == "OK" and result["stato"] == "ATTIVATO", result
    return str(result["id_operazione"])


def _cancelled(home: Path, canale: str, name: str) -> list[str]:
    result = _receipt(home, canale, name)
    assert result["esito"] == "OK", result
    return sorted(result["id_operazione"])


def _refused(home: Path, canale: str, name: str) -> list[str]:
    result = _receipt(home, canale, name)
    assert result["esito"] == "KO", result
    return _codes(result)


def _states(home: Path) -> dict[str, str]:
    with open(home / "outbox" / "ledger.csv", newline="", encoding="utf-8") as fh:
        return {row["IdOperazione"]: row["Stato"] for row in csv.DictReader(fh)}


def _annullamento(cf: str, *ids: str, nota: str = "") -> dict[str, Any]:
    return {"tipo": "annullamento", "codice_fiscale": cf, "id_operazione": list(ids),
            "motivazione": "CHIAVE_SMARRITA", "nota": nota, "operatore": "gestionale"}  # fmt: skip


def _lines(data: bytes) -> list[str]:
    return data.decode("utf-8").splitlines()


def _canale_of(header: str, line: str) -> str:
    columns = next(csv.reader([header]))
    return dict(zip(columns, next(csv.reader([line])), strict=True))["Canale"]


# -- the scenario ---------------------------------------------------------------------------------
def test_two_channels_each_sees_and_cancels_its_own(world: World, ca_template: Path) -> None:
    home = _home(world, ca_template)
    a, b = world.a, world.b
    outbox = home / "outbox"

    # Requests: the same person through both channels, one person in each channel alone.
    key_a, key_holder = a.new_key("person.key.pem"), a.new_key("holder.key.pem")
    key_b, key_only_b = b.new_key("person.key.pem"), b.new_key("only-b.key.pem")
    a.drop(home, "person-1.csr", a.csr(key_a, f"/CN={PERSON}"))
    a.drop(home, "person-2.csr", a.csr(key_a, f"/CN={PERSON}/OU=secondo"))
    a.drop(home, "holder.csr", a.csr(key_holder, f"/CN={HOLDER}"))
    b.drop(home, "person-1.csr", b.csr(key_b, f"/CN={PERSON}"))
    b.drop(home, "person-2.csr", b.csr(key_b, f"/CN={PERSON}/OU=secondo"))
    b.drop(home, "only-b.csr", b.csr(key_only_b, f"/CN={ONLY_B}"))
    assert not a.can_write(home / "inbox" / "b") and not b.can_write(home / "inbox" / "a")
    assert not a.can_write(home / "inbox")  # nor the default channel's, nor rename a channel
    _watch(home)
    a_person = sorted(_issued(home, "a", n) for n in ("person-1.csr", "person-2.csr"))
    holder = _issued(home, "a", "holder.csr")
    b_person = sorted(_issued(home, "b", n) for n in ("person-1.csr", "person-2.csr"))
    only_b = _issued(home, "b", "only-b.csr")
    a_ids, b_ids = {*a_person, holder}, {*b_person, only_b}

    # Cancellations, one run: A's first for the person (cumulative within A), A naming one
    # of B's certificates, and the holder's signed annullamenti from both channels.
    a.drop(home, "person-first.json", json.dumps(_annullamento(PERSON)).encode())
    a.drop(home, "names-b.json", json.dumps(_annullamento(PERSON, b_person[0])).encode())
    a.drop(home, "names-none.json", json.dumps(_annullamento(PERSON, UNKNOWN_ID)).encode())
    holder_cert = outbox / "a" / "certs" / f"{holder}.pem"  # as published to A
    document = _annullamento(HOLDER, holder, nota="chiave persa")
    signed = a.sign(document, "holder", holder_cert, key_holder)
    b.drop(home, "holder.json.p7m", signed)  # the holder's file, through B's inbox
    a.drop(home, "other-signer.json.p7m",
           a.sign(document, "other", outbox / "a" / "certs" / f"{a_person[0]}.pem", key_a))
    b.openssl("req", "-x509", "-new", "-key", str(key_only_b), "-subj", f"/CN={HOLDER}",
              "-days", "30", "-out", "self-made.pem")  # fmt: skip
    b.drop(home, "self-made.json.p7m",
           b.sign(document, "self", b.work / "self-made.pem", key_only_b))  # fmt: skip
    content = json.dumps(document).encode()
    at = signed.index(content) + content.index(b"persa")
    a.drop(home, "tampered.json.p7m", signed[:at] + b"P" + signed[at + 1 :])
    b.drop(home, "random.json.p7m", os.urandom(512))
    _watch(home)

    assert _cancelled(home, "a", "person-first.json") == a_person
    assert _refused(home, "a", "names-b.json") == ["ID_OPERAZIONE_NON_TROVATO"]
    # B's certificate is not disclosed: the answer is the one for a number never given
    told = _receipt(home, "a", "names-b.json")["errori"][0]["messaggio"]
    unknown = _receipt(home, "a", "names-none.json")["errori"][0]["messaggio"]
    assert told.replace(b_person[0], UNKNOWN_ID) == unknown
    assert _cancelled(home, "b", "holder.json.p7m") == [holder]
    assert _refused(home, "a", "other-signer.json.p7m") == ["FIRMATARIO_DIVERSO"]
    assert _refused(home, "b", "self-made.json.p7m") == ["FIRMATARIO_NON_TITOLARE"]
    assert _refused(home, "a", "tampered.json.p7m") == ["FIRMA_NON_VALIDA"]
    assert _refused(home, "b", "random.json.p7m") == ["P7M_NON_VALIDO"]
    states = _states(home)
    assert {i: states[i] for i in b_ids} == dict.fromkeys(b_ids, "ATTIVATO")
    # the holder reads its answer in the channel it used
    assert json.loads(b.read(receipt_path(home, "holder.json.p7m", canale="b")))["esito"] == "OK"

    # B's first cancellation for the same person: cumulative within B only. The holder's
    # file again, as PEM text through A: read and verified, and its certificate no longer
    # ATTIVATO.
    b.drop(home, "person-first.json", json.dumps(_annullamento(PERSON)).encode())
    a.drop(home, "pem.json.p7m", a.sign(document, "pem", holder_cert, key_holder, "PEM"))
    _watch(home)
    assert _cancelled(home, "b", "person-first.json") == b_person
    assert _refused(home, "a", "pem.json.p7m") == ["STATO_NON_ANNULLABILE"]
    states = _states(home)
    cancelled = {*a_person, holder, *b_person}
    assert {i for i, s in states.items() if s == "ANNULLATO"} == cancelled
    assert states[only_b] == "ATTIVATO"

    # Every receipt in the outbox of the channel its input came through, and only there.
    sent = {
        "a": {"person-1.csr", "person-2.csr", "holder.csr", "person-first.json", "names-b.json",
              "names-none.json", "other-signer.json.p7m", "tampered.json.p7m", "pem.json.p7m"},
        "b": {"person-1.csr", "person-2.csr", "only-b.csr", "holder.json.p7m",
              "self-made.json.p7m", "random.json.p7m", "person-first.json"},
    }  # fmt: skip
    for canale, names in sent.items():
        assert sorted(os.listdir(outbox / canale / "receipts")) == sorted(
            receipt_path(home, n, canale=canale).name for n in names
        )
    assert os.listdir(outbox / "receipts") == []
    assert {p.stem for p in (outbox / "a" / "certs").glob("*.pem")} == a_ids
    assert {p.stem for p in (outbox / "b" / "certs").glob("*.pem")} == b_ids

    _nothing_for_others(home)
    _each_reads_its_own_only(home, a, b, a_ids)
    _each_reads_its_own_only(home, b, a, b_ids)
    _ledgers_are_projections(home, a, a_ids, absent=ONLY_B)
    _ledgers_are_projections(home, b, b_ids, absent=HOLDER)

    revoked = {format(r.serial_number, "x") for r in crl(home)}
    serials = _serials(home)
    assert revoked == {serials[i] for i in cancelled}
    verified = run_certdesk(home, "verify-ledger", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _nothing_for_others(home: Path) -> None:
    """Under the daemon's umask, what it writes in outbox/ is not for other users (0640,
    docs/operations.md), beside the folders that keep them out: the CA's files and the
    OCSP responses apart, which are published anyway."""
    outbox = home / "outbox"
    for folder, subfolders, files in os.walk(outbox):
        if Path(folder) == outbox:
            subfolders.remove("ca")
            subfolders.remove("ocsp")
        for name in files:
            mode = (Path(folder) / name).stat().st_mode
            assert mode & 0o007 == 0, f"{folder}/{name} is {oct(mode)}: other users may read it"


def _serials(home: Path) -> dict[str, str]:
    with open(home / "outbox" / "ledger.csv", newline="", encoding="utf-8") as fh:
        return {row["IdOperazione"]: row["Seriale"] for row in csv.DictReader(fh)}


def _each_reads_its_own_only(home: Path, me: Integrator, other: Integrator, mine: set[str]) -> None:
    outbox = home / "outbox"
    own, theirs = outbox / me.canale, outbox / other.canale
    # its own channel: the ledger, every receipt, every certificate
    me.read(own / "ledger.csv")
    for folder, expected in ((own / "certs", {f"{i}.pem" for i in mine}), (own / "receipts", None)):
        listed = me.run("ls", "-A", str(folder)).stdout.decode().split()
        assert listed and (expected is None or set(listed) == expected), listed
        me.sh('for f in "$1"/*; do cat "$f" > /dev/null || exit 1; done', folder)
    assert not me.can_write(own) and not me.can_write(own / "receipts")  # only the daemon
    # the other channel's: nothing, not even the names
    me.cannot_list(theirs, theirs / "certs", theirs / "receipts")
    me.cannot_read(theirs / "ledger.csv", *(theirs / "certs").iterdir(),
                   *(theirs / "receipts").iterdir())  # fmt: skip
    # the administrators' view: nothing either
    me.cannot_list(outbox / "certs", outbox / "receipts", outbox / "ledger.parquet")
    me.cannot_read(outbox / "ledger.csv", outbox / "journal.csv", *(outbox / "certs").iterdir(),
                   *(outbox / "ledger.parquet").iterdir())  # fmt: skip


def _ledgers_are_projections(home: Path, me: Integrator, mine: set[str], absent: str) -> None:
    """The channel's ledger, as its user reads it: the full ledger's header and exactly the
    full ledger's lines of this channel, byte for byte, none of another person's."""
    own = me.read(home / "outbox" / me.canale / "ledger.csv")
    full = _lines((home / "outbox" / "ledger.csv").read_bytes())
    header, rows = full[0], full[1:]
    assert {_canale_of(header, line) for line in rows} == {"a", "b"}
    assert _lines(own) == [header, *(r for r in rows if _canale_of(header, r) == me.canale)]
    got = list(csv.DictReader(io.StringIO(own.decode("utf-8"))))
    assert {row["IdOperazione"] for row in got} == mine
    assert absent.encode() not in own


# -- canale add / retire ---------------------------------------------------------------------------
def test_canale_refusals_and_a_retired_channel(world: World, ca_template: Path) -> None:
    home = _home(world, ca_template)
    a = world.a
    unknown = f"cdt{secrets.token_hex(4)}nogroup"
    assert not _exists("group", unknown)
    for args, code in [
        (["add", "c", "--group", unknown], "GRUPPO_SCONOSCIUTO"),
        (["add", "Acme", "--group", a.group], "CANALE_NON_VALIDO"),
        (["add", "a.b", "--group", a.group], "CANALE_NON_VALIDO"),
        (["add", "ca", "--group", a.group], "CANALE_NON_VALIDO"),
        (["add", "a", "--group", a.group], "CANALE_ESISTENTE"),  # made by _home
        (["retire", "nessuno"], "CANALE_SCONOSCIUTO"),
    ]:
        status, _, err = _canale(home, *args)
        assert status == 1 and err.startswith(f"certdesk: {code}: "), (args, err)
    assert not (home / "inbox" / "c").exists() and not (home / "outbox" / "Acme").exists()
    listed = _canale(home, "list")[1]
    assert [line.split()[:2] for line in listed.splitlines()[1:]] == [
        ["a", world.a.group], ["b", world.b.group]
    ]

    a.drop(home, "before.csr", make_csr(41))
    _watch(home)
    before = _issued(home, "a", "before.csr")
    assert _canale(home, "retire", "a")[0] == 0
    assert not a.can_write(home / "inbox" / "a")
    assert world.b.can_write(home / "inbox" / "b")
    # what still arrives (put there by root) is refused, answered in the channel's outbox
    (home / "inbox" / "a" / "late.csr").write_bytes(make_csr(42))
    (home / "inbox" / "a" / "late.json").write_text(json.dumps(
        _annullamento(codice_fiscale(41), before)))  # fmt: skip
    _watch(home)
    for name in ("late.csr", "late.json"):
        assert _refused(home, "a", name) == ["CANALE_RITIRATO"]
        assert json.loads(a.read(receipt_path(home, name, canale="a")))["esito"] == "KO"
    assert _states(home)[before] == "ATTIVATO"
    a.read(home / "outbox" / "a" / "certs" / f"{before}.pem")  # its outbox stays readable
    assert os.listdir(home / "inbox" / "a") == []


# -- what is published anyway ----------------------------------------------------------------------
def test_the_published_ca_files_stay_readable_by_everyone(
    world: World, ca_template: Path
) -> None:
    home = _home(world, ca_template)
    shutil.rmtree(home / "outbox" / "ocsp")  # made again by the daemon, under its umask
    _watch(home)
    for name in ("root.pem", "issuing.pem", "chain.pem", "issuing.crl", "issuing.crl.pem"):
        world.a.read(home / "outbox" / "ca" / name)
    assert (home / "outbox" / "ocsp").stat().st_mode & 0o777 == 0o755
