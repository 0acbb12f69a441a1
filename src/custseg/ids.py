"""Customer and invoice ids: from the values stored in the source to canonical text.

Aggregations group by the stored values (:data:`CUSTOMER_KEY`, :data:`INVOICE_KEY`: a float
17850.0, text " 536365") and turn only the groups into canonical text (per group, not per row:
see docs/benchmarks.md). Grouping by them merges nothing that the canonical text keeps apart.
The expressions are backend-neutral; what a backend spells differently comes from its engine.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from .engine import ops_for

__all__ = [
    "CUSTOMER_KEY",
    "INVOICE_KEY",
    "canonical_text",
    "customer_missing",
    "customer_text",
    "invoice_text",
    "starts_with_c",
]

CUSTOMER_KEY = "customer_key"
INVOICE_KEY = "invoice_key"


def canonical_text(col: ir.Value) -> ir.StringValue:
    """Text, stripped, NULL if blank."""
    text = ops_for(col).strip_text(col.cast("string"))
    return ibis.ifelse(text == "", ibis.null("string"), text)


def invoice_text(key: ir.Value) -> ir.StringValue:
    """The canonical invoice id of a stored one: text, stripped, NULL if blank."""
    return canonical_text(key)


def customer_text(key: ir.Value) -> ir.StringValue:
    """The canonical customer id of a stored one: text, stripped, NULL if blank, NaN or infinite.

    Ids stored as floats (17850.0, from NaN-holding columns) lose '.0'; so does text "17850.0".
    """
    ops = ops_for(key)
    if key.type().is_floating():
        num: Any = key
        finite = ~ops.not_finite(num)
        whole = finite & (num == num.floor())
        text = ibis.ifelse(finite, canonical_text(num), ibis.null("string"))
        return ibis.ifelse(whole, num.cast("int64").cast("string"), text)
    return ops.drop_zero_fraction(canonical_text(key))


def customer_missing(key: ir.Value) -> ir.BooleanValue:
    """Whether :func:`customer_text` of a stored id is NULL, without building the text."""
    ops = ops_for(key)
    dtype = key.type()
    v: Any = key
    if dtype.is_floating():
        return ops.not_finite(v)
    text: Any = key if dtype.is_string() else key.cast("string")
    # Only a value starting below "!" (or empty) can be blank: see Engine.strip_text.
    return text.isnull() | (ops.below_bang(text) & (text.strip() == "")).fill_null(False)


def starts_with_c(stored: ir.Value) -> ir.BooleanValue:
    """Whether the stripped text starts with "C": stripping removes only characters below "!"."""
    s: Any = stored
    ops = ops_for(stored)
    return s.startswith("C") | (ops.below_bang(s) & s.strip().startswith("C"))
