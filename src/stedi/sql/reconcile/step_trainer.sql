-- Where every valid step trainer reading went. read must equal kept + filtered + quarantined + duplicates.
with

readings as (
    select distinct sensorReadingTime, serialNumber, distanceFromObject from step_trainer_landing
),

usable as (
    -- readings of a curated customer's device (under since_consent: at or after the owner's consent)
    select distinct readings.*
    from readings
    inner join customers_curated on readings.serialNumber = customers_curated.serialNumber
    cross join run_settings
    where run_settings.consent_policy = 'any'
       or readings.sensorReadingTime >= customers_curated.shareWithResearchAsOfDate
)

select
    (select count(*) from step_trainer_trusted) as kept,
    (select count(*) from readings) - (select count(*) from usable) as filtered,
    (select count(*) from step_trainer_quarantine) as quarantined,
    (select count(*) from step_trainer_landing) - (select count(*) from readings) as duplicates
