-- Question: How many organizations were registered at the end of 2025?
-- Reads: organization_status_history (valid_from inclusive, valid_to exclusive, NULL while current).
SELECT COUNT(DISTINCT org_key) AS registered_at_end_of_2025
FROM organization_status_history
WHERE registration_status = 'registered'
  AND status NOT IN ('deleted', 'exited')
  AND valid_from <= DATE '2025-12-31'
  AND (valid_to IS NULL OR valid_to > DATE '2025-12-31');
