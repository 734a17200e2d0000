"""Hole detection: a batch must continue exactly where its partition's fence left off,
or advancing the fence to its greatest offset would skip records never applied."""

from __future__ import annotations

from cdp.pipeline.fence import describe, holes
from cdp.pipeline.records import Record


def _recs(*offsets: int, topic: str = "t", partition: int = 0) -> list[Record]:
    return [Record(topic, partition, o, None, b"{}") for o in offsets]


def test_a_batch_right_after_its_fence_has_no_holes() -> None:
    assert holes({("t", 0): 4}, _recs(5, 6, 7)) == {}


def test_a_first_batch_from_offset_zero_has_no_holes() -> None:
    assert holes({}, _recs(0, 1, 2)) == {}


def test_redelivered_records_below_the_fence_are_not_holes() -> None:
    assert holes({("t", 0): 4}, _recs(2, 3, 4, 5, 6)) == {}
    assert holes({("t", 0): 9}, _recs(2, 3, 4)) == {}  # all fenced


def test_records_skipped_after_the_fence_are_a_hole() -> None:
    assert holes({("t", 0): 4}, _recs(8, 9)) == {("t", 0): (5, 9)}


def test_records_skipped_inside_the_batch_are_a_hole() -> None:
    assert holes({("t", 0): 4}, _recs(5, 6, 9, 10)) == {("t", 0): (5, 10)}
    assert holes({}, _recs(0, 1, 3)) == {("t", 0): (None, 3)}


def test_a_first_batch_not_starting_at_zero_is_checked_from_the_log_start() -> None:
    assert holes({}, _recs(7, 8)) == {("t", 0): (None, 8)}


def test_partitions_are_checked_separately() -> None:
    batch = _recs(5, 6) + _recs(3, 4, partition=1) + _recs(0, topic="u")
    assert holes({("t", 0): 4, ("t", 1): 0}, batch) == {("t", 1): (1, 4)}


def test_offsets_kafka_was_read_and_found_empty_are_not_holes() -> None:
    # e.g. a transaction marker at offset 5: Kafka has no record there
    assert holes({("t", 0): 4}, _recs(6, 7), checked={("t", 0): 7}) == {}
    assert holes({("t", 0): 4}, _recs(6, 7, 10), checked={("t", 0): 7}) == {("t", 0): (5, 10)}


def test_describe_names_each_partition_its_position_and_offsets() -> None:
    records = [*_recs(5, 6, 7), Record("u", 1, 0, None, b"")]
    assert describe({("t", 0): 4}, records) == "t[0] @4 5-7/3 u[1] @- 0-0/1"
