-- Where every valid customer record went. read (counted by the landing reader) must equal
-- kept + filtered + quarantined + duplicates.
select
    (select count(*) from customer_trusted) as kept,
    (select count(distinct email) from customer_landing
     where email not in (select email from customer_trusted)) as filtered,
    (select count(*) from customer_quarantine) as quarantined,
    -- exact duplicates and older versions of a customer: every record beyond one per email
    (select count(*) - count(distinct email) from customer_landing) as duplicates
