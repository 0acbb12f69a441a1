"""Lenient text-to-timestamp parsing in plain Ibis, for engines without DuckDB's try_strptime.

DuckDB parses ``--date-format`` with its own ``try_strptime``. Other engines either lack a
parser that yields NULL on bad input (PostgreSQL's ``to_timestamp`` fails the whole query) or
have one with other rules (Spark's two-digit years fall in 2000-2099, Java patterns backtrack).
Here a strptime format becomes one anchored regular expression that reproduces DuckDB's rules
(each numeric field takes as many digits as it can, up to its width, and never gives them back;
whitespace in the format matches a run of whitespace), and the captured fields are checked
(month 1-12, the day within its month, leap years, hours 0-23, minutes and seconds 0-59)
before they make a timestamp. Only checked fields reach the timestamp constructor, so no value
can fail a query.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir

from ..errors import ConfigError

__all__ = ["ISO_PATTERN", "DatePattern", "build_timestamp", "compile_strptime"]

# A field of at most `width` digits, taken greedily and kept (a possessive quantifier, which
# neither Java nor PostgreSQL's regex dialect spells the same way): `width` digits if they are
# there, else fewer with no digit after them.
_DIGITS = {
    1: "([0-9])",
    2: "([0-9]{2}|[0-9](?![0-9]))",
    4: "([0-9]{4}|[0-9]{1,3}(?![0-9]))",
}
_FIELDS: dict[str, tuple[str, int]] = {
    "Y": ("year", 4),
    "y": ("year2", 2),
    "m": ("month", 2),
    "d": ("day", 2),
    "H": ("hour", 2),
    "M": ("minute", 2),
    "S": ("second", 2),
}
_SPACE = "[ \t\n\r\f]+"
SUPPORTED = "%Y %y %m %d %H %M %S %%"


@dataclass(frozen=True)
class DatePattern:
    """An anchored regular expression and the timestamp field each of its groups holds."""

    regex: str
    groups: tuple[str, ...]


def compile_strptime(fmt: str) -> DatePattern:
    """Translate a strptime format into a :class:`DatePattern`.

    Raises
    ------
    ConfigError
        For a directive other than those in :data:`SUPPORTED`.

    Examples
    --------
    >>> compile_strptime("%Y%m%d").groups
    ('year', 'month', 'day')
    """
    out = ["^"]
    groups: list[str] = []
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%" and i + 1 < len(fmt):
            code = fmt[i + 1]
            i += 2
            if code == "%":
                out.append("%")
                continue
            if code not in _FIELDS:
                raise ConfigError(
                    f"The date format {fmt!r} uses %{code}, which this engine cannot parse "
                    f"leniently; use only {SUPPORTED}, or run with --engine duckdb."
                )
            name, width = _FIELDS[code]
            if name in groups or (
                name.startswith("year") and any(g.startswith("year") for g in groups)
            ):
                raise ConfigError(f"The date format {fmt!r} names the {name} twice.")
            out.append(_DIGITS[width])
            groups.append(name)
        elif ch.isspace():
            while i < len(fmt) and fmt[i].isspace():
                i += 1
            out.append(_SPACE)
        else:
            out.append(re.escape(ch) if not ch.isalnum() else ch)
            i += 1
    out.append("$")
    return DatePattern("".join(out), tuple(groups))


#: ISO 8601 text as DuckDB's cast reads it: one- or two-digit month, day, hour, minute and
#: second, any fraction (truncated to microseconds), and a zone suffix that is ignored.
ISO_PATTERN = DatePattern(
    "^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
    "(?:[ T]([0-9]{1,2}):([0-9]{1,2})(?::([0-9]{1,2})(?:[.]([0-9]*))?)?)?"
    "(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?| ?UTC)?$",
    ("year", "month", "day", "hour", "minute", "second", "fraction"),
)

# Non-capturing patterns of fields that are valid whatever the others hold; the month and day
# pairs that are valid together (all but February 29th).
_SURE = {
    "year": "[0-9]{4}",
    "year2": "(?:[0-9]|[0-57-9][0-9]|6[0-8])",  # not 69: engines disagree on its century
    "hour": "(?:[01]?[0-9]|2[0-3])",
    "minute": "[0-5]?[0-9]",
    "second": "[0-5]?[0-9]",
}
_MONTH_DAY = (
    ("(?:0?[1-9]|1[0-2])", "(?:0?[1-9]|1[0-9]|2[0-8])"),
    ("(?:0?[13-9]|1[0-2])", "(?:29|30)"),
    ("(?:0?[13578]|1[02])", "31"),
)


def sure_regex(fmt: str) -> str | None:
    """A pattern only certainly valid dates of ``fmt`` match (February 29th aside), without
    capturing groups: regular expression engines test those much faster (PostgreSQL's about
    a hundred times), and an engine's own parser then reads the text safely.

    None for formats with two numeric fields side by side (where a greedy field need not take
    what DuckDB's parser takes), or with letters outside directives.

    Examples
    --------
    >>> sure_regex("%Y%m%d") is None
    True
    """
    tokens: list[str] = []
    i, last_numeric = 0, False
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%" and i + 1 < len(fmt):
            name = _FIELDS.get(fmt[i + 1], ("", 0))[0]
            i += 2
            if not name or last_numeric:
                return None
            tokens.append("{" + name + "}")
            last_numeric = True
            continue
        if ch.isalnum():
            return None
        if ch.isspace():
            while i < len(fmt) and fmt[i].isspace():
                i += 1
            tokens.append(_SPACE)
        else:
            tokens.append(re.escape(ch))
            i += 1
        last_numeric = False
    template = "".join(tokens)
    if "{month}" not in template or "{day}" not in template:
        return None
    return f"^(?:{_alternatives(template)})$"


def _alternatives(template: str) -> str:
    body = "|".join(
        template.replace("{month}", month).replace("{day}", day) for month, day in _MONTH_DAY
    )
    for name, rx in _SURE.items():
        body = body.replace("{" + name + "}", rx)
    return body


#: ISO text that is certainly valid: a date, optionally a time without fraction or zone.
SURE_ISO = (
    "^(?:" + _alternatives("{year}-{month}-{day}") + ")"
    "(?:[ T](?:[01]?[0-9]|2[0-3]):[0-5]?[0-9](?::[0-5]?[0-9])?)?$"
)


MakeTimestamp = Callable[[Any, Any, Any, Any, Any, Any, Any], ir.TimestampValue]


def build_timestamp(
    text: ir.StringValue,
    pattern: DatePattern,
    make: MakeTimestamp,
    extract: Callable[[ir.StringValue, str, int], ir.StringValue] | None = None,
) -> ir.TimestampValue:
    """The timestamp ``text`` spells under ``pattern``, NULL where it does not or is no date.

    ``make(year, month, day, hour, minute, second, microsecond)`` is the engine's timestamp
    constructor (integer arguments; ``microsecond`` is None without a fraction in the
    pattern). ``extract(text, regex, group)`` returns a captured group
    (default: Ibis ``re_extract``).
    """
    get = extract or (lambda t, rx, i: t.re_extract(rx, i))
    matched = text.re_search(pattern.regex)
    parts: dict[str, Any] = {}
    for index, name in enumerate(pattern.groups, start=1):
        raw = get(text, pattern.regex, index)
        if name == "fraction":
            # First six digits, right-padded: DuckDB truncates to microseconds.
            digits = ibis.ifelse(raw.isnull(), "", raw).concat("000000").left(6)
            parts[name] = ibis.ifelse(matched, digits, "0").cast("int64")
            continue
        # A group left out of the match is empty (Spark) or NULL (PostgreSQL): 0 either way.
        present = matched & raw.notnull() & (raw.length() > 0)
        parts[name] = ibis.ifelse(present, raw, "0").cast("int32")
    year: Any = parts.get("year", ibis.literal(1900))
    if "year2" in parts:
        yy = parts["year2"]
        year = ibis.ifelse(yy < 69, yy + 2000, yy + 1900)
    month: Any = parts.get("month", ibis.literal(1)) if "month" in parts else ibis.literal(1)
    day: Any = parts.get("day", ibis.literal(1)) if "day" in parts else ibis.literal(1)
    hour: Any = parts.get("hour", ibis.literal(0))
    minute: Any = parts.get("minute", ibis.literal(0))
    second: Any = parts.get("second", ibis.literal(0))
    leap = ((year % 4) == 0) & (((year % 100) != 0) | ((year % 400) == 0))
    month_days = ibis.cases(
        (month == 2, ibis.ifelse(leap, 29, 28)),
        (month.isin([4, 6, 9, 11]), 30),
        else_=31,
    )
    valid = (
        matched
        & (year >= 1)
        & month.between(1, 12)
        & (day >= 1)
        & (day <= month_days)
        & (hour <= 23)
        & (minute <= 59)
        & (second <= 59)
    )
    made = make(year, month, day, hour, minute, second, parts.get("fraction"))
    return ibis.ifelse(valid, made, ibis.null("timestamp"))
