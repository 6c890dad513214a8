"""Developer tool: autogenerate the next migration from the models.

    python scripts/new_migration.py 0002 "jobs and events"

It migrates a scratch SQLite database to the current head, compares it with the models, and
writes max_server/migrations/versions/<rev>_<slug>.py. Review the file before committing.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from alembic import command

from max_server import migrate
from max_server.db import Database


def main() -> None:
    rev, message = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        migrate.upgrade(db)
        config = migrate._config()
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.revision(config, message=message, autogenerate=True, rev_id=rev)
        db.dispose()
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")
    print(f"written: max_server/migrations/versions/{rev}_{slug}.py")


if __name__ == "__main__":
    main()
