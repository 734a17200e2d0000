-- Activation waits for the journey (docs/activation.md, "The payload and the journey").
-- After each batch the actions processor records the combined watermark it reached
-- and the offsets of cdp.touchpoints.resolved it had read by then. Timers fire at the
-- watermark of the latest checkpoint whose offsets the journey processor has applied
-- too, so the payload read from the journey row (cart, touchpoints, stage) includes
-- every event the watermark has passed. Checkpoints older than that one are deleted.
CREATE TABLE activation_checkpoints (
    seq        bigserial   PRIMARY KEY,
    watermark  timestamptz NOT NULL,
    partitions integer[]   NOT NULL,
    offsets    bigint[]    NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The checkpoint of the batch that read a timer's trigger: the timer fires only once
-- the journey has applied that checkpoint's offsets (0: no wait, timers from before).
ALTER TABLE activation_timers ADD COLUMN checkpoint bigint NOT NULL DEFAULT 0;
