-- drop_off: current customers (journey rows not merged away) whose stage was entered
-- in [since, until); a customer has dropped off when their last activity (last
-- touchpoint, else journey.last_event_at, else stage_since) is more than
-- threshold_days before as_of (default: the newest event time in the lake).
CREATE OR REPLACE MACRO drop_off_customers(since := NULL, until := NULL, threshold_days := 30,
                                           as_of := NULL) AS TABLE
WITH clock AS (
    SELECT coalesce(CAST(as_of AS TIMESTAMPTZ),
                    (SELECT max(event_time) FROM analysis_events), now()) AS t
),
last_touch AS (
    SELECT customer_id, channel, label, event_time
    FROM analysis_events
    QUALIFY row_number() OVER (PARTITION BY customer_id
                               ORDER BY event_time DESC, message_id DESC) = 1
)
SELECT j.customer_id, j.stage, s.stage_rank,
       coalesce(l.event_time, j.last_event_at, j.stage_since) AS last_active,
       coalesce(l.event_time, j.last_event_at, j.stage_since)
           < (SELECT t FROM clock) - to_days(CAST(threshold_days AS INTEGER)) AS dropped,
       coalesce(l.channel, j.last_channel) AS last_channel,
       l.label AS last_event
FROM journey j
LEFT JOIN stages s USING (stage)
LEFT JOIN last_touch l ON l.customer_id = j.customer_id
WHERE j.is_current AND in_range(j.stage_since, since, until);

CREATE OR REPLACE MACRO drop_off(since := NULL, until := NULL, threshold_days := 30,
                                 as_of := NULL) AS TABLE
SELECT stage, stage_rank, count(*) AS customers,
       count(*) FILTER (WHERE dropped) AS dropped,
       count(*) FILTER (WHERE dropped) / count(*) AS drop_rate
FROM drop_off_customers(since := since, until := until, threshold_days := threshold_days,
                        as_of := as_of)
GROUP BY stage, stage_rank
ORDER BY stage_rank NULLS LAST, stage;

-- Where the dropped customers were last seen, per stage (ties: channel, event).
CREATE OR REPLACE MACRO drop_off_last_touch(since := NULL, until := NULL, threshold_days := 30,
                                            as_of := NULL) AS TABLE
SELECT stage, last_channel, last_event, count(*) AS customers
FROM drop_off_customers(since := since, until := until, threshold_days := threshold_days,
                        as_of := as_of)
WHERE dropped
GROUP BY ALL
ORDER BY stage, customers DESC, last_channel NULLS LAST, last_event NULLS LAST;
