-- Archive: partitions whose lake files are being written by a batch not committed yet
-- (docs/guarantees.md, "The archive"). The archive processor marks a partition here, in its own committed
-- transaction, before writing the batch's files, and deletes the mark in the batch's
-- transaction with the fence. A mark still present at the next batch means a batch
-- died between its files and its commit: only then are the partition's files above
-- the fence looked for and removed (a walk of the whole lake, too slow for every batch).
CREATE TABLE archive_pending (
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    marked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);
