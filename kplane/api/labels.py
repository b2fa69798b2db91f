"""Label selectors with Kubernetes semantics (`k8s.io/apimachinery/pkg/labels`).

Grammar (`parse_selector`), as upstream::

    <selector>    ::= <requirement> | <requirement> "," <selector>
    <requirement> ::= [!] KEY [ ("in" | "notin") "(" VALUES ")" | ("=" | "==" | "!=" | ">" | "<") VALUE ]

Whitespace (space, tab, CR, LF) separates tokens. A parsed selector's requirements are sorted
by key (stably) and `in`/`notin` values are a sorted, de-duplicated set. Keys must be qualified
names, values valid label values; `>`/`<` take a base-10 int64.

Three selectors are special: `Selector.everything()` (no requirements; matches all),
`Selector.nothing()` (matches no labels; what a nil metav1.LabelSelector means) and the
parsed ones. `selector_from_label_selector` converts the metav1.LabelSelector JSON shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from kplane.api.field import FieldError, invalid, not_supported


class Operator(StrEnum):
    """selection.Operator values."""

    IN = "in"
    NOT_IN = "notin"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_BINARY_OPERATORS: Final = ("in", "notin", "=", "==", "!=", "gt", "lt")
_VALID_OPERATORS: Final = (*_BINARY_OPERATORS, "exists", "!")
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_INT_RE: Final = re.compile(r"[+-]?[0-9]+")

# ----- label syntax (k8s.io/apimachinery/pkg/util/validation) ------------------------------

_QUALIFIED_NAME_FMT: Final = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_RE: Final = re.compile(_QUALIFIED_NAME_FMT)
_QUALIFIED_NAME_MSG: Final = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_QUALIFIED_NAME_MAX: Final = 63
_LABEL_VALUE_FMT: Final = f"({_QUALIFIED_NAME_FMT})?"
_LABEL_VALUE_RE: Final = re.compile(_LABEL_VALUE_FMT)
_LABEL_VALUE_MSG: Final = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_MAX: Final = 63
_DNS1123_LABEL_FMT: Final = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT: Final = f"{_DNS1123_LABEL_FMT}(\\.{_DNS1123_LABEL_FMT})*"
_DNS1123_SUBDOMAIN_RE: Final = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1123_SUBDOMAIN_MSG: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MAX: Final = 253


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    # Upstream's RegexError, including its doubled space before "or".
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def _byte_len(s: str) -> int:
    # Go measures strings in bytes.
    return len(s.encode("utf-8", "surrogatepass"))


def validate_dns1123_subdomain(value: str) -> list[str]:
    """IsDNS1123Subdomain: error messages, empty when valid."""
    errs: list[str] = []
    if _byte_len(value) > _DNS1123_SUBDOMAIN_MAX:
        errs.append(_max_len_error(_DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def validate_label_key(key: str) -> list[str]:
    """IsQualifiedName: `[prefix/]name`, name <= 63 chars, prefix a DNS-1123 subdomain. Empty when valid."""
    errs: list[str] = []
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + msg for msg in validate_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif _byte_len(name) > _QUALIFIED_NAME_MAX:
        errs.append("name part " + _max_len_error(_QUALIFIED_NAME_MAX))
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        errs.append(
            "name part "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def validate_label_value(value: str) -> list[str]:
    """IsValidLabelValue: empty, or <= 63 chars of `[-A-Za-z0-9_.]` with alphanumeric ends. Empty when valid."""
    errs: list[str] = []
    if _byte_len(value) > _LABEL_VALUE_MAX:
        errs.append(_max_len_error(_LABEL_VALUE_MAX))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def validate_labels(labels: Mapping[str, str], path: str = "metadata.labels") -> list[FieldError]:
    """ValidateLabels: every bad key and value of a labels map, as field errors at `path`."""
    errs: list[FieldError] = []
    for key, value in labels.items():
        errs.extend(invalid(path, key, msg) for msg in validate_label_key(key))
        errs.extend(invalid(path, value, msg) for msg in validate_label_value(value))
    return errs


# ----- requirements ------------------------------------------------------------------------


class RequirementError(ValueError):
    """A requirement broke NewRequirement's rules; `errors` holds every field error."""

    def __init__(self, errors: Sequence[FieldError], prefix: str = "") -> None:
        self.errors = list(errors)
        messages = [e.message() for e in self.errors]
        text = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
        super().__init__(prefix + text)


