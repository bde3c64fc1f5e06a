"""Where a job's file may be: a relative path inside the landing area.

One rule for everyone who handles ``fileConfig.filePath``: the job contract refuses a bad
path when the job is saved (422 naming the field), and the ingest worker checks the same rule
again before it opens anything, locally or on S3 (a job saved before this check existed, or
a template's). The worker then also refuses what only the file system can tell: a symlink
leading out of the landing area, a path that is not a regular file.

Refused: an empty path; NUL and other control characters; backslashes (a separator to the
user who typed them, an ordinary character on POSIX — refused rather than guessed); absolute
paths (``/etc/passwd``, ``C:\\x``, ``C:x``, ``//server/share``); URLs (``s3://...``);
any ``..`` component (``../x.csv``, ``a/../../b``, even ``a/../b``); and paths that name a
folder (``.``, ``sales/``).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

EXAMPLE = "such as 'sales/2024-01.csv'"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def landing_path_problem(file_path: str) -> str | None:
    """Why ``file_path`` cannot name a file in the landing area, or None when it can."""
    if not file_path.strip():
        return f"is empty: give the file's path relative to the landing area, {EXAMPLE}"
    if "\x00" in file_path:
        return "contains a NUL character"
    if _CONTROL.search(file_path):
        return "contains a control character (a line break or tab)"
    if "\\" in file_path:
        return "contains a backslash: use '/' between folders"
    if "://" in file_path:
        return f"is a URL: give a path relative to the landing area, {EXAMPLE}"
    if PurePosixPath(file_path).is_absolute() or PureWindowsPath(file_path).drive:
        return f"is absolute: give a path relative to the landing area, {EXAMPLE}"
    if ".." in PurePosixPath(file_path).parts:
        return "contains '..': the path must stay inside the landing area"
    if file_path.endswith("/") or PurePosixPath(file_path).name in ("", "."):
        return f"names a folder, not a file, {EXAMPLE}"
    return None


def shown(file_path: str) -> str:
    """The path as messages quote it: cut short, so a megabyte of path is not echoed."""
    return repr(file_path if len(file_path) <= 200 else file_path[:200] + "…")


def _checked(file_path: str) -> str:
    problem = landing_path_problem(file_path)
    if problem is not None:
        raise PydanticCustomError(
            "landing_path", "{path} {problem}", {"path": shown(file_path), "problem": problem}
        )
    return file_path


LandingPath = Annotated[str, AfterValidator(_checked)]
"""A ``filePath`` field: checked by :func:`landing_path_problem` when the model is built."""
