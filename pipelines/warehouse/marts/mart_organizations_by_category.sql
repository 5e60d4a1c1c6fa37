-- Organizations (not deleted or exited) counted under each of their service categories.
WITH labelled AS (
    SELECT org_key, registration_status, region_code,
           trim(unnest(string_split(categories, ','))) AS category
    FROM dim_organization
    WHERE status NOT IN ('deleted', 'exited') AND categories IS NOT NULL AND categories <> ''
)
SELECT l.category, r.prefecture_code, r.prefecture_name,
       count(DISTINCT l.org_key) AS organizations,
       count(DISTINCT l.org_key) FILTER (WHERE l.registration_status = 'registered') AS registered
FROM labelled l
LEFT JOIN dim_region r ON r.region_code = l.region_code
WHERE l.category <> ''
GROUP BY l.category, r.prefecture_code, r.prefecture_name
