"""A .p7m sent as text: the base64 of its DER, bare or in a PEM block, turned back into
the bytes ``cms_proof`` reads.

Signing tools and mail gateways hand a .p7m out as base64 as often as in binary:
``openssl cms -outform PEM`` writes ``-----BEGIN CMS-----``, ``openssl smime -pk7out`` and
older tools ``-----BEGIN PKCS7-----``, and some tools and PEC attachments a bare base64
file. What is taken: one PEM block with one of those labels, or none, with nothing but
whitespace around it (a UTF-8 BOM allowed before); inside, the standard base64 alphabet
with its padding, its lines broken anywhere by whitespace; decoded, a DER SEQUENCE.
Anything else comes back unchanged, so the parser's refusal ("non_der") speaks of the bytes
as they came. Only character classes and slices: linear in the length, whatever the bytes.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["unarmored"]

_LABELS = frozenset({b"CMS", b"PKCS7", b"PKCS #7 SIGNED DATA"})
_BOM = b"\xef\xbb\xbf"
_BASE64 = re.compile(rb"[A-Za-z0-9+/=\s]+")
_SEQUENCE = 0x30


def unarmored(data: bytes) -> bytes:
    """The DER ``data`` carries as base64 text, or ``data`` itself."""
    if not data or data[0] == _SEQUENCE:
        return data  # binary already: the common case, untouched
    text = data.removeprefix(_BOM).strip()
    body = _pem_body(text) if text.startswith(b"-----BEGIN ") else text
    if body is None or _BASE64.fullmatch(body) is None:
        return data
    try:
        decoded = base64.b64decode(b"".join(body.split()), validate=True)
    except binascii.Error:
        return data
    return decoded if decoded[:1] == bytes([_SEQUENCE]) else data


def _pem_body(text: bytes) -> bytes | None:
    """Between ``-----BEGIN <label>-----`` and its own END line, for a .p7m's labels."""
    first, _, rest = text.partition(b"\n")
    first = first.strip()
    if not first.endswith(b"-----"):
        return None
    label = first[len(b"-----BEGIN ") : -len(b"-----")]
    end = b"-----END " + label + b"-----"
    if label not in _LABELS or not rest.endswith(end):
        return None
    return rest[: -len(end)]
