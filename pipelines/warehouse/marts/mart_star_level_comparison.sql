-- Stars computed from deduplicated hours against each source's own rating, per live account.
SELECT m.source,
       v.star_level AS computed_star_level,
       s.source_star_level,
       v.star_level = s.source_star_level AS agrees,
       count(*) AS accounts
FROM in_staged_volunteers s
JOIN volunteer_source_map m ON m.source = s.source AND m.source_id = s.source_id
JOIN dim_volunteer v ON v.volunteer_key = m.volunteer_key
WHERE NOT coalesce(s.is_deleted, false) AND s.source_star_level IS NOT NULL
GROUP BY m.source, v.star_level, s.source_star_level
