"""certdesk.codes: one registry of error codes, held to docs/contract.md and to the source.

- every registered code is documented where its entry says (section 9's table, or its
  sentence listing the command line's codes), and every code documented there is
  registered;
- every code the source uses (``code="..."``, ``default_code``, a registry call) is
  registered, and a registry call with a literal code names exactly its placeholders;
- the formatting API: facts in, Italian sentence out; a wrong fact is a ValueError, an
  unknown code or case a KeyError.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from certdesk import errors
from certdesk.codes import REGISTRY, ErrorCode, message, refusal, refusal_as
from certdesk.errors import (
    CancellationRejected,
    CertdeskError,
    InputRejected,
    LedgerTampered,
    RequestRejected,
)

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "lib" / "certdesk"
CONTRACT = REPO / "docs" / "contract.md"
_CODE = r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+"
_REGISTRY_CALLS = {"refusal": 0, "message": 0, "refusal_as": 1}  # name: index of the code


# -- the contract ---------------------------------------------------------------------------
def _section_9() -> list[str]:
    lines = CONTRACT.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## 9."))
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
    )
    return lines[start + 1 : end]


def _table_codes() -> set[str]:
    """The codes in the first cell of each row of section 9's table."""
    codes: set[str] = set()
    for line in _section_9():
        if line.startswith("|") and not line.startswith(("| code", "| ---")):
            codes.update(re.findall(f"`({_CODE})`", line.split("|")[1]))
    return codes


def _cli_codes() -> set[str]:
    """The codes of section 9's paragraph on command-line errors."""
    section = _section_9()
    start = next(i for i, line in enumerate(section) if line.startswith("Command-line errors"))
    end = next((i for i in range(start, len(section)) if not section[i].strip()), len(section))
    return set(re.findall(f"`({_CODE})`", " ".join(section[start:end])))


def test_the_contract_lists_codes_in_both_places() -> None:
    assert {"FILE_VUOTO", "ERRORE_INTERNO", "NOTA_NON_VALIDA"} <= _table_codes()
    assert "CAMPO_NON_VALIDO" not in _table_codes()  # named in a "when" cell, retired
    assert {"CA_ESISTENTE", "CARTELLA_SOSTITUITA"} <= _cli_codes()


@pytest.mark.parametrize("entry", REGISTRY.values(), ids=list(REGISTRY))
def test_every_registered_code_is_documented_where_it_says(entry: ErrorCode) -> None:
    table, cli = _table_codes(), _cli_codes()
    if entry.contract == "table":
        assert entry.code in table and entry.code not in cli
    else:
        assert entry.code in cli and entry.code not in table


def test_every_documented_code_is_registered() -> None:
    assert sorted((_table_codes() | _cli_codes()) - REGISTRY.keys()) == []


# -- the source -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Use:
    where: str
    code: str
    case: str | None = None  # None: not a registry call, or a case computed at run time
    facts: frozenset[str] | None = None  # None: not a literal call (``**facts``)
    as_class: str | None = None


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else ""


