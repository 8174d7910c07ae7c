"""The body of an EnOS V2.1 Search Command (``POST /commands?action=search``), parsed strictly.

The device is named in the query string (``enos``), never in the body. The body is a JSON
object with two optional keys (any other key is refused):

* ``expression``: a string in the query language below; absent or blank: every command.
* ``pagination``: ``{"pageNo": 1.., "pageSize": 1..1000}``, by default page 1 of 100; no
  other key (``sorters`` included: the order is fixed, newest ``createTime`` first).

Expression grammar, as the vendor's page documents it (keywords, operators and field names
are case-sensitive)::

    expression := condition ( "and" condition )*
    condition  := "state" "=" integer
                | "commandName." locale ( "like" | "=" ) 'text'
                | "createTime" ( "<" | ">=" ) 'YYYY-MM-DD HH:mm:ss'
    locale     := "defaultValue" | a locale such as en_US or zh_CN   ([a-z]{2}_[A-Z]{2})
    'text'     := a single-quoted string: no quote inside, no escapes

``commandName`` is the vendor's fuzzy match under both operators: the text, case-insensitive,
anywhere in the command's name in that locale (the simulator stores one name and uses it for
every locale). ``createTime`` text is read as UTC: the vendor's page does not say which zone.
Refused: ``or``; any other operator (``state > 1``, ``state in (1)``, ``createTime > '...'``,
``<=``, ``=``); ``commandName`` without a locale; a number (epoch milliseconds) for
``createTime``; any other field (``assetId``, ``productKey``, ``deviceKey``, ``commandId``...):
fields outside that list are not searchable. A refusal raises ``SearchError`` naming the problem
and, in an expression, its character position (counted from 0): the gateway answers 1004.

The tokens, ``Parser`` and ``parse_body`` are shared with the V2.4 device search
(``enos_devices``), whose conditions are its own.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, NamedTuple, TypeVar

from countermand.simulator.state import EnosCommand

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
COMMAND_FIELDS = "state, commandName.<locale> and createTime"
_TOKEN = re.compile(
    r"\s*(?:(?P<number>-?[0-9]+(?![\w.]))|(?P<string>'[^']*')"
    r"|(?P<word>[A-Za-z_]\w*(?:\.\w+)*)|(?P<punct>>=|<=|!=|<>|[=<>(),]))",
    re.ASCII,
)
_LOCALE = re.compile(r"defaultValue|[a-z]{2}_[A-Z]{2}", re.ASCII)
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}", re.ASCII)
C = TypeVar("C")


class SearchError(ValueError):
    """A search body that cannot be run; the message names the problem."""


class Token(NamedTuple):
    kind: str  # number, string, word, punct, end
    text: str
    pos: int

    def describe(self) -> str:
        return "the end" if self.kind == "end" else repr(self.text)

    def is_(self, *texts: str) -> bool:
        """An operator, keyword or punctuation among ``texts`` (never a string or a number)."""
        return self.kind in ("word", "punct") and self.text in texts


def tokens(text: str) -> list[Token]:
    found, pos = [], 0
    while text[pos:].strip():
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            at = len(text) - len(text[pos:].lstrip())
            what = "an unterminated string" if text[at] == "'" else f"character {text[at]!r}"
            raise SearchError(f"expression: {what} at position {at}")
        found.append(Token(match.lastgroup, match[match.lastgroup], match.start(match.lastgroup)))
        pos = match.end()
    return [*found, Token("end", "", len(text))]


class Parser(Generic[C]):
    """Conditions joined by ``and``; a subclass parses one condition."""

    def __init__(self, text: str) -> None:
        self.tokens = tokens(text)
        self.index = 0

    def condition(self) -> C:
        raise NotImplementedError

    def peek(self) -> Token:
        return self.tokens[self.index]

    def next(self) -> Token:
        token = self.tokens[self.index]
        self.index += token.kind != "end"
        return token

    def fail(self, expected: str, token: Token) -> SearchError:
        return refuse(f"expected {expected}", token.pos, f", found {token.describe()}")

    def expression(self) -> tuple[C, ...]:
        conditions = [self.condition()]
        while (token := self.next()).is_("and"):
            conditions.append(self.condition())
        if token.kind != "end":
            raise self.fail("'and' or the end", token)
        return tuple(conditions)

    def operator(self, field: str, *allowed: str) -> str:
        token = self.next()
        if not token.is_(*allowed):
            raise refuse(f"{field} takes {' or '.join(allowed)}, not {token.describe()}", token.pos)
        return token.text

    def string(self, field: str) -> str:
        token = self.next()
        if token.kind != "string":
            raise self.fail(f"a 'quoted string' for {field}", token)
        return token.text[1:-1]


def refuse(problem: str, pos: int, tail: str = "") -> SearchError:
    return SearchError(f"expression: {problem} at position {pos}{tail}")


def parse_body(body: str, default_page_size: int) -> tuple[str, int, int]:
    """``(expression, pageNo, pageSize)`` of a search body (empty: "", 1, default), or
    SearchError."""
    try:
        data: Any = json.loads(body) if body.strip() else {}
    except ValueError as exc:
        raise SearchError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SearchError("body must be a JSON object")
    _only(data, "body", "expression", "pagination")
    expression, pagination = data.get("expression", ""), data.get("pagination", {})
    if not isinstance(expression, str):
        raise SearchError("expression must be a string")
    if not isinstance(pagination, dict):
        raise SearchError("pagination must be an object with pageNo and pageSize")
    _only(pagination, "pagination", "pageNo", "pageSize")  # no sorters: the order is fixed
    page_no = _positive(pagination, "pageNo", 1, 10**9)
    return expression, page_no, _positive(pagination, "pageSize", default_page_size, MAX_PAGE_SIZE)


def _only(data: dict[str, Any], where: str, *keys: str) -> None:
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise SearchError(f"{where}: unknown key {unknown[0]!r}; {' and '.join(keys)} only")


def _positive(pagination: dict[str, Any], name: str, default: int, high: int) -> int:
    value = pagination.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise SearchError(f"pagination.{name} must be an integer from 1 to {high}, not {value!r}")
    return value


# --- Commands -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Condition:
    field: str  # state, commandName.<locale>, createTime
    op: str  # =, like, <, >=
    value: int | str  # state: the state; commandName: the text; createTime: epoch ms (UTC)

    def matches(self, record: EnosCommand) -> bool:
        value = self.value
        if self.field == "state":
            return record.state == value
        if isinstance(value, str):  # commandName.<locale>, = and like alike
            return value.casefold() in record.command_name.casefold()
        return record.create_time < value if self.op == "<" else record.create_time >= value


@dataclass(frozen=True, slots=True)
class Search:
    conditions: tuple[Condition, ...]
    page_no: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    def matches(self, record: EnosCommand) -> bool:
        return all(condition.matches(record) for condition in self.conditions)


class _CommandParser(Parser[Condition]):
    def condition(self) -> Condition:
        token = self.next()
        if token.kind != "word":
            raise self.fail(f"a field ({COMMAND_FIELDS})", token)
        name, dot, locale = token.text.partition(".")
        if name == "commandName":
            return self.command_name(token, locale if dot else None)
        if token.text == "state":
            return Condition("state", self.operator("state", "="), self.integer("state"))
        if token.text == "createTime":
            return Condition("createTime", self.operator("createTime", "<", ">="), self.time())
        raise refuse(f"field {token.text!r} is not searchable ({COMMAND_FIELDS} only)", token.pos)

    def command_name(self, token: Token, locale: str | None) -> Condition:
        if locale is None:
            problem = "commandName needs a locale: commandName.defaultValue, commandName.en_US"
            raise refuse(problem, token.pos)
        if not _LOCALE.fullmatch(locale):
            at = token.pos + len("commandName.")
            raise refuse(f"locale {locale!r} is neither defaultValue nor like en_US", at)
        op = self.operator(token.text, "like", "=")
        return Condition(token.text, op, self.string(token.text))

    def integer(self, field: str) -> int:
        token = self.next()
        if token.kind != "number":
            raise self.fail(f"an integer for {field}", token)
        return int(token.text)

    def time(self) -> int:
        """Epoch milliseconds of a ``'YYYY-MM-DD HH:mm:ss'`` string, read as UTC."""
        token = self.next()
        expected = "a 'YYYY-MM-DD HH:mm:ss' time for createTime"
        if token.kind == "number":
            raise refuse(f"{expected}, not the number {token.text}", token.pos)
        if token.kind != "string":
            raise self.fail(expected, token)
        ms = _utc_ms(token.text[1:-1])
        if ms is None:
            raise refuse(f"{expected}, not {token.text}", token.pos)
        return ms


def _utc_ms(text: str) -> int | None:
    """Epoch milliseconds of ``YYYY-MM-DD HH:mm:ss`` read as UTC, None when not that or no date."""
    if not _TIME.fullmatch(text):
        return None
    try:
        when = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:  # 2026-02-30, 25:00:00
        return None
    return int(when.timestamp()) * 1000


def parse_expression(text: str) -> tuple[Condition, ...]:
    """The conditions of ``text`` (none when blank), or SearchError."""
    return () if not text.strip() else _CommandParser(text).expression()


def parse_search(body: str) -> Search:
    """A search from the request body text (empty: every command, first page), or SearchError."""
    expression, page_no, page_size = parse_body(body, DEFAULT_PAGE_SIZE)
    return Search(parse_expression(expression), page_no, page_size)
