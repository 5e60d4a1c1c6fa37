-- Organizations (not deleted) by county, registration status, level, hub flag and status.
SELECT r.prefecture_code, r.prefecture_name, o.region_code, r.region_name,
       o.registration_status, o.level, o.is_hub, o.status,
       count(*) AS organizations
FROM dim_organization o
LEFT JOIN dim_region r ON r.region_code = o.region_code
WHERE o.status <> 'deleted'
GROUP BY r.prefecture_code, r.prefecture_name, o.region_code, r.region_name,
         o.registration_status, o.level, o.is_hub, o.status
