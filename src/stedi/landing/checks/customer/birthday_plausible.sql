-- action: warn
-- reason: birthDay is not a date between 1900-01-01 and today (nothing downstream needs it: the customer is kept)
select * from customer
where try_cast(birthDay as date) is null
   or try_cast(birthDay as date) < date '1900-01-01'
   or try_cast(birthDay as date) > current_date
