"""Write src/stedi/sql/relations.json: the inputs sqlglot finds in each derived table's .sql (see
stedi.models.relations). Run after editing a .sql: .venv/bin/python scripts/write_relations.py"""

from pathlib import Path

from stedi import models
from stedi.tables import DERIVED

target = Path(__file__).resolve().parent.parent / "src" / "stedi" / "sql" / models.RELATIONS_FILE
target.write_text(models.relations_file(DERIVED), encoding="utf-8")
print(f"wrote {target}")