def _parse_int64(s: str) -> int | None:
    # strconv.ParseInt(s, 10, 64): optional sign, ASCII digits, within int64.
    if not _INT_RE.fullmatch(s):
        return None
    n = int(s)
    return n if _INT64_MIN <= n <= _INT64_MAX else None


@dataclass(frozen=True, slots=True)
class Requirement:
    """One `key <operator> values` term. Construct through `new_requirement` to validate it."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in ("in", "=", "=="):
            return self.key in labels and labels[self.key] in self.values
        if op in ("notin", "!="):
            return self.key not in labels or labels[self.key] not in self.values
        if op == "exists":
            return self.key in labels
        if op == "!":
            return self.key not in labels
        if op in ("gt", "lt"):
            if self.key not in labels or len(self.values) != 1:
                return False
            have = _parse_int64(labels[self.key])
            want = _parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if op == "gt" else have < want
        return False  # the zero Requirement (no operator) matches nothing

    def __str__(self) -> str:
        op = self.operator
        out = ("!" if op == "!" else "") + self.key
        infix = {"=": "=", "==": "==", "!=": "!=", "in": " in ", "notin": " notin ", "gt": ">", "lt": "<"}
        if op in ("exists", "!"):
            return out
        out += infix.get(op, "")
        values = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        return f"{out}({values})" if op in ("in", "notin") else out + values


def validate_requirement(key: str, operator: str, values: Sequence[str], path: str = "") -> list[FieldError]:
    """NewRequirement's checks: every problem with key, operator and values, as field errors."""

    def child(name: str) -> str:
        return f"{path}.{name}" if path else name

    errs: list[FieldError] = []
    key_errs = validate_label_key(key)
    if key_errs:
        errs.append(invalid(child("key"), key, "; ".join(key_errs)))
    values_path = child("values")
    vals = list(values)
    if operator in ("in", "notin"):
        if not vals:
            errs.append(invalid(values_path, vals, "for 'in', 'notin' operators, values set can't be empty"))
    elif operator in ("=", "==", "!="):
        if len(vals) != 1:
            errs.append(invalid(values_path, vals, "exact-match compatibility requires one single value"))
    elif operator in ("exists", "!"):
        if vals:
            errs.append(invalid(values_path, vals, "values set must be empty for exists and does not exist"))
    elif operator in ("gt", "lt"):
        if len(vals) != 1:
            errs.append(invalid(values_path, vals, "for 'Gt', 'Lt' operators, exactly one value is required"))
        for i, v in enumerate(vals):
            if _parse_int64(v) is None:
                errs.append(
                    invalid(
                        f"{values_path}[{i}]", v, "for 'Gt', 'Lt' operators, the value must be an integer"
                    )
                )
    else:
        errs.append(not_supported(child("operator"), operator, _VALID_OPERATORS))
    for i, v in enumerate(vals):
        value_errs = validate_label_value(v)
        if value_errs:
            errs.append(invalid(f"{values_path}[{i}][{key}]", v, "; ".join(value_errs)))
    return errs


def new_requirement(key: str, operator: str, values: Iterable[str] = ()) -> Requirement:
    """NewRequirement: a validated Requirement (values kept in the given order), or RequirementError."""
    vals = tuple(values)
    errs = validate_requirement(key, operator, vals)
    if errs:
        raise RequirementError(errs)
    return Requirement(key, operator, vals)


