-- action: warn
-- reason: research consent dated before the customer registered
select * from customer
where shareWithResearchAsOfDate < registrationDate
