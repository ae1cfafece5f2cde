-- action: quarantine
-- reason: a negative distanceFromObject
select * from step_trainer
where distanceFromObject < 0
