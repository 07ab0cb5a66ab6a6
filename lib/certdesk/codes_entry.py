"""One entry of the error-code registry (``certdesk.codes``): a code and its sentences.

An ``ErrorCode`` holds:

- ``code``: the stable UPPER_SNAKE_CASE code;
- ``raised_as``: the exception class every refusal with this code is an instance of;
- ``contract``: where docs/contract.md (section 9) documents it: a row of the table
  (``"table"``) or the sentence listing the command line's codes (``"cli"``);
  tests/test_codes.py holds the registry and the contract to each other;
- ``template`` and ``cases``: the sentence, and the code's other sentences by name, as
  ``str.format`` templates whose named placeholders are the facts a site adds (the field,
  the limit, the IdOperazione...). A value written by the sender is shown with ``!a``.

The entries themselves are in ``codes_inputs`` (the table: what a receipt can carry) and
``codes_cli`` (the command line's codes); ``codes`` gathers them into the registry.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from .errors import CertdeskError

__all__ = ["ErrorCode"]

_CODE_SHAPE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
_FORMATTER = string.Formatter()


def _placeholders(template: str) -> frozenset[str]:
    """The named fields of ``template``; anything but ``{name}``, ``{name!a}`` or
    ``{name:spec}`` (a positional ``{}``, ``{a.b}``, ``{a[0]}``) is refused."""
    names: set[str] = set()
    for _text, name, spec, _conversion in _FORMATTER.parse(template):
        if name is None:
            continue
        if not name.isidentifier() or "{" in (spec or ""):
            raise ValueError(f"not a named placeholder: {{{name}}} in {template!r}")
        names.add(name)
    return frozenset(names)


@dataclass(frozen=True)
class ErrorCode:
    code: str
    raised_as: type[CertdeskError]
    contract: Literal["table", "cli"]
    template: str
    cases: Mapping[str, str] = field(default_factory=dict)
    _fields: Mapping[str, frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _CODE_SHAPE.fullmatch(self.code):
            raise ValueError(f"not an UPPER_SNAKE_CASE code: {self.code!r}")
        if "" in self.cases:
            raise ValueError(f"{self.code}: the sentence without a case is ``template``")
        templates = {"": self.template, **self.cases}
        object.__setattr__(self, "cases", MappingProxyType(dict(self.cases)))
        object.__setattr__(
            self,
            "_fields",
            MappingProxyType({case: _placeholders(text) for case, text in templates.items()}),
        )

    def placeholders(self, case: str = "") -> frozenset[str]:
        """The facts the sentence of ``case`` ("" for ``template``) needs."""
        try:
            return self._fields[case]
        except KeyError:
            known = ", ".join(sorted(self.cases)) or "none"
            raise KeyError(f"{self.code} has no case {case!r} (its cases: {known})") from None

    def format(self, case: str = "", /, **facts: object) -> str:
        """The sentence of ``case`` with ``facts``: exactly the placeholders it names."""
        needed = self.placeholders(case)
        missing, extra = needed - facts.keys(), facts.keys() - needed
        if missing or extra:
            raise ValueError(
                f"{self.code}{'/' + case if case else ''}: missing facts {sorted(missing)}, "
                f"unexpected facts {sorted(extra)}"
            )
        text = (self.cases[case] if case else self.template).format(**facts)
        # Receipts and the store hold UTF-8: a lone surrogate in a fact (a JSON "\ud800"
        # escape echoed back) would fail the refusal itself, and the run with it.
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
