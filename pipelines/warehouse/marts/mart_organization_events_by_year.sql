-- Organizations newly registered and exited per year, from organization_status_history.
-- A row starts an event when it is the organization's first row or the previous row had
-- another value. Registration is dated by valid_from (the founding date for an organization
-- registered when first seen); an exit seen at the first sync is dated by the source's last
-- change (source_changed_on), since the founding date says nothing about an exit.
-- An organization registered when first seen whose founding date no source gives has no
-- registration year (year NULL): its first row starts at the source's last change, which
-- would have counted it as registered in the year someone last edited it.
-- Deleted organizations (records withdrawn at the source) count in no year, as in every
-- other organization figure.
WITH ordered AS (
    SELECT h.*,
           lag(h.registration_status) OVER (PARTITION BY h.org_key ORDER BY h.valid_from) AS previous_registration,
           lag(h.status) OVER (PARTITION BY h.org_key ORDER BY h.valid_from) AS previous_status,
           row_number() OVER (PARTITION BY h.org_key ORDER BY h.valid_from) AS row_in_history
    FROM organization_status_history h
), events AS (
    SELECT d.org_key,
           CASE WHEN d.start_inferred AND o.founded_on IS NULL THEN NULL ELSE year(d.valid_from) END AS year,
           'registered' AS event
    FROM ordered d
    JOIN dim_organization o ON o.org_key = d.org_key
    WHERE d.registration_status = 'registered'
      AND (d.row_in_history = 1 OR d.previous_registration IS DISTINCT FROM 'registered')
    UNION ALL
    SELECT org_key,
           year(CASE WHEN start_inferred THEN coalesce(source_changed_on, valid_from) ELSE valid_from END),
           'exited'
    FROM ordered
    WHERE status = 'exited'
      AND (row_in_history = 1 OR previous_status IS DISTINCT FROM 'exited')
)
SELECT e.year, r.prefecture_code, r.prefecture_name,
       count(*) FILTER (WHERE e.event = 'registered') AS newly_registered,
       count(*) FILTER (WHERE e.event = 'exited') AS exited
FROM events e
JOIN dim_organization o ON o.org_key = e.org_key
LEFT JOIN dim_region r ON r.region_code = o.region_code
WHERE o.status <> 'deleted'
GROUP BY e.year, r.prefecture_code, r.prefecture_name
