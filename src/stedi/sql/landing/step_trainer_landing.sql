-- step_trainer_landing: every record of the landed step_trainer files, as delivered.
-- landed_step_trainer is the landed JSON read with the columns and types of stedi.tables (the DDL contract).
select * from landed_step_trainer
