"""Persistent jobs (SQLite): a worker restart loses none, and a study is processed once per model version."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

PENDING, DONE, IGNORED, FAILED = "pending", "done", "ignored", "failed"


@dataclass
class Job:
    study: str  # Orthanc study ID (REST source) or StudyInstanceUID (DICOMweb source)
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
        # DICOMweb: what QIDO showed of each study (instances, since when) and the count when last processed
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS seen (study TEXT PRIMARY KEY, instances INTEGER NOT NULL, changed_at REAL NOT NULL, done_instances INTEGER)"
        )
        self.db.execute("CREATE TABLE IF NOT EXISTS marks (name TEXT PRIMARY KEY, value TEXT NOT NULL)")

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

    def observe(self, study: str, instances: int, now: float, stable_seconds: float, model_version: str) -> int:
        """Record a study's instance count; queue it (1) once the count has held for stable_seconds,
        and again when it grew past the count recorded after it was last processed."""
        with self.db:
            self.db.execute("BEGIN")
            row = self.db.execute("SELECT instances, changed_at, done_instances FROM seen WHERE study = ?", (study,)).fetchone()
            if row is None or row[0] != instances:
                done = row[2] if row is not None else None
                self.db.execute("INSERT OR REPLACE INTO seen (study, instances, changed_at, done_instances) VALUES (?, ?, ?, ?)", (study, instances, now, done))
                changed_at, done_instances = now, done
            else:
                changed_at, done_instances = row[1], row[2]
            added = 0
            if instances > 0 and now - changed_at >= stable_seconds:
                job = self.db.execute("SELECT state FROM jobs WHERE study = ? AND model_version = ?", (study, model_version)).fetchone()
                if job is None:
                    self.db.execute("INSERT INTO jobs (study, model_version, state, updated) VALUES (?, ?, ?, ?)", (study, model_version, PENDING, now))
                    added = 1
                elif job[0] != PENDING and done_instances is not None and instances > done_instances:
                    self.db.execute(
                        "UPDATE jobs SET state = ?, attempts = 0, next_try = 0, detail = 'updated study', updated = ? WHERE study = ? AND model_version = ?",
                        (PENDING, now, study, model_version),
                    )
                    added = 1
            self.db.execute("COMMIT")
        return added

    def mark_seen_done(self, study: str, instances: int) -> None:
        self.db.execute("UPDATE seen SET done_instances = ?, instances = ? WHERE study = ?", (instances, instances, study))

    def watermark(self) -> str | None:
        row = self.db.execute("SELECT value FROM marks WHERE name = 'watermark'").fetchone()
        return row[0] if row else None

    def set_watermark(self, value: str) -> None:
        self.db.execute("INSERT INTO marks (name, value) VALUES ('watermark', ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value", (value,))

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
