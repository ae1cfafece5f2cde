-- step_trainer_trusted: readings of the devices of customers_curated customers; exact duplicates once.
-- Under the consent policy since_consent, only readings taken at or after the device owner's research
-- consent date (run_settings holds the run's policy).
with

readings as (
    select sensorReadingTime, serialNumber, distanceFromObject
    from step_trainer_landing
),

owners as (
    select serialNumber, shareWithResearchAsOfDate from customers_curated
)

select distinct
    readings.sensorReadingTime,
    readings.serialNumber,
    readings.distanceFromObject
from readings
inner join owners on readings.serialNumber = owners.serialNumber
cross join run_settings
where run_settings.consent_policy = 'any'
   or readings.sensorReadingTime >= owners.shareWithResearchAsOfDate
