"""Checking one expression alone, as a job's save checks it, so a form can say what is wrong
while it is being typed (the web UI's derived columns and filters)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import Field, StringConstraints

from flowforge_shared.contracts.base import ApiModel
from flowforge_shared.contracts.jobs import Expression
from flowforge_shared.errors import Unprocessable

router = APIRouter(prefix="/validate", tags=["jobs"])


class ExpressionCheck(ApiModel):
    expression: Expression
    columns: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] | None = Field(
        default=None,
        max_length=2000,
        description="The input's columns, when known: a column not among them is refused "
        "as a run would refuse it; without, any column name is accepted (as on save)",
    )


class ExpressionChecked(ApiModel):
    valid: bool
    columns: list[str] = Field(description="The input columns the expression reads")


@router.post("/expression", response_model=ExpressionChecked)
def validate_expression(data: ExpressionCheck) -> ExpressionChecked:
    """The job's save rule for a derived column or a filter (``check_expression``): 200 with
    the columns it reads, or 422 naming ``expression`` with the message a save would give."""
    # sqlglot is imported when an expression is checked, not with the API (RSS at rest)
    from flowforge_rules.expressions import ExpressionError, check_expression, referenced_columns

    try:
        check_expression(data.expression, data.columns)
        columns = sorted(referenced_columns(data.expression))
    except ExpressionError as error:
        raise Unprocessable([(("expression",), str(error))]) from None
    return ExpressionChecked(valid=True, columns=columns)