# ----- selectors ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selector:
    """An AND of requirements (sorted by key), or the special selector that matches nothing."""

    requirements: tuple[Requirement, ...] = ()
    matches_nothing: bool = False

    @classmethod
    def everything(cls) -> Selector:
        """Matches every label set (labels.Everything())."""
        return _EVERYTHING

    @classmethod
    def nothing(cls) -> Selector:
        """Matches no label set (labels.Nothing()); what a nil LabelSelector means."""
        return _NOTHING

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.matches_nothing:
            return False
        return all(r.matches(labels) for r in self.requirements)

    def empty(self) -> bool:
        """True if the selector does not restrict the selection (Empty())."""
        return not self.matches_nothing and not self.requirements

    def add(self, *requirements: Requirement) -> Selector:
        """A new selector with `requirements` added, re-sorted by key (Add())."""
        if self.matches_nothing:
            return self
        return Selector(tuple(sorted((*self.requirements, *requirements), key=lambda r: r.key)))

    def requires_exact_match(self, label: str) -> str | None:
        """The single value the first requirement on `label` demands (=, == or one-value in), else None."""
        for r in self.requirements:
            if r.key == label:
                if r.operator in ("=", "==", "in") and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


_EVERYTHING: Final = Selector()
_NOTHING: Final = Selector((), matches_nothing=True)


def selector_from_set(labels: Mapping[str, str] | None) -> Selector:
    """SelectorFromSet: `key=value` for every entry, unvalidated; None or {} selects everything."""
    if not labels:
        return _EVERYTHING
    return Selector(tuple(Requirement(k, "=", (v,)) for k, v in sorted(labels.items())))


def validated_selector_from_set(labels: Mapping[str, str] | None) -> Selector:
    """ValidatedSelectorFromSet: like selector_from_set but every key and value is validated."""
    if not labels:
        return _EVERYTHING
    return Selector(tuple(new_requirement(k, "=", (v,)) for k, v in sorted(labels.items())))


_LABEL_SELECTOR_OPERATORS: Final = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def selector_from_label_selector(ls: Mapping[str, Any] | None) -> Selector:
    """LabelSelectorAsSelector for the metav1.LabelSelector JSON shape.

    None matches nothing; a selector without matchLabels and matchExpressions matches
    everything. Raises ValueError on an unknown operator or an invalid key or value.
    """
    if ls is None:
        return _NOTHING
    if not isinstance(ls, Mapping):
        raise ValueError(f"label selector must be an object, not {type(ls).__name__}")
    match_labels = ls.get("matchLabels") or {}
    match_expressions = ls.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping):
        raise ValueError("matchLabels must be an object of strings")
    if not isinstance(match_expressions, list):
        raise ValueError("matchExpressions must be a list")
    if not match_labels and not match_expressions:
        return _EVERYTHING
    requirements: list[Requirement] = []
    for key, value in sorted(match_labels.items()):
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"matchLabels must map strings to strings, got {key!r}: {value!r}")
        requirements.append(new_requirement(key, "=", (value,)))
    for i, expr in enumerate(match_expressions):
        if not isinstance(expr, Mapping):
            raise ValueError(f"matchExpressions[{i}] must be an object")
        op_name = expr.get("operator")
        op = _LABEL_SELECTOR_OPERATORS.get(op_name) if isinstance(op_name, str) else None
        if op is None:
            raise ValueError(f"{_go_quote(op_name)} is not a valid label selector operator")
        key = expr.get("key")
        values = expr.get("values") or []
        if not isinstance(key, str):
            raise ValueError(f"matchExpressions[{i}].key must be a string")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError(f"matchExpressions[{i}].values must be a list of strings")
        requirements.append(new_requirement(key, op, values))
    return Selector(tuple(sorted(requirements, key=lambda r: r.key)))


def _go_quote(value: object) -> str:
    # fmt's %q of a Go string; non-strings (absent operator) render as "".
    text = value if isinstance(value, str) else ""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ----- lexer -------------------------------------------------------------------------------


