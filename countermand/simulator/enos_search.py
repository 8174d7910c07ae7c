"""The body of an EnOS command search (``POST /commands?action=search``), parsed strictly.

The body is a JSON object with two optional keys (any other key is refused):

* ``expression``: a string in the small query language below; absent or blank: every command.
* ``pagination``: ``{"pageNo": 1.., "pageSize": 1..1000}``, by default page 1 of 100.

Expression grammar (keywords and field names are case-sensitive)::

    expression := condition ( "and" condition )*
    condition  := field ( "=" | ">" | "<" ) value
                | field "in" "(" value ( "," value )* ")"
    field      := "state" | "createTime"                                  (numbers)
                | "commandName" | "assetId" | "productKey" | "deviceKey"  (strings)
    value      := integer                  e.g. 1, 1770724800000, -5
                | 'single-quoted string'   no quote inside; no escapes

Number fields take number values, string fields string values; ``>`` and ``<`` compare numbers
only (``state``, ``createTime`` in epoch milliseconds). ``commandName`` is the command's name
(``commandName.defaultValue``). Anything else raises ``SearchError`` naming the problem and,
in an expression, its character position (counted from 0): the gateway answers 1004.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from countermand.simulator.state import EnosCommand

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
# field -> (takes numbers, the record's value)
FIELDS: dict[str, tuple[bool, Callable[[EnosCommand], int | str]]] = {
    "state": (True, lambda r: r.state),
    "createTime": (True, lambda r: r.create_time),
    "commandName": (False, lambda r: r.command_name),
    "assetId": (False, lambda r: r.asset_id),
    "productKey": (False, lambda r: r.product_key),
    "deviceKey": (False, lambda r: r.device_key),
}
_TOKEN = re.compile(
    r"\s*(?:(?P<number>-?[0-9]+(?!\w))|(?P<string>'[^']*')|(?P<word>[A-Za-z_]\w*)|(?P<punct>[=<>(),]))",
    re.ASCII,
)


class SearchError(ValueError):
    """A search body that cannot be run; the message names the problem."""


class _Token(NamedTuple):
    kind: str  # number, string, word, punct, end
    text: str
    pos: int

    def describe(self) -> str:
        return "the end" if self.kind == "end" else repr(self.text)


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: str  # =, >, <, in
    values: tuple[int | str, ...]

    def matches(self, record: EnosCommand) -> bool:
        value = FIELDS[self.field][1](record)
        if self.op in ("=", "in"):
            return value in self.values
        bound = self.values[0]
        assert isinstance(value, int) and isinstance(bound, int)  # parse checked the types
        return value > bound if self.op == ">" else value < bound


@dataclass(frozen=True, slots=True)
class Search:
    conditions: tuple[Condition, ...]
    page_no: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    def matches(self, record: EnosCommand) -> bool:
        return all(condition.matches(record) for condition in self.conditions)


def tokens(text: str) -> list[_Token]:
    found, pos = [], 0
    while text[pos:].strip():
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            at = len(text) - len(text[pos:].lstrip())
            what = "an unterminated string" if text[at] == "'" else f"character {text[at]!r}"
            raise SearchError(f"expression: {what} at position {at}")
        found.append(_Token(match.lastgroup, match[match.lastgroup], match.start(match.lastgroup)))
        pos = match.end()
    return [*found, _Token("end", "", len(text))]


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokens(text)
        self.index = 0

    def next(self) -> _Token:
        token = self.tokens[self.index]
        self.index += token.kind != "end"
        return token

    def fail(self, expected: str, token: _Token) -> SearchError:
        found = token.describe()
        return SearchError(
            f"expression: expected {expected} at position {token.pos}, found {found}"
        )

    def expression(self) -> tuple[Condition, ...]:
        conditions = [self.condition()]
        while (token := self.next()).text == "and" and token.kind == "word":
            conditions.append(self.condition())
        if token.kind != "end":
            raise self.fail("'and' or the end", token)
        return tuple(conditions)

    def condition(self) -> Condition:
        token = self.next()
        if token.kind != "word" or token.text not in FIELDS:
            raise self.fail(f"a field ({', '.join(FIELDS)})", token)
        field, numeric = token.text, FIELDS[token.text][0]
        op = self.next()
        if op.kind == "word" and op.text == "in":
            return Condition(field, "in", self.value_list(field))
        if op.kind != "punct" or op.text not in ("=", "<", ">"):
            raise self.fail(f"=, >, < or in after {field}", op)
        if op.text != "=" and not numeric:
            raise SearchError(f"expression: {op.text} compares numbers, not {field}, at {op.pos}")
        return Condition(field, op.text, (self.value(field),))

    def value_list(self, field: str) -> tuple[int | str, ...]:
        if (token := self.next()).text != "(" or token.kind != "punct":
            raise self.fail(f"'(' after {field} in", token)
        values = [self.value(field)]
        while (token := self.next()).text == "," and token.kind == "punct":
            values.append(self.value(field))
        if token.text != ")" or token.kind != "punct":
            raise self.fail("',' or ')'", token)
        return tuple(values)

    def value(self, field: str) -> int | str:
        token = self.next()
        if FIELDS[field][0]:
            if token.kind != "number":
                raise self.fail(f"a number for {field}", token)
            return int(token.text)
        if token.kind != "string":
            raise self.fail(f"a 'quoted string' for {field}", token)
        return token.text[1:-1]


def parse_expression(text: str) -> tuple[Condition, ...]:
    """The conditions of ``text`` (none when blank), or SearchError."""
    return () if not text.strip() else _Parser(text).expression()


def parse_search(body: str) -> Search:
    """A search from the request body text (empty: every command, first page), or SearchError."""
    try:
        data: Any = json.loads(body) if body.strip() else {}
    except ValueError as exc:
        raise SearchError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SearchError("body must be a JSON object")
    unknown = sorted(set(data) - {"expression", "pagination"})
    if unknown:
        raise SearchError(f"body: unknown key {unknown[0]!r}; expression and pagination only")
    expression, pagination = data.get("expression", ""), data.get("pagination", {})
    if not isinstance(expression, str):
        raise SearchError("expression must be a string")
    if not isinstance(pagination, dict):
        raise SearchError("pagination must be an object with pageNo and pageSize")
    return Search(
        parse_expression(expression),
        _positive(pagination, "pageNo", 1, 10**9),
        _positive(pagination, "pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
    )


def _positive(pagination: dict[str, Any], name: str, default: int, high: int) -> int:
    value = pagination.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise SearchError(f"pagination.{name} must be an integer from 1 to {high}, not {value!r}")
    return value
