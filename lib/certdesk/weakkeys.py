"""Refuse RSA moduli that are cheap to factor, as Let's Encrypt's ``goodkey`` does.

Two checks that cost well under a millisecond: a common factor with the product of the
primes below 752 (a broken generator), and Fermat's method for primes too close to each
other (|p - q| small, e.g. the 2022 "Fermat" printer keys, CVE-2022-26320).
"""

from __future__ import annotations

import math

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


def weakness(modulus: int) -> str | None:
    """Why ``modulus`` is weak, or None when neither check finds a factor."""
    if math.gcd(modulus, _SMALL_PRIMES_PRODUCT) != 1:
        return "the modulus has a small prime factor"
    a = math.isqrt(modulus)
    if a * a < modulus:
        a += 1
    for _ in range(_FERMAT_ROUNDS):
        b2 = a * a - modulus
        b = math.isqrt(b2)
        if b * b == b2:
            return "the modulus' two primes are too close to each other (Fermat factorisation)"
        a += 1
    return None
