"""The contract's rules as pure decisions: no disk, no store, no daemon, microseconds each.

``issuance.decide_request`` (repeats, blocked keys, one key one codice fiscale),
``cancellation.decide_cancellation`` (only ATTIVATO, the first is cumulative, later ones
name one), ``states.check_transition`` (the diagram), and the receipt as a value.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from certdesk.cancellation import CancellationRequest, decide_cancellation, is_first_cancellation
from certdesk.errors import CancellationRejected, InvalidTransition
from certdesk.issuance import Accept, KeyFacts, Refuse, Repeat, decide_request
from certdesk.reasons import Motivazione
from certdesk.receipts import Receipt, Tipo, cancellation_receipt, request_receipt
from certdesk.records import RequestRecord
from certdesk.states import Stato, check_transition

ME = "RSSMRA80A01H501U"
OTHER = "VRDGPP70B02F205X"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
_ids = itertools.count(1)


def _record(cf: str = ME, stato: Stato = Stato.ATTIVATO, motivazione: str = "") -> RequestRecord:
    return RequestRecord(
        id_operazione=f"20261201-{next(_ids):09d}",
        codice_fiscale=cf,
        profilo="PERSONA_FISICA",
        stato=stato,
        data_richiesta=NOW,
        esito="OK",
        file_origine="x.csr",
        seriale="1abc" if stato is not Stato.RIFIUTATO else "",
        motivazione=motivazione,
        data_annullamento=NOW if stato is Stato.ANNULLATO else None,
    )


# -- issuance.decide_request --------------------------------------------------------------
def test_a_new_key_is_accepted() -> None:
    assert decide_request(ME, same_input=None, key=KeyFacts([])) == Accept()


def test_the_same_bytes_again_are_a_repeat_before_any_other_rule() -> None:
    earlier = _record()
    blocked = _record(stato=Stato.ANNULLATO, motivazione="CHIAVE_SMARRITA")
    decision = decide_request(ME, same_input=earlier, key=KeyFacts([blocked]))
    assert decision == Repeat(earlier)


@pytest.mark.parametrize("motivazione", [m.value for m in Motivazione])
def test_a_key_cancelled_as_lost_or_stolen_is_blocked_for_ever(motivazione: str) -> None:
    cancelled = _record(stato=Stato.ANNULLATO, motivazione=motivazione)
    decision = decide_request(ME, same_input=None, key=KeyFacts([cancelled]))
    if Motivazione(motivazione).blocks_key:
        assert isinstance(decision, Refuse) and decision.error.code == "CHIAVE_BLOCCATA"
        assert cancelled.id_operazione in decision.error.message
    else:  # the same person may certify the same key again
        assert decision == Accept()


def test_a_key_certified_for_someone_else_is_refused() -> None:
    decision = decide_request(ME, same_input=None, key=KeyFacts([_record(cf=OTHER)]))
    assert isinstance(decision, Refuse) and decision.error.code == "CHIAVE_GIA_CERTIFICATA"


def test_a_key_asked_for_by_someone_else_earlier_in_the_chunk_is_refused() -> None:
    decision = decide_request(ME, same_input=None, key=KeyFacts([], asked_in_chunk_by=OTHER))
    assert isinstance(decision, Refuse) and decision.error.code == "CHIAVE_GIA_CERTIFICATA"
    assert decide_request(ME, same_input=None, key=KeyFacts([], asked_in_chunk_by=ME)) == Accept()


def test_a_key_the_same_person_already_holds_is_accepted() -> None:
    assert decide_request(ME, same_input=None, key=KeyFacts([_record()])) == Accept()


# -- cancellation.decide_cancellation ------------------------------------------------------
def _request(*ids: str, cf: str = ME) -> CancellationRequest:
    return CancellationRequest(
        codice_fiscale=cf, id_operazione=ids, motivazione=Motivazione.ALTRO, nota="n",
        operatore="op",
    )  # fmt: skip


def _code(call: object) -> str:
    assert callable(call)
    with pytest.raises(CancellationRejected) as refused:
        call()
    return refused.value.code


def test_the_first_cancellation_is_cumulative() -> None:
    mine = [_record(), _record()]
    targets = decide_cancellation(_request(), {}, mine, first=True)
    assert targets == mine
    one = mine[0]
    assert decide_cancellation(_request(one.id_operazione), {one.id_operazione: one}, mine,
                               first=True) == mine  # fmt: skip


def test_a_first_cancellation_with_nothing_active_is_refused() -> None:
    assert _code(lambda: decide_cancellation(_request(), {}, [], first=True)) == (
        "NESSUN_CERTIFICATO_ATTIVO"
    )


def test_later_cancellations_name_exactly_one() -> None:
    a, b = _record(), _record()
    named = {a.id_operazione: a, b.id_operazione: b}
    assert decide_cancellation(_request(a.id_operazione), named, [a, b], first=False) == [a]
    for ids in ((), (a.id_operazione, b.id_operazione)):
        call = lambda ids=ids: decide_cancellation(  # noqa: E731
            _request(*ids), named, [a, b], first=False
        )
        assert _code(call) == "UN_SOLO_ID_OPERAZIONE"


@pytest.mark.parametrize("stato", [Stato.ANNULLATO, Stato.SCADUTO, Stato.RIFIUTATO,
                                   Stato.IN_GENERAZIONE])  # fmt: skip
def test_only_attivato_can_be_cancelled(stato: Stato) -> None:
    record = _record(stato=stato)
    call = lambda: decide_cancellation(  # noqa: E731
        _request(record.id_operazione), {record.id_operazione: record}, [], first=False
    )
    assert _code(call) == "STATO_NON_ANNULLABILE"


def test_someone_elses_or_an_unknown_certificate_is_not_found_alike() -> None:
    theirs = _record(cf=OTHER)
    for named in ({theirs.id_operazione: theirs}, {theirs.id_operazione: None}):
        call = lambda named=named: decide_cancellation(  # noqa: E731
            _request(theirs.id_operazione), named, [], first=False
        )
        assert _code(call) == "ID_OPERAZIONE_NON_TROVATO"


# -- states.check_transition -----------------------------------------------------------------
ALLOWED = {
    (None, Stato.IN_GENERAZIONE), (None, Stato.RIFIUTATO),
    (Stato.IN_GENERAZIONE, Stato.ATTIVATO), (Stato.IN_GENERAZIONE, Stato.RIFIUTATO),
    (Stato.ATTIVATO, Stato.SCADUTO), (Stato.ATTIVATO, Stato.ANNULLATO),
}  # fmt: skip


@pytest.mark.parametrize(("current", "target"), list(itertools.product([None, *Stato], Stato)))
def test_the_state_diagram(current: Stato | None, target: Stato) -> None:
    if (current, target) in ALLOWED:
        check_transition(current, target)
    else:
        with pytest.raises(InvalidTransition):
            check_transition(current, target)


# -- receipts --------------------------------------------------------------------------------
def test_a_receipt_is_a_value_that_round_trips_through_its_document() -> None:
    accepted = request_receipt("a.csr", _record())
    cancelled = cancellation_receipt("c.json", [_record(stato=Stato.ANNULLATO,
                                                         motivazione="ALTRO")])  # fmt: skip
    for receipt in (accepted, cancelled):
        assert Receipt.from_document(receipt.to_document()) == receipt
    assert not accepted.quarantined and accepted.cancelled == ()
    assert cancelled.cancelled == cancelled.id_operazione
    assert list(cancelled.to_document()) == [
        "file", "tipo", "esito", "id_operazione", "stato", "certificato", "data_richiesta",
        "data_scadenza", "errori", "annullati",
    ]  # fmt: skip


def test_a_refused_receipt_goes_to_quarantine_and_names_its_code() -> None:
    receipt = Receipt(file="x.txt", tipo=Tipo.SCONOSCIUTO.value, esito="KO")
    assert receipt.quarantined and receipt.outcome.codice == ""
    assert Tipo.of("A.CSR") is Tipo.RICHIESTA and Tipo.of("b.json") is Tipo.ANNULLAMENTO
    assert Tipo.of("c.pem") is Tipo.SCONOSCIUTO


def test_first_means_never_cancelled_before() -> None:
    assert is_first_cancellation([])
    assert is_first_cancellation([Stato.ATTIVATO, Stato.SCADUTO, "RIFIUTATO"])
    assert not is_first_cancellation([Stato.ATTIVATO, "ANNULLATO"])