class Token(StrEnum):
    """Lexer token kinds, named as upstream."""

    ERROR = "ErrorToken"
    END_OF_STRING = "EndOfStringToken"
    CLOSED_PAR = "ClosedParToken"
    COMMA = "CommaToken"
    DOES_NOT_EXIST = "DoesNotExistToken"
    DOUBLE_EQUALS = "DoubleEqualsToken"
    EQUALS = "EqualsToken"
    GREATER_THAN = "GreaterThanToken"
    IDENTIFIER = "IdentifierToken"
    IN = "InToken"
    LESS_THAN = "LessThanToken"
    NOT_EQUALS = "NotEqualsToken"
    NOT_IN = "NotInToken"
    OPEN_PAR = "OpenParToken"


_KEYWORDS: Final = {
    ")": Token.CLOSED_PAR,
    ",": Token.COMMA,
    "!": Token.DOES_NOT_EXIST,
    "==": Token.DOUBLE_EQUALS,
    "=": Token.EQUALS,
    ">": Token.GREATER_THAN,
    "in": Token.IN,
    "<": Token.LESS_THAN,
    "!=": Token.NOT_EQUALS,
    "notin": Token.NOT_IN,
    "(": Token.OPEN_PAR,
}
_WHITESPACE: Final = frozenset(" \t\r\n")
_SPECIAL: Final = frozenset("=!(),><")


def tokenize(s: str) -> list[tuple[Token, str]]:
    """The lexer's (token, literal) pairs for `s`, ending with END_OF_STRING.

    Unlike upstream (which reads a NUL byte as end of input), a NUL is an ordinary character.
    """
    items: list[tuple[Token, str]] = []
    pos, end = 0, len(s)
    while True:
        while pos < end and s[pos] in _WHITESPACE:
            pos += 1
        if pos >= end:
            items.append((Token.END_OF_STRING, ""))
            return items
        start = pos
        if s[pos] in _SPECIAL:
            # The longest run of special symbols that is still an operator.
            best: tuple[Token, str] | None = None
            while pos < end and s[pos] in _SPECIAL:
                candidate = s[start : pos + 1]
                if candidate in _KEYWORDS:
                    best = (_KEYWORDS[candidate], candidate)
                elif best is not None:
                    break
                pos += 1
            if best is None:  # unreachable with today's symbols: each one alone is an operator
                items.append((Token.ERROR, f"error expected: keyword found '{s[start:pos]}'"))
            else:
                items.append(best)
                pos = start + len(best[1])
        else:
            while pos < end and s[pos] not in _SPECIAL and s[pos] not in _WHITESPACE:
                pos += 1
            word = s[start:pos]
            items.append((_KEYWORDS.get(word, Token.IDENTIFIER), word))


