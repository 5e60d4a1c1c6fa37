-- Evaluations (not deleted) per period and evaluator type.
SELECT e.period, e.evaluator,
       count(*) AS evaluations,
       count(DISTINCT m.org_key) AS organizations,
       avg(e.score) AS mean_score
FROM in_staged_evaluations e
LEFT JOIN organization_source_map m ON m.source = e.source AND m.source_id = e.org_source_id
WHERE NOT coalesce(e.is_deleted, false) AND e.score IS NOT NULL
GROUP BY e.period, e.evaluator
