-- needs: step_trainer_trusted
-- Their devices' readings (exact duplicates once).
select count(*) as value from step_trainer_trusted
