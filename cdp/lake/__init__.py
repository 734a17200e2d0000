"""The Parquet lake: resolved events archived by date, channel and Kafka offset range.

Public API: :class:`LakeWriter` (``write_batch``, ``discard_uncommitted``) and
:func:`compact`; the file layout is described in :mod:`cdp.lake.layout`.
"""

from cdp.lake.compact import CompactionResult, compact
from cdp.lake.rows import SCHEMA
from cdp.lake.writer import LakeWriter

__all__ = ["SCHEMA", "CompactionResult", "LakeWriter", "compact"]