# ----- parser ------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the token list, mirroring upstream's Parser (same error texts)."""

    def __init__(self, s: str) -> None:
        self._items = tokenize(s)
        self._pos = 0

    def _lookahead(self, values_context: bool) -> tuple[Token, str]:
        return self._as_context(self._items[self._pos], values_context)

    def _consume(self, values_context: bool) -> tuple[Token, str]:
        item = self._items[self._pos]
        self._pos += 1
        return self._as_context(item, values_context)

    @staticmethod
    def _as_context(item: tuple[Token, str], values_context: bool) -> tuple[Token, str]:
        # In a values position 'in' and 'notin' are plain identifiers: "x in (in,notin)".
        tok, lit = item
        if values_context and tok in (Token.IN, Token.NOT_IN):
            return Token.IDENTIFIER, lit
        return tok, lit

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self._lookahead(True)
            if tok in (Token.IDENTIFIER, Token.DOES_NOT_EXIST):
                try:
                    requirements.append(self._parse_requirement())
                except RequirementError as e:
                    raise RequirementError(e.errors, "unable to parse requirement: ") from None
                except ValueError as e:
                    raise ValueError(f"unable to parse requirement: {e}") from None
                tok, lit = self._consume(True)
                if tok == Token.END_OF_STRING:
                    return requirements
                if tok == Token.COMMA:
                    tok2, lit2 = self._lookahead(True)
                    if tok2 not in (Token.IDENTIFIER, Token.DOES_NOT_EXIST):
                        raise ValueError(f"found '{lit2}', expected: identifier after ','")
                else:
                    raise ValueError(f"found '{lit}', expected: ',' or 'end of string'")
            elif tok == Token.END_OF_STRING:
                return requirements
            else:
                raise ValueError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def _parse_requirement(self) -> Requirement:
        key, operator = self._parse_key_and_infer_operator()
        if operator in ("exists", "!"):
            return new_requirement(key, operator, ())
        operator = self.parse_operator()
        values = self._parse_values() if operator in ("in", "notin") else self._parse_exact_value()
        return new_requirement(key, operator, sorted(values))

    def _parse_key_and_infer_operator(self) -> tuple[str, str]:
        operator = ""
        tok, lit = self._consume(True)
        if tok == Token.DOES_NOT_EXIST:
            operator = "!"
            tok, lit = self._consume(True)
        if tok != Token.IDENTIFIER:
            raise ValueError(f"found '{lit}', expected: identifier")
        key_errs = validate_label_key(lit)
        if key_errs:
            raise RequirementError([invalid("", lit, "; ".join(key_errs))])
        if self._lookahead(True)[0] in (Token.END_OF_STRING, Token.COMMA) and operator != "!":
            operator = "exists"
        return lit, operator

    def parse_operator(self) -> str:
        """Consume a binary operator token (parseOperator)."""
        tok, lit = self._consume(False)
        operators = {
            Token.IN: "in",
            Token.EQUALS: "=",
            Token.DOUBLE_EQUALS: "==",
            Token.GREATER_THAN: "gt",
            Token.LESS_THAN: "lt",
            Token.NOT_IN: "notin",
            Token.NOT_EQUALS: "!=",
        }
        if tok not in operators:
            raise ValueError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        return operators[tok]

    def _parse_values(self) -> set[str]:
        tok, lit = self._consume(True)
        if tok != Token.OPEN_PAR:
            raise ValueError(f"found '{lit}' expected: '('")
        tok, lit = self._lookahead(True)
        if tok in (Token.IDENTIFIER, Token.COMMA):
            values = self._parse_identifiers_list()
            if self._consume(True)[0] != Token.CLOSED_PAR:
                raise ValueError(f"found '{lit}', expected: ')'")
            return values
        if tok == Token.CLOSED_PAR:  # "()" means the one empty value
            self._consume(True)
            return {""}
        raise ValueError(f"found '{lit}', expected: ',', ')' or identifier")

    def _parse_identifiers_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self._consume(True)
            if tok == Token.IDENTIFIER:
                values.add(lit)
                tok2, lit2 = self._lookahead(True)
                if tok2 == Token.COMMA:
                    continue
                if tok2 == Token.CLOSED_PAR:
                    return values
                raise ValueError(f"found '{lit2}', expected: ',' or ')'")
            if tok == Token.COMMA:
                # An empty slot before, between or after commas is the empty value. The next
                # comma is left for the next round (older upstream consumed it here, which
                # rejected "x in (a,,)"; the upstream test table accepts it).
                if not values:
                    values.add("")
                tok2, _ = self._lookahead(True)
                if tok2 == Token.CLOSED_PAR:
                    values.add("")
                    return values
                if tok2 == Token.COMMA:
                    values.add("")
            else:
                raise ValueError(f"found '{lit}', expected: ',', or identifier")

    def _parse_exact_value(self) -> set[str]:
        tok, _ = self._lookahead(True)
        if tok in (Token.END_OF_STRING, Token.COMMA):
            return {""}
        tok, lit = self._consume(True)
        if tok == Token.IDENTIFIER:
            return {lit}
        raise ValueError(f"found '{lit}', expected: identifier")


def parse_selector(s: str) -> Selector:
    """Parse a label selector string (labels.Parse); ValueError names the problem."""
    if not isinstance(s, str):
        raise TypeError(f"selector must be a string, not {type(s).__name__}")
    requirements = _Parser(s).parse()
    return Selector(tuple(sorted(requirements, key=lambda r: r.key)))


def parse_operator_token(s: str) -> str:
    """Parse `s` as one binary operator token (the parser's parseOperator), for tests and tools."""
    return _Parser(s).parse_operator()
