-- The time bank per person: deposited (deduplicated service), redeemed, available.
WITH redeemed AS (
    SELECT volunteer_key, sum(hours) AS redeemed_hours
    FROM fact_redemption
    WHERE volunteer_key IS NOT NULL
    GROUP BY volunteer_key
)
SELECT v.volunteer_key, v.region_code,
       v.total_hours AS deposited_hours,
       coalesce(r.redeemed_hours, 0) AS redeemed_hours,
       v.total_hours - coalesce(r.redeemed_hours, 0) AS available_hours
FROM dim_volunteer v
LEFT JOIN redeemed r ON r.volunteer_key = v.volunteer_key
WHERE v.total_hours > 0 OR r.redeemed_hours IS NOT NULL
