"""Refuse RSA moduli that are cheap to factor, as Let's Encrypt's ``goodkey`` does.

Two checks that cost well under a millisecond: a common factor with the product of the
primes below 752 (a broken generator), and Fermat's method for primes too close to each
other (|p - q| small, e.g. the 2022 "Fermat" printer keys, CVE-2022-26320).
"""

from __future__ import annotations

import math
from typing import Literal

__all__ = ["weakness"]

_FERMAT_ROUNDS = 100
_SMALL_PRIME_BOUND = 752


def _primes_below(bound: int) -> list[int]:
    sieve = bytearray([1]) * bound
    sieve[0:2] = b"\x00\x00"
    for i in range(2, math.isqrt(bound) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytearray(len(sieve[i * i :: i]))
    return [i for i, is_prime in enumerate(sieve) if is_prime]


_SMALL_PRIMES_PRODUCT = math.prod(_primes_below(_SMALL_PRIME_BOUND))


# Squares modulo small numbers: a value that is not a square modulo one of these is not a
# perfect square. Together they rule out all but ~1 % of Fermat's rounds with small-integer
# arithmetic, so only those few pay for a 2048-bit ``isqrt`` (goodkey's trick too).
def _squares_mod(m: int) -> bytes:
    table = bytearray(m)
    for x in range(m):
        table[x * x % m] = 1
    return bytes(table)


_SQ64, _SQ63, _SQ65, _SQ11 = (_squares_mod(m) for m in (64, 63, 65, 11))
_FILTER_MODULUS = 64 * 63 * 65 * 11


def weakness(modulus: int) -> Literal["fattore_piccolo", "primi_vicini"] | None:
    """Why ``modulus`` is weak, as its ``CHIAVE_DEBOLE`` case in ``certdesk.codes``: a small
    prime factor, or two primes close enough for Fermat; None when neither check finds one."""
    if math.gcd(modulus, _SMALL_PRIMES_PRODUCT) != 1:
        return "fattore_piccolo"
    # Fermat: is a*a - n a square b*b for one of the first rounds of a = ceil(sqrt(n)),
    # a+1, ...? Then n = (a - b)(a + b). a*a - n is followed modulo _FILTER_MODULUS
    # ((a+1)^2 - a^2 = 2a + 1), and computed in full only when the filters let it pass.
    a = math.isqrt(modulus)
    if a * a < modulus:
        a += 1
    residue = (a * a - modulus) % _FILTER_MODULUS
    step = (2 * a + 1) % _FILTER_MODULUS
    for offset in range(_FERMAT_ROUNDS):
        if (
            _SQ64[residue & 63]
            and _SQ63[residue % 63]
            and _SQ65[residue % 65]
            and _SQ11[residue % 11]
        ):
            b2 = (a + offset) ** 2 - modulus
            b = math.isqrt(b2)
            if b * b == b2:
                return "primi_vicini"
        residue = (residue + step) % _FILTER_MODULUS
        step = (step + 2) % _FILTER_MODULUS
    return None