def _text(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _uses() -> list[_Use]:
    found: list[_Use] = []
    for path in sorted(LIB.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(LIB)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "default_code" for t in node.targets
            ):
                code = _text(node.value)
                if code is not None:
                    found.append(_Use(where, code))
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                code = _text(keyword.value) if keyword.arg == "code" else None
                if code is not None:
                    found.append(_Use(where, code))
            index = _REGISTRY_CALLS.get(_name(node.func))
            if index is None or len(node.args) <= index:
                continue
            code = _text(node.args[index])
            if code is None:
                continue
            case_node = node.args[index + 1] if len(node.args) > index + 1 else None
            case = "" if case_node is None else _text(case_node)
            literal = all(k.arg is not None for k in node.keywords)
            facts = frozenset(str(k.arg) for k in node.keywords) if literal else None
            as_class = _name(node.args[0]) if index == 1 else None
            found.append(_Use(where, code, case, facts, as_class))
    return found


USES = _uses()


def test_the_scan_sees_the_sites() -> None:
    codes = {use.code for use in USES}
    assert {"CN_MANCANTE", "JSON_NON_VALIDO", "PASSPHRASE_MANCANTE", "NOTA_NON_VALIDA"} <= codes
    assert any(use.facts is not None and use.facts for use in USES)


def test_every_code_used_in_lib_is_registered() -> None:
    assert [f"{use.where}: {use.code}" for use in USES if use.code not in REGISTRY] == []


@pytest.mark.parametrize(
    "use",
    [use for use in USES if use.case is not None],
    ids=lambda use: use.where,
)
def test_a_literal_registry_call_names_a_case_and_exactly_its_facts(use: _Use) -> None:
    entry = REGISTRY[use.code]
    assert use.case is not None
    needed = entry.placeholders(use.case)  # KeyError: no such case
    if use.facts is not None:
        assert use.facts == needed, f"{use.where}: {use.code}/{use.case} takes {sorted(needed)}"
    if use.as_class:
        assert issubclass(getattr(errors, use.as_class), entry.raised_as)


def test_codes_chosen_at_run_time_share_their_sentences() -> None:
    """cancellation._text picks NOTA_NON_VALIDA or OPERATORE_NON_VALIDO at run time."""
    nota, operatore = REGISTRY["NOTA_NON_VALIDA"], REGISTRY["OPERATORE_NON_VALIDO"]
    assert nota.cases.keys() == operatore.cases.keys() == {"tipo", "lunghezza", "surrogato"}
    for case in nota.cases:
        assert nota.placeholders(case) == operatore.placeholders(case)


# -- the registry ---------------------------------------------------------------------------
_ENGLISH = re.compile(r"\b(the|is|not|must|cannot|please|drop|file is|was)\b", re.IGNORECASE)


@pytest.mark.parametrize("entry", REGISTRY.values(), ids=list(REGISTRY))
def test_every_sentence_is_italian_and_ends_as_a_sentence(entry: ErrorCode) -> None:
    for case, template in {"": entry.template, **entry.cases}.items():
        assert not _ENGLISH.search(template), (entry.code, case, template)
        assert template.rstrip().endswith((".", "?")), (entry.code, case)
        assert issubclass(entry.raised_as, CertdeskError)


def test_an_internal_error_does_not_ask_to_send_the_file_again_blindly() -> None:
    for case in ("", "quarantena"):
        text = message("ERRORE_INTERNO", case, errore="KeyError")
        assert "amministratore" in text and "prima di inviare di nuovo" in text
        assert "più tardi" not in text and "KeyError" in text


def test_message_fills_the_facts() -> None:
    text = message("CHIAVE_BLOCCATA", id_operazione="20250101-000000001", motivo="Furto")
    assert text.startswith("Questa chiave pubblica appartiene al certificato 20250101-000000001")
    assert "'Furto'" in text
    assert message("PERMESSI_CHIAVE_NON_SICURI", file="k.pem", permessi=0o644).count("0644") == 1
    assert "120 s" in message("RICEVUTA_NON_ARRIVATA", file="a.json", secondi=120.4)


def test_refusal_is_the_registered_class_with_code_and_sentence() -> None:
    error = refusal("CN_MANCANTE")
    assert type(error) is RequestRejected and error.code == "CN_MANCANTE"
    assert error.message == REGISTRY["CN_MANCANTE"].template
    assert str(error) == f"CN_MANCANTE: {error.message}"
    moved = refusal("CARTELLA_SOSTITUITA", "apertura", cartella="/srv/inbox")
    assert type(moved) is errors.FolderReplaced and moved.code == "CARTELLA_SOSTITUITA"
    ledger = refusal("REGISTRO_ALTERATO", "riga_assente", file="ledger.csv", id_operazione="x")
    assert isinstance(ledger, LedgerTampered) and ledger.code == "REGISTRO_ALTERATO"


def test_refusal_as_narrows_to_a_subclass_only() -> None:
    error = refusal_as(CancellationRejected, "FILE_TROPPO_GRANDE", "annullamento", limite_kib=64)
    assert type(error) is CancellationRejected and error.code == "FILE_TROPPO_GRANDE"
    assert type(refusal("FILE_TROPPO_GRANDE", limite_kib=64)) is InputRejected
    with pytest.raises(ValueError, match="raised as CancellationRejected"):
        refusal_as(RequestRejected, "JSON_NON_VALIDO", "bom")


def test_a_missing_or_extra_fact_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="missing facts \\['motivo'\\]"):
        refusal("CHIAVE_BLOCCATA", id_operazione="x")
    with pytest.raises(ValueError, match="unexpected facts \\['campo'\\]"):
        refusal("CN_MANCANTE", campo="CN")
    with pytest.raises(ValueError):
        message("FILE_TROPPO_GRANDE", "dimensione", limite_kib=64)


