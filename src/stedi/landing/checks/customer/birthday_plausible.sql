-- action: warn
-- reason: birthDay is missing, not a calendar date (YYYY-MM-DD), or after the customer registered (nothing downstream needs it: the customer is kept)
-- No lower bound: the STEDI data's birthdays are all 1 January of a year from 967 to 1964, 906 of 956 before
-- 1900, so a year says nothing about a record's quality; years below 1000 come unpadded ("993-01-01").
-- See docs/quality.md, "Tuning birthday_plausible".
select * from customer
where birthDay is null
   or not regexp_full_match(birthDay, '[0-9]{3,4}-[0-9]{2}-[0-9]{2}')
   or try_cast(birthDay as date) is null
   or try_cast(birthDay as date) > least(current_date, epoch_ms(registrationDate)::date)
