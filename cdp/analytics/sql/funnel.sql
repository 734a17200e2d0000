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
-- customers per segment ('all' and first-touch channel) and furthest stage: one pass
by_rank AS (
    SELECT CASE WHEN grouping(f.first_channel) = 1 THEN 'all'
                ELSE coalesce(f.first_channel, 'unknown') END AS segment,
           r.max_rank, count(*) AS n
    FROM reach r LEFT JOIN first_touch f USING (customer_id)
    GROUP BY GROUPING SETS ((r.max_rank), (f.first_channel, r.max_rank))
),
-- reached(stage) = customers whose furthest stage is that one or a later one: a cross
-- join of the few (segment, rank) groups with the stages, not of every customer
counts AS (
    SELECT g.segment, s.stage_rank, s.stage,
           CAST(coalesce(sum(g.n) FILTER (WHERE g.max_rank >= s.stage_rank), 0) AS BIGINT)
               AS customers
    FROM by_rank g CROSS JOIN stages s
    GROUP BY g.segment, s.stage_rank, s.stage
)
SELECT segment, stage_rank, stage, customers,
       customers / nullif(lag(customers) OVER (PARTITION BY segment ORDER BY stage_rank), 0)
           AS conversion
FROM counts
ORDER BY segment = 'all' DESC, segment, stage_rank;
