-- Registration rate of organizations (not deleted or exited), province and prefectures.
WITH orgs AS (
    SELECT o.registration_status, o.is_hub, r.prefecture_code, r.prefecture_name
    FROM dim_organization o
    LEFT JOIN dim_region r ON r.region_code = o.region_code
    WHERE o.status NOT IN ('deleted', 'exited')
), prefectures AS (
    SELECT DISTINCT prefecture_code, prefecture_name FROM dim_region
    UNION ALL
    SELECT NULL, NULL WHERE EXISTS (SELECT 1 FROM orgs WHERE prefecture_code IS NULL)
), counted AS (
    SELECT 'province' AS area_level, '52' AS area_code, '贵州省' AS area_name,
           count(*) AS organizations,
           count(*) FILTER (WHERE registration_status = 'registered') AS registered,
           count(*) FILTER (WHERE registration_status = 'filed') AS filed,
           count(*) FILTER (WHERE registration_status = 'unregistered') AS unregistered,
           count(*) FILTER (WHERE is_hub) AS hubs
    FROM orgs
    UNION ALL
    SELECT 'prefecture', p.prefecture_code, p.prefecture_name,
           count(o.registration_status),
           count(o.registration_status) FILTER (WHERE o.registration_status = 'registered'),
           count(o.registration_status) FILTER (WHERE o.registration_status = 'filed'),
           count(o.registration_status) FILTER (WHERE o.registration_status = 'unregistered'),
           count(o.registration_status) FILTER (WHERE o.is_hub)
    FROM prefectures p
    LEFT JOIN orgs o ON o.prefecture_code IS NOT DISTINCT FROM p.prefecture_code
    GROUP BY p.prefecture_code, p.prefecture_name
)
SELECT *,
       CASE WHEN organizations > 0 THEN registered / organizations END AS registration_rate
FROM counted
