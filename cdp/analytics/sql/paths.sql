-- paths: for customers whose first purchase ("Order Completed", order: event_time,
-- message_id) falls in [since, until), the channels of every touchpoint up to and
-- including that purchase, consecutive duplicates collapsed ("web > store").
CREATE OR REPLACE MACRO purchase_paths(since := NULL, until := NULL) AS TABLE
WITH first_purchase AS (
    SELECT customer_id, event_time AS at, message_id AS mid
    FROM analysis_events WHERE event = 'Order Completed'
    QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY event_time, message_id) = 1
),
touches AS (
    SELECT e.customer_id, e.channel, e.event_time, e.message_id,
           lag(e.channel) OVER (PARTITION BY e.customer_id
                                ORDER BY e.event_time, e.message_id) AS previous
    FROM analysis_events e JOIN first_purchase f USING (customer_id)
    WHERE in_range(f.at, since, until)
      AND (e.event_time < f.at OR (e.event_time = f.at AND e.message_id <= f.mid))
)
SELECT customer_id,
       string_agg(channel, ' > ' ORDER BY event_time, message_id) AS path
FROM touches
WHERE previous IS DISTINCT FROM channel
GROUP BY customer_id;

CREATE OR REPLACE MACRO paths(since := NULL, until := NULL) AS TABLE
SELECT path, count(*) AS customers, count(*) / sum(count(*)) OVER () AS share
FROM purchase_paths(since := since, until := until)
GROUP BY path
ORDER BY customers DESC, path;
