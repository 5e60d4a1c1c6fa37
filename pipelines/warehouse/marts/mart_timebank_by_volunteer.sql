-- The time bank per person: deposited (deduplicated service), redeemed, available.
-- Redeemed hours come from both systems: 志愿贵州's redemption rows (fact_redemption) and
-- the national system's own counter of hours already redeemed (albp0093, staged as
-- timebank_redeemed_hours) on each live national account. The national system gives no
-- redemption rows, only that counter: leaving it out overstated the balance of every person
-- who redeemed hours there.
WITH provincial AS (
    SELECT volunteer_key, sum(hours) AS redeemed_hours
    FROM fact_redemption
    WHERE volunteer_key IS NOT NULL
    GROUP BY volunteer_key
), national AS (
    SELECT m.volunteer_key, sum(CAST(s.timebank_redeemed_hours AS DECIMAL(18, 6))) AS redeemed_hours
    FROM in_staged_volunteers s
    JOIN volunteer_source_map m ON m.source = s.source AND m.source_id = s.source_id
    WHERE s.source = 'national' AND NOT coalesce(s.is_deleted, false)
      AND s.timebank_redeemed_hours > 0
    GROUP BY m.volunteer_key
)
SELECT v.volunteer_key, v.region_code,
       v.total_hours AS deposited_hours,
       coalesce(p.redeemed_hours, 0) + coalesce(n.redeemed_hours, 0) AS redeemed_hours,
       v.total_hours - coalesce(p.redeemed_hours, 0) - coalesce(n.redeemed_hours, 0) AS available_hours,
       coalesce(p.redeemed_hours, 0) AS provincial_redeemed_hours,
       coalesce(n.redeemed_hours, 0) AS national_redeemed_hours
FROM dim_volunteer v
LEFT JOIN provincial p ON p.volunteer_key = v.volunteer_key
LEFT JOIN national n ON n.volunteer_key = v.volunteer_key
WHERE v.total_hours > 0 OR p.redeemed_hours IS NOT NULL OR n.redeemed_hours IS NOT NULL
