"""Persistent jobs (SQLite): a worker restart loses none, and a study is processed once per model version."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

PENDING, DONE, IGNORED, FAILED = "pending", "done", "ignored", "failed"


@dataclass
class Job:
    study: str  # Orthanc study ID (a hash Orthanc derives from the StudyInstanceUID)
    model_version: str
    state: str
    attempts: int
    next_try: float
    detail: str


class JobStore:
    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # one connection, usable from the thread that runs the worker loop as well as the creator
        self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS cursor (id INTEGER PRIMARY KEY CHECK (id = 0), last_change INTEGER NOT NULL)")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS jobs (study TEXT NOT NULL, model_version TEXT NOT NULL, state TEXT NOT NULL, "
            "attempts INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL DEFAULT 0, detail TEXT NOT NULL DEFAULT '', "
            "updated REAL NOT NULL, PRIMARY KEY (study, model_version))"
        )

    def cursor(self) -> int:
        row = self.db.execute("SELECT last_change FROM cursor WHERE id = 0").fetchone()
        return int(row[0]) if row else 0

    def enqueue(self, studies: list[str], model_version: str, last_change: int) -> int:
        """Add new studies and move the change cursor in one transaction; returns how many were new."""
        now = time.time()
        with self.db:
            self.db.execute("BEGIN")
            before = self.db.total_changes
            for s in studies:
                self.db.execute("INSERT OR IGNORE INTO jobs (study, model_version, state, updated) VALUES (?, ?, ?, ?)", (s, model_version, PENDING, now))
            added = self.db.total_changes - before
            self.db.execute(
                "INSERT INTO cursor (id, last_change) VALUES (0, ?) ON CONFLICT(id) DO UPDATE SET last_change = excluded.last_change", (last_change,)
            )
            self.db.execute("COMMIT")
        return added

    def due(self, model_version: str, now: float | None = None) -> list[Job]:
        now = time.time() if now is None else now
        rows = self.db.execute(
            "SELECT study, model_version, state, attempts, next_try, detail FROM jobs WHERE model_version = ? AND state = ? AND next_try <= ? ORDER BY updated",
            (model_version, PENDING, now),
        ).fetchall()
        return [Job(*r) for r in rows]

    def finish(self, job: Job, state: str, detail: str = "") -> None:
        self.db.execute(
            "UPDATE jobs SET state = ?, detail = ?, updated = ? WHERE study = ? AND model_version = ?",
            (state, detail[:500], time.time(), job.study, job.model_version),
        )

    def retry_later(self, job: Job, detail: str, max_backoff: float = 300.0) -> float:
        delay = min(max_backoff, 2.0 ** min(job.attempts, 16))
        self.db.execute(
            "UPDATE jobs SET attempts = attempts + 1, next_try = ?, detail = ?, updated = ? WHERE study = ? AND model_version = ?",
            (time.time() + delay, detail[:500], time.time(), job.study, job.model_version),
        )
        return delay

    def all(self) -> list[Job]:
        return [Job(*r) for r in self.db.execute("SELECT study, model_version, state, attempts, next_try, detail FROM jobs ORDER BY updated").fetchall()]
