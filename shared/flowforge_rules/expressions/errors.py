"""The one error the expression rules (and the transform worker's sandbox) raise.

    ValueError
     └── ExpressionError   refused at check time, or failed while DuckDB evaluated it

It is terminal: the user has to change the expression (or the data), a retry gives the same
answer. It crosses process boundaries (Celery results), so it pickles with its fields.
"""

from __future__ import annotations

from typing import ClassVar, Literal

Stage = Literal["check", "evaluation"]

_SHOWN_CHARS = 200  # the full text stays in .expression; the message shows a readable head


class ExpressionError(ValueError):
    """A user expression was refused (stage "check") or failed to evaluate ("evaluation")."""

    terminal: ClassVar[bool] = True

    def __init__(self, expression: str, reason: str, stage: Stage = "check") -> None:
        self.expression = expression
        self.reason = reason
        self.stage = stage
        shown = expression if len(expression) <= _SHOWN_CHARS else expression[:_SHOWN_CHARS] + "…"
        verb = "refused" if stage == "check" else "failed"
        super().__init__(f'expression "{shown}" {verb}: {reason}')

    def __reduce__(self) -> tuple[type[ExpressionError], tuple[str, str, Stage]]:
        # BaseException pickles self.args (the message alone), which __init__ cannot take.
        return (type(self), (self.expression, self.reason, self.stage))
