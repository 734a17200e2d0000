-- touchpoint_lift: population = customers with an event in [since, until). For each
-- touchpoint label L (other than "Order Completed") a customer is exposed when they
-- had L in range; the reference time is their first L in range (exposed) or their
-- first event in range (not exposed). Converted = an "Order Completed" strictly after
-- the reference and at most window_days after it. lift = exposed_rate / unexposed_rate.
CREATE OR REPLACE MACRO touchpoint_lift(since := NULL, until := NULL, window_days := 30) AS TABLE
WITH ranged AS (
    SELECT customer_id, label, event_time FROM analysis_events
    WHERE in_range(event_time, since, until)
),
population AS (
    SELECT customer_id, min(event_time) AS first_at FROM ranged GROUP BY customer_id
),
exposure AS (
    SELECT customer_id, label, min(event_time) AS first_at
    FROM ranged WHERE label <> 'Order Completed'
    GROUP BY customer_id, label
),
labels AS (SELECT DISTINCT label FROM exposure),
grid AS (
    SELECT p.customer_id, l.label, x.first_at IS NOT NULL AS exposed,
           coalesce(x.first_at, p.first_at) AS ref
    FROM population p CROSS JOIN labels l
    LEFT JOIN exposure x ON x.customer_id = p.customer_id AND x.label = l.label
),
purchases AS (
    SELECT customer_id, event_time FROM analysis_events WHERE event = 'Order Completed'
),
outcome AS (
    SELECT g.label, g.exposed,
           coalesce(q.event_time <= g.ref + to_days(CAST(window_days AS INTEGER)), false)
               AS converted
    FROM grid g ASOF LEFT JOIN purchases q
      ON q.customer_id = g.customer_id AND q.event_time > g.ref
),
rates AS (
    SELECT label,
           count(*) FILTER (WHERE exposed) AS exposed,
           count(*) FILTER (WHERE exposed AND converted) AS exposed_converted,
           count(*) FILTER (WHERE NOT exposed) AS unexposed,
           count(*) FILTER (WHERE NOT exposed AND converted) AS unexposed_converted
    FROM outcome GROUP BY label
)
SELECT label AS event, exposed, exposed_converted,
       exposed_converted / nullif(exposed, 0) AS exposed_rate,
       unexposed, unexposed_converted,
       unexposed_converted / nullif(unexposed, 0) AS unexposed_rate,
       (exposed_converted / nullif(exposed, 0))
           / nullif(unexposed_converted / nullif(unexposed, 0), 0) AS lift
FROM rates
ORDER BY lift DESC NULLS LAST, event;
