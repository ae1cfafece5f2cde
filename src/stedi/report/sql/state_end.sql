-- needs: runs
-- When the last command of the state ended (the history shows the commands up to the state).
select max(ended_at) as ended_at, max_by(run_id, ended_at) as run_id from runs
