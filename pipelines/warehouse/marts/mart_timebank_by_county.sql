-- The time bank per county of the person; every county listed, unknown counties as one row.
WITH people AS (
    SELECT t.*, r.region_code AS county
    FROM mart_timebank_by_volunteer t
    LEFT JOIN dim_region r ON r.region_code = t.region_code
), areas AS (
    SELECT prefecture_code, prefecture_name, region_code, region_name FROM dim_region
    UNION ALL
    SELECT NULL, NULL, NULL, NULL WHERE EXISTS (SELECT 1 FROM people WHERE county IS NULL)
)
SELECT a.prefecture_code, a.prefecture_name, a.region_code, a.region_name,
       count(p.volunteer_key) AS volunteers,
       count(p.volunteer_key) FILTER (WHERE p.redeemed_hours > 0) AS redeeming_volunteers,
       coalesce(sum(p.deposited_hours), 0) AS deposited_hours,
       coalesce(sum(p.redeemed_hours), 0) AS redeemed_hours,
       coalesce(sum(p.available_hours), 0) AS available_hours,
       coalesce(sum(p.provincial_redeemed_hours), 0) AS provincial_redeemed_hours,
       coalesce(sum(p.national_redeemed_hours), 0) AS national_redeemed_hours
FROM areas a
LEFT JOIN people p ON p.county IS NOT DISTINCT FROM a.region_code
GROUP BY a.prefecture_code, a.prefecture_name, a.region_code, a.region_name
