-- Where every valid accelerometer reading went. read must equal kept + filtered + quarantined + duplicates.
with

readings as (
    select distinct "user", "timestamp", x, y, z from accelerometer_landing
)

select
    (select count(*) from accelerometer_trusted) as kept,
    -- readings of people who are not consenting customers
    (select count(*) from readings where "user" not in (select email from customer_trusted)) as filtered,
    (select count(*) from accelerometer_quarantine) as quarantined,
    (select count(*) from accelerometer_landing) - (select count(*) from readings) as duplicates
