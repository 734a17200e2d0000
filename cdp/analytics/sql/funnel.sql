-- funnel: customers who reached each stage (or a later one) in [since, until), by
-- transitions.to_stage and the current journey stage (stage_since in range), overall
-- ('all') and by first-touch channel; conversion = reached(stage) / reached(previous).
CREATE OR REPLACE MACRO funnel(since := NULL, until := NULL) AS TABLE
WITH reached AS (
    SELECT customer_id, to_stage AS stage FROM transitions
    WHERE in_range(event_time, since, until)
    UNION ALL
    SELECT customer_id, stage FROM journey
    WHERE in_range(stage_since, since, until)
),
reach AS (
    SELECT r.customer_id, max(s.stage_rank) AS max_rank
    FROM reached r JOIN stages s USING (stage)
    GROUP BY r.customer_id
),
segmented AS (
    SELECT 'all' AS segment, customer_id, max_rank FROM reach
    UNION ALL
    SELECT coalesce(f.first_channel, 'unknown'), r.customer_id, r.max_rank
    FROM reach r LEFT JOIN first_touch f USING (customer_id)
),
counts AS (
    SELECT g.segment, s.stage_rank, s.stage,
           count(*) FILTER (WHERE g.max_rank >= s.stage_rank) AS customers
    FROM segmented g CROSS JOIN stages s
    GROUP BY g.segment, s.stage_rank, s.stage
)
SELECT segment, stage_rank, stage, customers,
       customers / nullif(lag(customers) OVER (PARTITION BY segment ORDER BY stage_rank), 0)
           AS conversion
FROM counts
ORDER BY segment = 'all' DESC, segment, stage_rank;