def test_an_unknown_code_or_case_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="unregistered error code 'CSR_NON_VALIDA'"):
        refusal("CSR_NON_VALIDA")
    with pytest.raises(KeyError, match="JSON_NON_VALIDO has no case 'bomb'"):
        refusal("JSON_NON_VALIDO", "bomb")
    with pytest.raises(KeyError):
        REGISTRY["CN_MANCANTE"].placeholders("nessuno")


def test_sent_values_are_shown_escaped_and_the_sentence_is_utf8() -> None:
    text = message(
        "CODICE_FISCALE_NON_VALIDO", campo="Il campo 'codice_fiscale'", valore="RSS\ud800\x00"
    )
    assert "'RSS\\ud800\\x00'" in text and "\x00" not in text
    text.encode("utf-8")
    # a fact that is not shown with !a still cannot break a receipt
    message("STATO_NON_ANNULLABILE", id_operazione="x\udc00", stato="ANNULLATO").encode("utf-8")


@pytest.mark.parametrize(
    "template",
    ["{}", "{0}", "{a.b}", "{a[0]}", "{a:{b}}"],
)
def test_templates_take_named_placeholders_only(template: str) -> None:
    with pytest.raises(ValueError, match="not a named placeholder"):
        ErrorCode("X_Y", CertdeskError, "cli", template)


def test_entries_are_checked_when_built() -> None:
    with pytest.raises(ValueError, match="UPPER_SNAKE_CASE"):
        ErrorCode("lower", CertdeskError, "cli", "Frase.")
    with pytest.raises(ValueError, match="template"):
        ErrorCode("X_Y", CertdeskError, "cli", "Frase.", {"": "Altra frase."})
    entry = ErrorCode("X_Y", CertdeskError, "cli", "{a} e {b!a} e {c:04o}.", {"k": "{d}."})
    assert entry.placeholders() == {"a", "b", "c"} and entry.placeholders("k") == {"d"}
    with pytest.raises(TypeError):
        entry.cases["k"] = "changed"  # type: ignore[index]


def test_a_refusal_without_a_registered_code_reports_an_internal_error() -> None:
    assert CertdeskError("x").code == InputRejected("x").code == "ERRORE_INTERNO"
    assert RequestRejected("x").code == CancellationRejected("x").code == "ERRORE_INTERNO"


# The calls the use-case modules (operations/, issuance, daemon/) make, as the lead will
# write them: each must format.
@pytest.mark.parametrize(
    ("cls", "code", "case", "facts"),
    [
        (RequestRejected, "FIRMA_NON_RIUSCITA", "", {}),
        (RequestRejected, "CHIAVE_BLOCCATA", "", {"id_operazione": "x", "motivo": "Furto"}),
        (RequestRejected, "CHIAVE_GIA_CERTIFICATA", "", {}),
        (InputRejected, "INPUT_TIPO_SCONOSCIUTO", "", {}),
        (InputRejected, "INPUT_TIPO_SCONOSCIUTO", "json", {}),
        (InputRejected, "CHIAVE_PRIVATA_RICEVUTA", "", {}),
        (InputRejected, "ERRORE_INTERNO", "quarantena", {"errore": "KeyError"}),
        (RequestRejected, "ERRORE_INTERNO", "", {"errore": "KeyError"}),
        (InputRejected, "INPUT_NON_LEGGIBILE", "", {"errore": "Permission denied"}),
        (CertdeskError, "DAEMON_GIA_ATTIVO", "", {"pid": "123"}),
        (errors.FolderReplaced, "CARTELLA_SOSTITUITA", "apertura", {"cartella": "/h/inbox"}),
        (
            errors.FolderReplaced, "CARTELLA_SOSTITUITA", "scomparsa",
            {"etichetta": "inbox/", "cartella": "/h/inbox", "errore": "No such file"},
        ),
        (
            errors.FolderReplaced, "CARTELLA_SOSTITUITA", "",
            {"etichetta": "inbox/", "cartella": "/h/inbox"},
        ),
        (errors.StoreError, "ARCHIVIO_NON_DISPONIBILE", "versione_futura",
         {"versione": 3, "ultima": 2}),
        (errors.StoreError, "ARCHIVIO_NON_DISPONIBILE", "non_archivio", {"tabelle": "a, b"}),
    ],
)  # fmt: skip
def test_the_use_case_modules_calls_format(
    cls: type[CertdeskError], code: str, case: str, facts: dict[str, object]
) -> None:
    error = refusal_as(cls, code, case, **facts)
    assert isinstance(error, cls) and error.code == code and error.message
