"""Small driver for statemachine-engine 1.0.91, run with the peer's own Python
(``benchmarks/.venv-peer/bin/python driver.py …``) in the run's working directory, because the
peer keeps its database at ``./data/pipeline.db``.

    driver.py init               create the peer's database (its own schema code)
    driver.py load N [TYPE]      queue N jobs job-0 … job-(N-1) in ONE transaction, so workers
                                 that are already polling see them all at once
"""

from __future__ import annotations

import json
import sqlite3
import sys

from statemachine_engine.database.models import get_database  # type: ignore[import-not-found]


def main(argv: list[str]) -> int:
    database = get_database()  # creates ./data/pipeline.db with the peer's schema
    if argv[0] == "init":
        return 0
    if argv[0] == "load":
        count = int(argv[1])
        job_type = argv[2] if len(argv) > 2 else "task"
        rows = [(f"job-{n}", job_type, json.dumps({"n": n})) for n in range(count)]
        connection = sqlite3.connect(database.db_path, timeout=30)
        with connection:  # one transaction (the peer's create_job commits per job)
            connection.executemany(
                "INSERT INTO jobs (job_id, job_type, data, status) VALUES (?, ?, ?, 'pending')",
                rows,
            )
        connection.close()
        return 0
    print(f"unknown command {argv[0]!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
