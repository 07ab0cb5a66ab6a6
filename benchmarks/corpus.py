"""The CSR corpus: distinct RSA-2048 client keys and distinct, valid codici fiscali.

Generating RSA keys is the slow part (tens of milliseconds each), so the corpus is made
once, in a process pool, and cached in ``benchmarks/.cache/`` (git-ignored): one PEM file
that only ever grows. CSR ``i`` always carries the codice fiscale ``codice_fiscale(i)``,
so a cached corpus stays valid across runs. The private keys are not kept: the benchmarks
need only the requests.
"""

from __future__ import annotations

import os
import string
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from stdnum import luhn
from stdnum.it import codicefiscale

__all__ = ["CACHE", "codice_fiscale", "load_corpus"]

CACHE = Path(__file__).resolve().parent / ".cache"
_CORPUS_FILE = "csr-rsa2048-v1.pem"
_END = b"-----END CERTIFICATE REQUEST-----\n"
_LETTERS = string.ascii_uppercase
_MONTHS = "ABCDEHLMPRST"  # the codice fiscale's month letters


def codice_fiscale(i: int) -> str:
    """The ``i``-th synthetic codice fiscale: distinct for every ``i`` below 26**6.

    One in ten is a company (11 digits, the partita IVA's Luhn check digit), the rest people
    (16 characters, a valid birth date, check character).
    """
    if i % 10 == 9:
        # 7-digit matricola, then an office code 001..100: what stdnum's iva accepts.
        prefix = f"{1_000_000 + i // 10:07d}{1 + (i // 10) % 100:03d}"
        return prefix + luhn.calc_check_digit(prefix)
    n = i
    letters = []
    for _ in range(6):
        letters.append(_LETTERS[n % 26])
        n //= 26
    mix = (i * 2_654_435_761) & 0xFFFFFFFF  # spread birth data without colliding names
    year = 40 + mix % 60
    month = _MONTHS[(mix >> 8) % 12]
    day = 1 + (mix >> 12) % 28 + (40 if (mix >> 20) & 1 else 0)
    town = f"{_LETTERS[(mix >> 21) % 26]}{(mix >> 3) % 1000:03d}"
    prefix = f"{''.join(letters)}{year:02d}{month}{day:02d}{town}"
    return prefix + codicefiscale.calc_check_digit(prefix)


def _make_csrs(indices: list[int]) -> bytes:
    out = []
    for i in indices:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "IT"),
                x509.NameAttribute(NameOID.COMMON_NAME, codice_fiscale(i)),
            ]
        )
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
        out.append(csr.public_bytes(serialization.Encoding.PEM))
    return b"".join(out)


def _read(path: Path) -> list[bytes]:
    if not path.exists():
        return []
    data = path.read_bytes()
    parts = data.split(_END)
    # A run killed while appending leaves a partial last request: drop it.
    return [p + _END for p in parts[:-1]]


def load_corpus(count: int, *, cache: Path = CACHE, log: bool = True) -> list[bytes]:
    """``count`` PEM CSRs with distinct keys and codici fiscali (generated once, cached)."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / _CORPUS_FILE
    have = _read(path)
    if len(have) < count:
        missing = list(range(len(have), count))
        if log:
            print(f"corpus: generating {len(missing)} RSA-2048 client keys and CSRs (cached)")
        chunks = [missing[i : i + 25] for i in range(0, len(missing), 25)]
        with (
            ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool,
            open(path, "r+b" if path.exists() else "wb") as fh,
        ):
            # Rewrite from the last complete request, then append chunk by chunk.
            fh.seek(sum(len(p) for p in have))
            fh.truncate()
            for block in pool.map(_make_csrs, chunks):
                fh.write(block)
                fh.flush()
        have = _read(path)
    return have[:count]
