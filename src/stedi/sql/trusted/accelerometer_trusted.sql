-- accelerometer_trusted: readings of customers in customer_trusted; exact duplicate readings once.
-- Under the consent policy since_consent, only readings taken at or after the customer's research
-- consent date (run_settings holds the run's policy).
-- Duplicates are removed after the join, over the (fewer) consenting customers' readings.
with

readings as (
    select "user", "timestamp", x, y, z
    from accelerometer_landing
),

consenting as (
    select email, shareWithResearchAsOfDate from customer_trusted
)

select distinct
    readings."user",
    readings."timestamp",
    readings.x,
    readings.y,
    readings.z
from readings
inner join consenting on readings."user" = consenting.email
cross join run_settings
where run_settings.consent_policy = 'any'
   or readings."timestamp" >= consenting.shareWithResearchAsOfDate
