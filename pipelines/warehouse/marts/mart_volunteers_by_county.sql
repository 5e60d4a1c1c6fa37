-- Volunteers (not deleted) per county, by status, gender, age band and computed star level.
-- Every county gets a row; people whose county is unknown are one more row with region_code NULL.
-- in_both_systems counts live accounts (volunteer_source_map.is_deleted): dim_volunteer.in_national
-- and in_provincial stay true after an account is deleted at its source.
WITH live_in_both AS (
    SELECT m.volunteer_key
    FROM volunteer_source_map m
    WHERE NOT m.is_deleted
    GROUP BY m.volunteer_key
    HAVING count(DISTINCT m.source) = 2
), people AS (
    SELECT v.*, r.region_code AS county,
           year(getvariable('as_of')) - v.birth_year AS age,
           b.volunteer_key IS NOT NULL AS live_in_both_systems
    FROM dim_volunteer v
    LEFT JOIN dim_region r ON r.region_code = v.region_code
    LEFT JOIN live_in_both b ON b.volunteer_key = v.volunteer_key
    WHERE v.status <> 'deleted'
), areas AS (
    SELECT prefecture_code, prefecture_name, region_code, region_name FROM dim_region
    UNION ALL
    SELECT NULL, NULL, NULL, NULL WHERE EXISTS (SELECT 1 FROM people WHERE county IS NULL)
)
SELECT a.prefecture_code, a.prefecture_name, a.region_code, a.region_name,
       count(p.volunteer_key) AS volunteers,
       count(p.volunteer_key) FILTER (WHERE p.status = 'active') AS active,
       count(p.volunteer_key) FILTER (WHERE p.status = 'deregistered') AS deregistered,
       count(p.volunteer_key) FILTER (WHERE p.status = 'frozen') AS frozen,
       count(p.volunteer_key) FILTER (WHERE p.gender = 'M') AS male,
       count(p.volunteer_key) FILTER (WHERE p.gender = 'F') AS female,
       count(p.volunteer_key) FILTER (WHERE p.gender IS NULL OR p.gender NOT IN ('M', 'F')) AS gender_unknown,
       count(p.volunteer_key) FILTER (WHERE p.age < 18) AS age_under_18,
       count(p.volunteer_key) FILTER (WHERE p.age BETWEEN 18 AND 35) AS age_18_35,
       count(p.volunteer_key) FILTER (WHERE p.age BETWEEN 36 AND 59) AS age_36_59,
       count(p.volunteer_key) FILTER (WHERE p.age >= 60) AS age_60_plus,
       count(p.volunteer_key) FILTER (WHERE p.age IS NULL) AS age_unknown,
       count(p.volunteer_key) FILTER (WHERE p.star_level = 0) AS star_0,
       count(p.volunteer_key) FILTER (WHERE p.star_level = 1) AS star_1,
       count(p.volunteer_key) FILTER (WHERE p.star_level = 2) AS star_2,
       count(p.volunteer_key) FILTER (WHERE p.star_level = 3) AS star_3,
       count(p.volunteer_key) FILTER (WHERE p.star_level = 4) AS star_4,
       count(p.volunteer_key) FILTER (WHERE p.star_level = 5) AS star_5,
       count(p.volunteer_key) FILTER (WHERE p.live_in_both_systems) AS in_both_systems
FROM areas a
LEFT JOIN people p ON p.county IS NOT DISTINCT FROM a.region_code
GROUP BY a.prefecture_code, a.prefecture_name, a.region_code, a.region_name
