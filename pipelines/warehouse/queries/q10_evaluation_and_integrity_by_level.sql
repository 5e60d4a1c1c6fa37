-- Question: By management level, how many organizations were evaluated, with what mean composite score, and how many are listed as dishonest (失信)?
-- Reads: dim_organization. Deleted organizations are left out.
SELECT COALESCE(level, '未知') AS level,
       COUNT(*) AS organizations,
       COUNT(evaluation_score) AS evaluated,
       ROUND(AVG(evaluation_score), 2) AS mean_evaluation_score,
       SUM(CASE WHEN credit_status = '失信' THEN 1 ELSE 0 END) AS dishonest
FROM dim_organization
WHERE status <> 'deleted'
GROUP BY COALESCE(level, '未知')
ORDER BY organizations DESC, level;
