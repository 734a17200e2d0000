-- attribution: the touchpoints of a purchase ("Order Completed" in [since, until)) are
-- the same customer's other non-purchase events in the window_days strictly before
-- it (order: event_time, message_id); a purchase with none is its own only touch.
CREATE OR REPLACE MACRO attribution_touches(since := NULL, until := NULL, window_days := 30) AS TABLE
WITH purchases AS (
    SELECT message_id AS purchase_id, customer_id, event_time, channel
    FROM analysis_events
    WHERE event = 'Order Completed' AND in_range(event_time, since, until)
),
prior AS (
    SELECT p.purchase_id, e.channel, e.event_time, e.message_id
    FROM purchases p JOIN analysis_events e
      ON e.customer_id = p.customer_id
     AND e.event_time < p.event_time
     AND e.event_time >= p.event_time - to_days(CAST(window_days AS INTEGER))
    WHERE e.event IS DISTINCT FROM 'Order Completed'
),
touches AS (
    SELECT * FROM prior
    UNION ALL
    SELECT purchase_id, channel, event_time, purchase_id FROM purchases
    WHERE purchase_id NOT IN (SELECT purchase_id FROM prior)
)
SELECT purchase_id, channel,
       row_number() OVER (PARTITION BY purchase_id ORDER BY event_time, message_id) AS pos,
       count(*) OVER (PARTITION BY purchase_id) AS n
FROM touches;

-- Heuristic models; each purchase hands out exactly 1 credit per model.
CREATE OR REPLACE MACRO attribution(since := NULL, until := NULL, window_days := 30) AS TABLE
SELECT channel,
       count(*) FILTER (WHERE pos = 1) :: DOUBLE AS first_touch,
       count(*) FILTER (WHERE pos = n) :: DOUBLE AS last_touch,
       sum(1.0 / n) AS linear,
       sum(CASE WHEN n = 1 THEN 1.0
                WHEN n = 2 THEN 0.5
                WHEN pos = 1 OR pos = n THEN 0.4
                ELSE 0.2 / (n - 2) END) AS position_based
FROM attribution_touches(since := since, until := until, window_days := window_days)
GROUP BY channel
ORDER BY channel;

-- Markov input: one row per distinct channel path with its conversions and
-- non-conversions. Converting paths are the purchases' touch sequences; a customer
-- with events in [since, until) and no purchase there contributes one
-- non-converting path: their events of the window_days up to their last one.
CREATE OR REPLACE MACRO markov_paths(since := NULL, until := NULL, window_days := 30) AS TABLE
WITH converting AS (
    SELECT list(channel ORDER BY pos) AS path
    FROM attribution_touches(since := since, until := until, window_days := window_days)
    GROUP BY purchase_id
),
ranged AS (
    SELECT customer_id, channel, event_time, message_id, event,
           max(event_time) OVER (PARTITION BY customer_id) AS last_at
    FROM analysis_events WHERE in_range(event_time, since, until)
),
lost AS (
    SELECT list(channel ORDER BY event_time, message_id) AS path
    FROM ranged
    WHERE event_time >= last_at - to_days(CAST(window_days AS INTEGER))
      AND customer_id NOT IN (SELECT customer_id FROM ranged
                              WHERE event = 'Order Completed')
    GROUP BY customer_id
)
SELECT path, sum(conversions) AS conversions, sum(1 - conversions) AS losses
FROM (SELECT path, 1 AS conversions FROM converting
      UNION ALL SELECT path, 0 FROM lost)
GROUP BY path;
