-- mart_volunteers_by_county summed per prefecture.
SELECT prefecture_code, prefecture_name,
       NULL AS region_code, NULL AS region_name,
       sum(volunteers) AS volunteers, sum(active) AS active,
       sum(deregistered) AS deregistered, sum(frozen) AS frozen,
       sum(male) AS male, sum(female) AS female, sum(gender_unknown) AS gender_unknown,
       sum(age_under_18) AS age_under_18, sum(age_18_35) AS age_18_35,
       sum(age_36_59) AS age_36_59, sum(age_60_plus) AS age_60_plus,
       sum(age_unknown) AS age_unknown,
       sum(star_0) AS star_0, sum(star_1) AS star_1, sum(star_2) AS star_2,
       sum(star_3) AS star_3, sum(star_4) AS star_4, sum(star_5) AS star_5,
       sum(in_both_systems) AS in_both_systems
FROM mart_volunteers_by_county
GROUP BY prefecture_code, prefecture_name
