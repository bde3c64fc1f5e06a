"""Which columns of a table's sample identify a person, and masking them for roles that may
not see them (docs/api.md, Catalog: sample rows).

A column is PII when its name says so (``email``, ``ssn``, ``national_id``, ``dob``, ...) or
when the values about to be returned look like it, by the same rules CSV detection tags
columns with (:func:`~flowforge_catalog.files.detection.semantics.semantic_type`, the types of
:data:`~flowforge_rules.csv.columns.PII_TYPES`): the decision is made on what would be sent,
so a value that looks like an e-mail address is never shown to a viewer whatever its column
is called."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from flowforge_shared.auth.roles import Role

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge_rules.csv.inference import TypeGuess

MASK = "****"

# Names that identify a person whatever their values look like (national ids of every kind,
# street addresses), tagged as what they are.
_SENSITIVE_NAMES = {
    "ssn": "ssn",
    "social_security_number": "ssn",
    "national_id": "national_id",
    "national_id_number": "national_id",
    "national_insurance_number": "national_id",
    "nin": "national_id",
    "tax_id": "national_id",
    "tin": "national_id",
    "passport_number": "national_id",
    "passport_no": "national_id",
    "email": "email",
    "email_address": "email",
    "phone": "phone",
    "phone_number": "phone",
    "mobile": "phone",
    "address": "street_address",
    "street_address": "street_address",
    "address_line_1": "street_address",
    "address_line1": "street_address",
}


def may_see_pii(role: Role) -> bool:
    """Admins, editors and auditors (who read what only admins and editors read) see PII in
    samples; viewers see it masked."""
    return role.allows(Role.AUDITOR)


def _guess(data_type: pa.DataType) -> TypeGuess:
    import pyarrow as pa  # the sample read it already: imported when a sample is asked for

    from flowforge_rules.csv.inference import TypeGuess

    if pa.types.is_integer(data_type):
        return TypeGuess(type="integer")
    if pa.types.is_floating(data_type):
        return TypeGuess(type="float")
    if pa.types.is_decimal(data_type):
        return TypeGuess(type="decimal")
    if pa.types.is_date(data_type):
        return TypeGuess(type="date")
    if pa.types.is_timestamp(data_type):
        return TypeGuess(type="timestamp")
    if pa.types.is_boolean(data_type):
        return TypeGuess(type="boolean")
    return TypeGuess(type="string")


def pii_columns(schema: pa.Schema, rows: Sequence[Sequence[Any]]) -> dict[str, str]:
    """``{column: what it holds}`` for the columns of ``rows`` (JSON values, in ``schema``'s
    order) that identify a person."""
    from flowforge_catalog.files.detection.semantics import semantic_type, snake_case
    from flowforge_rules.csv.columns import PII_TYPES

    found: dict[str, str] = {}
    for index, column in enumerate(schema):
        snake = snake_case(column.name)
        if snake in _SENSITIVE_NAMES:
            found[column.name] = _SENSITIVE_NAMES[snake]
            continue
        values = sorted({str(row[index]) for row in rows if row[index] is not None})
        tag = semantic_type(column.name, _guess(column.type), values)
        if tag in PII_TYPES:
            found[column.name] = tag
    return found


def mask(rows: list[list[Any]], columns: list[str], pii: dict[str, str]) -> list[list[Any]]:
    """The rows with every non-null value of a PII column replaced by :data:`MASK` (a null
    stays null: that a value is missing is not the value)."""
    hidden = [index for index, name in enumerate(columns) if name in pii]
    out = []
    for row in rows:
        row = list(row)
        for index in hidden:
            if row[index] is not None:
                row[index] = MASK
        out.append(row)
    return out
