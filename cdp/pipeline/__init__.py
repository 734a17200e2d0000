"""Building blocks shared by every stream processor: records, offset fences,
message de-duplication, dead letters, publishing and retries.

A processor is a plain synchronous ``process(records) -> BatchResult`` over a batch
of Kafka records; ``streams/`` only adapts Faust's ``take_events`` batches to it. So
the guarantees are tested without Faust, and Faust's pitfalls (an exception acks the
message) are kept out: the runner never lets one escape.
"""
