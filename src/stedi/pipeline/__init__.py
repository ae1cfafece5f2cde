"""The pipeline of `stedi run`: the runner reads the landing tables (landing), builds each derived table
from its .sql (derived), records what each is built from (plan), and reconciles every landed record
(reconcile). It is not called `build/`: linters and packaging tools skip folders of that name."""
