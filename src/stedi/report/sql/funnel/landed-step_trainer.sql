-- needs: step_trainer_landing
-- Step trainer readings as landed.
select count(*) as value from step_trainer_landing
