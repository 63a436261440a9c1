"""A small SQL tokenizer: enough to find the CHECK constraints in a CREATE TABLE statement.

SQLite keeps the text of each CREATE TABLE in `sqlite_schema` but has no PRAGMA
listing CHECK constraints, so codegen reads them from that text. The tokenizer
knows SQL's string literals, quoted identifiers and comments, so a parenthesis or
comma inside them never confuses the structure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<string>'(?:[^']|'')*')
  | (?P<ident>"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\])
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
  | (?P<op>\|\||<=|>=|<>|!=|==|->>|->|<<|>>|.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # string, ident, word, number, op
    text: str
    start: int
    end: int

    @property
    def upper(self) -> str:
        return self.text.upper()

    @property
    def name(self) -> str:
        """The identifier this token spells, unquoted."""
        if self.kind == "ident":
            quote = self.text[0]
            body = self.text[1:-1]
            return body if quote == "[" else body.replace(quote * 2, quote)
        if self.kind == "string":
            return self.text[1:-1].replace("''", "'")
        return self.text


def tokenize(sql: str) -> list[Token]:
    """The significant tokens of `sql` (whitespace and comments dropped)."""
    tokens: list[Token] = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        assert kind is not None
        if kind in ("space", "comment"):
            continue
        tokens.append(Token(kind, match.group(), match.start(), match.end()))
    return tokens


# Words after which "(" opens a list or a subexpression, not a function's arguments.
_KEYWORDS_BEFORE_PAREN = {
    "AND", "AS", "BETWEEN", "CHECK", "ELSE", "EXISTS", "GLOB", "IN", "IS", "LIKE", "NOT", "OR", "THEN", "WHEN",
}  # fmt: skip


def normalize(tokens: list[Token]) -> str:
    """Tokens joined by single spaces; none inside parentheses, before commas or between a function and its "("."""
    out = ""
    previous: Token | None = None
    for token in tokens:
        call = (
            token.text == "("
            and previous is not None
            and previous.kind == "word"
            and previous.upper not in _KEYWORDS_BEFORE_PAREN
        )
        if out and not out.endswith("(") and token.text not in (")", ",") and not call:
            out += " "
        out += token.text
        previous = token
    return out


@dataclass(frozen=True, slots=True)
class CheckClause:
    """One CHECK constraint of a CREATE TABLE: its name, the column it is attached to, its expression."""

    name: str | None
    column: str | None
    expression: str


def _split_top_level(tokens: list[Token]) -> list[list[Token]]:
    """The comma-separated items of a parenthesised list (the tokens between the outer parentheses)."""
    items: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        if token.text == "," and depth == 0:
            items.append([])
        else:
            items[-1].append(token)
    return [item for item in items if item]


def _closing(tokens: list[Token], open_index: int) -> int:
    depth = 0
    for index in range(open_index, len(tokens)):
        if tokens[index].text == "(":
            depth += 1
        elif tokens[index].text == ")":
            depth -= 1
            if depth == 0:
                return index
    raise ValueError("unbalanced parentheses")


_TABLE_CONSTRAINT_WORDS = {"CONSTRAINT", "CHECK", "PRIMARY", "UNIQUE", "FOREIGN"}


def check_clauses(create_table_sql: str) -> list[CheckClause]:
    """Every CHECK in a CREATE TABLE statement, in order, with its name and column (None for table checks)."""
    tokens = tokenize(create_table_sql)
    first_paren = next(i for i, t in enumerate(tokens) if t.text == "(")
    body = tokens[first_paren + 1 : _closing(tokens, first_paren)]
    clauses: list[CheckClause] = []
    for item in _split_top_level(body):
        is_table_constraint = item[0].kind == "word" and item[0].upper in _TABLE_CONSTRAINT_WORDS
        column = None if is_table_constraint else item[0].name
        pending_name: str | None = None
        index = 0 if is_table_constraint else 1
        while index < len(item):
            token = item[index]
            if token.kind == "word" and token.upper == "CONSTRAINT" and index + 1 < len(item):
                pending_name = item[index + 1].name
                index += 2
                continue
            if (
                token.kind == "word"
                and token.upper == "CHECK"
                and index + 1 < len(item)
                and item[index + 1].text == "("
            ):
                end = _closing(item, index + 1)
                clauses.append(CheckClause(pending_name, column, normalize(item[index + 2 : end])))
                pending_name = None
                index = end + 1
                continue
            if token.text == "(":
                index = _closing(item, index) + 1
                continue
            if token.kind == "word" and token.upper in ("NOT", "NULL", "PRIMARY", "UNIQUE", "DEFAULT", "REFERENCES"):
                pending_name = None
            index += 1
    return clauses
