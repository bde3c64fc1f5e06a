"""CSV schema detection: dialect, encoding, column types, meaning and keys from a bounded
sample of a file, heuristically (always, offline) and optionally assisted by an OpenAI model.

Public API::

    detect(source, *, sample_bytes=4 MiB, ai=None, allow_sample_values=False) -> Detection
    to_file_config(detection) -> dict          # the fileConfig a job should use
    preview(source, detection, rows=20) -> list[dict[str, str | None]]
    read_preview(source, detection, rows=20) -> Preview    # the rows and their warnings
    neutralise_for_export(value) -> str        # for every CSV/Excel export FlowForge writes
    SampleSource, LocalFileSource              # where the bytes come from
    AiSettings, ai_settings_from_env()         # the optional model
    DetectionError(ValueError)                 # empty, binary or undecodable file (HTTP 422)

Modules: :mod:`.sampling` (sources, chunks), :mod:`.encoding`, :mod:`.preamble`,
:mod:`.dialect`, :mod:`.semantics`, :mod:`.fileconfig`, :mod:`.preview`, :mod:`.ai`,
:mod:`.result` (the response model) and :mod:`.detect`, which runs them in order. Type
inference, the column model and the column overrides are shared with the ingest worker:
:mod:`flowforge_rules.csv`.
"""

from flowforge_catalog.files.detection.ai import AiSettings, ai_settings_from_env
from flowforge_catalog.files.detection.detect import DEFAULT_SAMPLE_BYTES, detect
from flowforge_catalog.files.detection.errors import DetectionError
from flowforge_catalog.files.detection.fileconfig import to_file_config
from flowforge_catalog.files.detection.preview import (
    Preview,
    neutralise_for_export,
    preview,
    read_preview,
)
from flowforge_catalog.files.detection.result import (
    PII_TYPES,
    DetectedColumn,
    Detection,
    NumberFormat,
)
from flowforge_catalog.files.detection.sampling import LocalFileSource, SampleSource

__all__ = [
    "DEFAULT_SAMPLE_BYTES",
    "PII_TYPES",
    "AiSettings",
    "DetectedColumn",
    "Detection",
    "DetectionError",
    "LocalFileSource",
    "NumberFormat",
    "Preview",
    "SampleSource",
    "ai_settings_from_env",
    "detect",
    "neutralise_for_export",
    "preview",
    "read_preview",
    "to_file_config",
]
