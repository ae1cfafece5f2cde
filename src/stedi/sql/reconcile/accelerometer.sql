-- Where every valid accelerometer reading went. read must equal kept + filtered + quarantined + duplicates.
with

readings as (
    select distinct "user", "timestamp", x, y, z from accelerometer_landing
),

usable as (
    -- readings the consent rules let through: a consenting customer's, and under since_consent only
    -- those taken at or after the consent date
    select readings.*
    from readings
    inner join customer_trusted on readings."user" = customer_trusted.email
    cross join run_settings
    where run_settings.consent_policy = 'any'
       or readings."timestamp" >= customer_trusted.shareWithResearchAsOfDate
)

select
    (select count(*) from accelerometer_trusted) as kept,
    (select count(*) from readings) - (select count(*) from usable) as filtered,
    (select count(*) from accelerometer_quarantine) as quarantined,
    (select count(*) from accelerometer_landing) - (select count(*) from readings) as duplicates
