-- Evaluations (not deleted) per period and evaluator type. An evaluation of a deleted
-- organization (its record withdrawn at the source) is left out, as the organization is from
-- every other organization figure; one whose team is not in the warehouse (quarantined) stays.
SELECT e.period, e.evaluator,
       count(*) AS evaluations,
       count(DISTINCT m.org_key) AS organizations,
       avg(e.score) AS mean_score
FROM in_staged_evaluations e
LEFT JOIN organization_source_map m ON m.source = e.source AND m.source_id = e.org_source_id
LEFT JOIN dim_organization o ON o.org_key = m.org_key
WHERE NOT coalesce(e.is_deleted, false) AND e.score IS NOT NULL
  AND o.status IS DISTINCT FROM 'deleted'
GROUP BY e.period, e.evaluator
