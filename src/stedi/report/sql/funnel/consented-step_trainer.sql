-- needs: step_trainer_landing, customer_trusted
-- The landed readings of their devices.
select count(*) as value from step_trainer_landing
where serialNumber in (select serialNumber from customer_trusted)
