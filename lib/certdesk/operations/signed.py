"""A signed annullamento (``NOME.json.p7m``): proof of possession of one certificate's key.

The holder of a certificate may cancel it from any channel by signing the annullamento's
JSON with the certificate's own key, as a CMS attached signature (``cms_proof``): the
``.p7m`` every Italian user already makes. What it proves, and so what it may cancel, is
that one certificate (``channels.Authority.of_holder``), and only when:

1. the file is a CMS SignedData with the document inside and one signer (else
   ``P7M_NON_VALIDO``), and the document names exactly one IdOperazione;
2. that IdOperazione is a certificate of the codice fiscale named (else
   ``ID_OPERAZIONE_NON_TROVATO``, the answer for an unknown one);
3. the signer the CMS names is that certificate, as this CA issued it (the store's copy,
   never the one the file carries): another certificate of this CA is
   ``FIRMATARIO_DIVERSO``, one this CA did not issue ``FIRMATARIO_NON_TITOLARE``;
4. the signature verifies with that certificate's key (else ``FIRMA_NON_VALIDA``).

Everything after that (only ``ATTIVATO`` can be cancelled) is the rule of every
annullamento. A cumulative annullamento needs the channel's authority: a ``.p7m`` names one.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..cancellation import CancellationRequest, load_cancellation_document
from ..channels import Authority
from ..cms_proof import CmsRefused, SignedMessage, open_signed
from ..codes import refusal
from ..store import Store

__all__ = ["holder_authority", "open_signed_cancellation"]

_STRUCTURE = frozenset(
    {"non_der", "non_firmato", "staccato", "firmatari", "contenuto", "algoritmo"}
)


def open_signed_cancellation(data: bytes) -> tuple[dict[str, object], SignedMessage]:
    """The annullamento document a ``.p7m`` holds, and the signature to check later.
    Raises CancellationRejected only."""
    try:
        message = open_signed(data)
    except CmsRefused as exc:
        raise _structure_refusal(exc) from None
    return load_cancellation_document(message.content), message


def holder_authority(
    store: Store, message: SignedMessage, request: CancellationRequest, canale: str
) -> Authority:
    """The authority a signed annullamento proves: its one certificate, once checked."""
    if len(request.id_operazione) != 1:
        raise refusal("P7M_NON_VALIDO", "id_operazione", numero=len(request.id_operazione))
    id_op = request.id_operazione[0]
    record = store.get(id_op)
    der = None
    if record is not None and record.codice_fiscale == request.codice_fiscale:
        der = store.certificate_der(id_op)
    if der is None:  # unknown, someone else's, or never signed: one answer for all
        raise refusal(
            "ID_OPERAZIONE_NON_TROVATO", id_operazione=id_op, codice_fiscale=request.codice_fiscale
        )
    certificate = x509.load_der_x509_certificate(der)
    if not message.signer.matches(certificate):
        code = "FIRMATARIO_DIVERSO" if _signed_by_this_ca(store, message) else ""
        raise refusal(code or "FIRMATARIO_NON_TITOLARE", id_operazione=id_op)
    try:
        message.verify_with(certificate)
    except CmsRefused as exc:
        if exc.case in _STRUCTURE:
            raise _structure_refusal(exc) from None
        case = "impronta" if exc.case == "impronta" else ""
        facts = {} if case else {"id_operazione": id_op}
        raise refusal("FIRMA_NON_VALIDA", case, **facts) from None
    return Authority.of_holder(canale, id_op)


def _signed_by_this_ca(store: Store, message: SignedMessage) -> bool:
    """Whether the signer the CMS names is a certificate this CA issued: by its issuer
    and serial, or by a certificate the file carries that is byte for byte one of ours."""
    signer = message.signer
    candidates: list[bytes] = []
    named = format(signer.serial, "x") if signer.serial is not None else ""
    if named and (ours := store.certificate_with_serial(named)) is not None:
        candidates.append(ours)
    for carried in message.certificates:
        if signer.matches(carried):
            ours = store.certificate_with_serial(format(carried.serial_number, "x"))
            if ours is not None and ours == carried.public_bytes(Encoding.DER):
                return True
    return any(signer.matches(x509.load_der_x509_certificate(der)) for der in candidates)


def _structure_refusal(exc: CmsRefused) -> Exception:
    """P7M_NON_VALIDO with the case ``cms_proof`` found, and the facts its sentence names;
    FIRMA_NON_VALIDA for a document changed after signing, which ``open_signed`` already
    finds when the signed attributes carry its digest (what ``openssl cms -sign`` writes)."""
    facts = exc.facts
    if exc.case == "impronta":
        return refusal("FIRMA_NON_VALIDA", "impronta")
    if exc.case == "firmatari":
        return refusal("P7M_NON_VALIDO", "firmatari", numero=facts.get("firmatari", "?"))
    if exc.case == "contenuto":
        kind = facts.get("tipo") or "diverso da quello dichiarato negli attributi firmati"
        return refusal("P7M_NON_VALIDO", "contenuto", tipo=kind)
    if exc.case == "algoritmo":
        name = facts.get("firma") or facts.get("digest") or "?"
        return refusal("P7M_NON_VALIDO", "algoritmo", algoritmo=name)
    if exc.case in ("non_firmato", "staccato"):
        return refusal("P7M_NON_VALIDO", exc.case)
    return refusal("P7M_NON_VALIDO", "non_der")
