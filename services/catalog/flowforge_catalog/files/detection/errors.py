"""The one error detection raises: the file cannot be read as CSV text at all.

Everything short of that (ragged rows, an all-null column, a failed AI call) is a warning in
the :class:`~flowforge_catalog.files.detection.result.Detection`, never an exception, so
the upload API can answer 422 for exactly this case and 200 with warnings for the rest.
"""

from __future__ import annotations


class DetectionError(ValueError):
    """The file is empty, binary, or not text in any encoding we know. The message says
    what was found and what to upload instead."""
