-- Each organization's latest-period score per evaluator type and the composite score.
SELECT t.org_key, o.name, r.prefecture_code, t.period,
       max(t.type_score) FILTER (WHERE t.evaluator = 'registration_authority') AS registration_authority_score,
       max(t.type_score) FILTER (WHERE t.evaluator = 'funder') AS funder_score,
       max(t.type_score) FILTER (WHERE t.evaluator = 'beneficiary') AS beneficiary_score,
       max(t.type_score) FILTER (WHERE t.evaluator = 'self') AS self_score,
       max(t.type_score) FILTER (WHERE t.evaluator = 'third_party') AS third_party_score,
       count(*) AS evaluator_types,
       avg(t.type_score) AS composite_score
FROM evaluation_type_scores t
LEFT JOIN dim_organization o ON o.org_key = t.org_key
LEFT JOIN dim_region r ON r.region_code = o.region_code
GROUP BY t.org_key, o.name, r.prefecture_code, t.period
