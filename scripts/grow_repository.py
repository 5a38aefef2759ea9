#!/usr/bin/env python3
"""Grows a SQLite case repository for the restart benchmark (README, "Case repository"): every
case of it, with its supervision records and kept snapshots, is copied COPIES - 1 times under
new case ids, so that a 10,000-case repository becomes a 1,000,000-case one in minutes instead
of the hours `simulate` would take to fill the topics.

A copy's id is the original's with its first four hex digits replaced by the copy's number
(1, 2, …), everywhere it appears: ids, event and message ids, the views and the snapshots'
payloads. Everything else stays as it was (times, statuses, feed positions), so the copies are
as open or closed as their originals. A copy's sealed applicant no longer opens (the case id
is its associated data): the grown repository serves the benchmark, not reads of the copies.
The consumer offsets are left alone: the topics still
hold only the original cases, and a restart reads them from where the repository says.

Usage: scripts/grow_repository.py DATABASE COPIES      (e.g. …/data/govfusion.db 100)
Stop every process using the database first.
"""
import sqlite3
import sys

# Each table whose rows belong to a case, and how a row names its case in SQL.
TABLES = {
    "cases": "case_id",
    "supervision_cases": "case_id",
    "supervision_assignments": "case_id",
    "supervision_routes": "substr(event_id, 1, 32)",
    "supervision_messages": "case_id",
    "state_snapshots": "case_id",
}


def main() -> None:
    database, copies = sys.argv[1], int(sys.argv[2])
    db = sqlite3.connect(database)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    for table, case_of in TABLES.items():
        columns = db.execute(f"PRAGMA table_info({table})").fetchall()
        db.execute(f"CREATE TEMP TABLE original AS SELECT * FROM {table}")
        for copy in range(1, copies):
            new_id = f"printf('%04x', {copy}) || substr({case_of}, 5)"
            select = []
            for _, name, kind, *_ in columns:
                if kind.upper() in ("TEXT", "BLOB"):
                    value = f"replace({name}, {case_of}, {new_id})"
                    if kind.upper() == "BLOB":
                        value = f"CAST({value} AS BLOB)"
                    select.append(value)
                else:
                    select.append(name)
            # Only rows of cases (32 hex digits): not, say, the city's feed position.
            db.execute(
                f"INSERT INTO {table} SELECT {', '.join(select)} FROM original "
                f"WHERE length({case_of}) = 32 AND {case_of} NOT GLOB '*[^0-9a-f]*'"
            )
        db.execute("DROP TABLE original")
        db.commit()
        count = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        print(f"{table}: {count} rows", flush=True)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


if __name__ == "__main__":
    main()
