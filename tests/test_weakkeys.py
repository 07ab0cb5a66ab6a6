"""Weak RSA moduli (``weakkeys.py``), refused as Let's Encrypt's ``goodkey`` does: a small
common factor, and primes close enough for Fermat's method."""

from __future__ import annotations

import math
import random
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from certdesk.weakkeys import weakness
from conftest import CsrFactory, rejected


def _is_probable_prime(n: int) -> bool:
    if n < 4:
        return n in (2, 3)
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


#: The product of the odd primes below 3000: a number above them that shares a factor with
#: it is composite (one gcd, much cheaper than the Miller-Rabin rounds it spares).
_SMALL_PRIMES = math.prod(
    p for p in range(3, 3000, 2) if all(p % d for d in range(3, math.isqrt(p) + 1, 2))
)


def _next_prime(n: int) -> int:
    n |= 1
    assert n > 3000
    while not (
        math.gcd(n, _SMALL_PRIMES) == 1 and _is_probable_prime(n) and (n - 1) % 65537
    ):
        n += 2
    return n


def _key_from_primes(p: int, q: int) -> rsa.RSAPrivateKey:
    e = 65537
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p, q=q, d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p), dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(e, p * q),
    )  # fmt: skip
    return numbers.private_key(unsafe_skip_rsa_key_validation=True)


def _csr_with(key: rsa.RSAPrivateKey) -> bytes:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "RSSMRA80A01H501U")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )


def test_fermat_close_primes_are_refused() -> None:
    rng = random.Random(5)
    p = _next_prime(rng.getrandbits(1024) | (1 << 1023))
    q = _next_prime(p + 2)
    error = rejected(_csr_with(_key_from_primes(p, q)))
    assert error.code == "CHIAVE_DEBOLE"
    assert "Fermat" in error.message


def _fermat_round(n: int, rounds: int) -> int | None:
    """The round in which plain Fermat factorisation splits ``n`` (None: not within rounds)."""
    a = math.isqrt(n)
    a += a * a < n
    for i in range(rounds):
        b2 = a * a - n
        if math.isqrt(b2) ** 2 == b2:
            return i
        a += 1
    return None


@pytest.mark.parametrize("target_round", [1, 40, 99, 101, 150])
def test_fermat_check_agrees_with_plain_fermat(target_round: int) -> None:
    """The residue filters skip rounds, never hits: the check finds exactly what plain
    Fermat finds in 100 rounds, also late ones, and nothing later (goodkey's bound)."""
    rng = random.Random(target_round)
    p = _next_prime(rng.getrandbits(1024) | (1 << 1023))
    # (q - p)^2 / (8 sqrt(n)) rounds are needed when q - p is larger than ~ n^(1/4).
    q = _next_prime(p + math.isqrt(8 * target_round * p))
    found = _fermat_round(p * q, 300)
    assert found is not None and abs(found - target_round) <= 2
    assert (weakness(p * q) is not None) == (found < 100)


def test_small_factor_is_refused() -> None:
    q = int(
        subprocess.run(
            ["openssl", "prime", "-generate", "-bits", "2042"],
            check=True, capture_output=True, text=True,
        ).stdout
    )  # fmt: skip
    assert (q - 1) % 65537
    error = rejected(_csr_with(_key_from_primes(631, q)))
    assert error.code == "CHIAVE_DEBOLE"


def test_normal_modulus_has_no_weakness(csrs: CsrFactory) -> None:
    key = serialization.load_pem_private_key(csrs.key().read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert weakness(key.public_key().public_numbers().n) is None
