-- stage_durations: a stay in a stage starts at a transition into it and ends at the
-- customer's next transition (order: event_time, transition_id). Stays that started
-- in [since, until) are counted; median and p90 (continuous quantiles) are over the
-- completed stays, in seconds.
CREATE OR REPLACE MACRO stage_durations(since := NULL, until := NULL) AS TABLE
WITH stays AS (
    SELECT customer_id, to_stage AS stage, event_time AS entered_at,
           lead(event_time) OVER (PARTITION BY customer_id
                                  ORDER BY event_time, transition_id) AS left_at
    FROM transitions
),
secs AS (
    SELECT stage, epoch(left_at) - epoch(entered_at) AS seconds
    FROM stays WHERE in_range(entered_at, since, until)
)
SELECT x.stage, s.stage_rank,
       count(*) AS stays,
       count(seconds) AS completed,
       quantile_cont(seconds, 0.5) AS median_s,
       quantile_cont(seconds, 0.9) AS p90_s
FROM secs x LEFT JOIN stages s USING (stage)
GROUP BY x.stage, s.stage_rank
ORDER BY s.stage_rank NULLS LAST, x.stage;
