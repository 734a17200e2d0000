-- ropo: per purchase ("Order Completed" in [since, until)) whether the same customer
-- had, in the window_days before it (strictly earlier), an online research touchpoint
-- (web/app "Product Viewed" | "Products Searched" | "Product Added") -- for a store
-- purchase (ROPO) -- or a "Store Visited" -- for a web/app purchase (showrooming).
CREATE OR REPLACE MACRO ropo_purchases(since := NULL, until := NULL, window_days := 30) AS TABLE
WITH purchases AS (
    SELECT message_id, customer_id, event_time, channel, category
    FROM analysis_events
    WHERE event = 'Order Completed' AND channel IN ('store', 'web', 'app')
      AND in_range(event_time, since, until)
),
research AS (
    SELECT customer_id, event_time FROM analysis_events
    WHERE channel IN ('web', 'app')
      AND event IN ('Product Viewed', 'Products Searched', 'Product Added')
),
visits AS (
    SELECT customer_id, event_time FROM analysis_events WHERE event = 'Store Visited'
),
-- ASOF: the latest research / visit strictly before each purchase.
with_research AS (
    SELECT p.*, r.event_time AS research_at
    FROM purchases p ASOF LEFT JOIN research r
      ON r.customer_id = p.customer_id AND p.event_time > r.event_time
)
SELECT w.message_id, w.customer_id, w.event_time, w.channel, w.category,
       w.channel = 'store' AS in_store,
       coalesce(w.research_at >= w.event_time - to_days(CAST(window_days AS INTEGER)), false)
           AS researched_online,
       coalesce(v.event_time >= w.event_time - to_days(CAST(window_days AS INTEGER)), false)
           AS visited_store
FROM with_research w ASOF LEFT JOIN visits v
  ON v.customer_id = w.customer_id AND w.event_time > v.event_time;

-- One row for all purchases (category NULL, is_total) and one per purchase category.
CREATE OR REPLACE MACRO ropo(since := NULL, until := NULL, window_days := 30) AS TABLE
SELECT grouping(category) = 1 AS is_total, category,
       count(*) FILTER (WHERE in_store) AS store_purchases,
       count(*) FILTER (WHERE in_store AND researched_online) AS ropo_purchases,
       coalesce(count(*) FILTER (WHERE in_store AND researched_online)
                / nullif(count(*) FILTER (WHERE in_store), 0), 0) AS ropo_rate,
       count(*) FILTER (WHERE NOT in_store) AS online_purchases,
       count(*) FILTER (WHERE NOT in_store AND visited_store) AS showrooming_purchases,
       coalesce(count(*) FILTER (WHERE NOT in_store AND visited_store)
                / nullif(count(*) FILTER (WHERE NOT in_store), 0), 0) AS showrooming_rate
FROM ropo_purchases(since := since, until := until, window_days := window_days)
GROUP BY GROUPING SETS ((), (category))
HAVING grouping(category) = 1 OR category IS NOT NULL
ORDER BY is_total DESC, category;
