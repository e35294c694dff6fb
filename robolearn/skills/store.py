"""The persistent, versioned skill library on SQLite.

Why SQLite: it is an embedded database with atomic transactions, so a crash mid-write
leaves the previous state intact, and several processes (the planner node, a bootstrap run,
a curator at the CLI) can write the same file: WAL journaling lets readers run beside one
writer, and a busy timeout makes writers wait for each other instead of failing.

Layout (one file, ``format_version`` in ``meta``)::

    versions(name, version, op, record JSON | NULL, message, author, created_at, checksum)
    stats(name, version, env, attempts, successes, updated_at)

Every change appends a row to ``versions``; nothing is ever updated in place or deleted.
The current skill is the newest version of a name; a ``NULL`` record is a tombstone
(removed, renamed away, merged into another skill), so ``revert`` can bring it back.
Each row carries a SHA-256 over its content: a row damaged on disk is detected on read and
reported with the file, name and version rather than silently used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from robolearn.skills.seed import now
from robolearn.skills.types import Skill, SkillError

FORMAT_VERSION = 1
EXPORT_FORMAT = "robolearn-skill-library"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS versions(
    name TEXT NOT NULL, version INTEGER NOT NULL, op TEXT NOT NULL, record TEXT,
    message TEXT NOT NULL DEFAULT '', author TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL, checksum TEXT NOT NULL, PRIMARY KEY(name, version));
CREATE TABLE IF NOT EXISTS stats(
    name TEXT NOT NULL, version INTEGER NOT NULL, env TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, successes INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL, PRIMARY KEY(name, version, env));
"""


class LibraryError(RuntimeError):
    """A library operation cannot be done (unknown skill, name taken, version conflict)."""


class LibraryCorruptError(LibraryError):
    """The library file is damaged; the message names the file, what is wrong, and the fix."""


@dataclass(frozen=True)
class Version:
    """One row of a skill's history."""

    name: str
    version: int
    op: str
    skill: Skill | None  # None: a tombstone (removed / renamed / merged away)
    message: str
    author: str
    created_at: str

    def summary(self) -> dict:
        return {"name": self.name, "version": self.version, "op": self.op,
                "removed": self.skill is None, "message": self.message,
                "author": self.author, "created_at": self.created_at}


def _checksum(name: str, version: int, op: str, record: str | None) -> str:
    h = hashlib.sha256()
    for part in (name, str(version), op, record if record is not None else "\x00NULL"):
        h.update(part.encode())
        h.update(b"\x1f")
    return h.hexdigest()


def _dumps(skill: Skill) -> str:
    return json.dumps(skill.to_dict(), sort_keys=True, separators=(",", ":"))


class SkillStore:
    """A versioned skill library in one SQLite file (see the module docstring).

    ``SkillStore(path)`` creates the file if missing, checks its integrity otherwise.
    Every method runs in its own transaction; methods that change the library take an
    ``author`` and a ``message`` that land in the history.
    """

    def __init__(self, path: str | os.PathLike, busy_timeout_s: float = 30.0,
                 check: bool = True):
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existed = self.path.exists() and self.path.stat().st_size > 0
        try:
            self._conn = sqlite3.connect(self.path, timeout=busy_timeout_s,
                                         isolation_level=None, check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            if existed and check:
                self._quick_check()
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)  # idempotent; executescript commits itself
            with self._tx():
                self._init_meta()
        except sqlite3.DatabaseError as e:
            raise self._corrupt(str(e)) from e

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "SkillStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: takes the write lock up front (waits up to the busy
        timeout), so version numbers computed inside it can't race another writer."""
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise LibraryError(f"skill library {self.path} is locked by another "
                                       f"writer for more than {self.busy_timeout_s:.0f}s") from e
                time.sleep(0.05)
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")

    def _init_meta(self) -> None:
        row = self._conn.execute("SELECT value FROM meta WHERE key='format_version'").fetchone()
        if row is None:
            self._conn.execute("INSERT INTO meta VALUES('format_version', ?)",
                               (str(FORMAT_VERSION),))
            self._conn.execute("INSERT INTO meta VALUES('created_at', ?)", (now(),))
        elif int(row[0]) > FORMAT_VERSION:
            raise LibraryError(f"skill library {self.path} has format v{row[0]}, newer than this "
                               f"robolearn (v{FORMAT_VERSION}); upgrade robolearn")

    def _quick_check(self) -> None:
        rows = self._conn.execute("PRAGMA quick_check").fetchall()
        if [r[0] for r in rows] != ["ok"]:
            raise self._corrupt("; ".join(str(r[0]) for r in rows[:3]))

    def _corrupt(self, what: str) -> LibraryCorruptError:
        """Keep a byte copy of the damaged file beside it (nothing is lost), then explain."""
        backup = self.path.with_name(self.path.name + f".corrupt-{int(time.time())}")
        try:
            shutil.copy2(self.path, backup)
        except OSError:
            backup = None
        return LibraryCorruptError(
            f"skill library {self.path} is corrupt ({what}); a copy was kept at {backup}; "
            f"recover the intact skills with `robolearn-skills --library {self.path} salvage "
            f"OUT.db` or import a previous export with `robolearn-skills import`")

    def _rows(self, sql: str, args: tuple = ()) -> list[Version]:
        try:
            rows = self._conn.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as e:
            raise self._corrupt(str(e)) from e
        return [self._version(r) for r in rows]

    def _version(self, row: tuple) -> Version:
        name, version, op, record, message, author, created_at, checksum = row
        if _checksum(name, version, op, record) != checksum:
            raise self._corrupt(f"checksum mismatch in {name!r} v{version}")
        try:
            skill = Skill.from_dict(json.loads(record)) if record is not None else None
        except (ValueError, TypeError, SkillError) as e:
            raise self._corrupt(f"unreadable record {name!r} v{version}: {e}") from e
        return Version(name, version, op, skill, message, author, created_at)

    _COLS = "name, version, op, record, message, author, created_at, checksum"

    def _append(self, name: str, op: str, skill: Skill | None, message: str,
                author: str) -> int:
        """Append a version row (inside a transaction); returns its version number."""
        row = self._conn.execute("SELECT COALESCE(MAX(version), 0) FROM versions WHERE name=?",
                                 (name,)).fetchone()
        version = row[0] + 1
        record = _dumps(skill) if skill is not None else None
        self._conn.execute(f"INSERT INTO versions({self._COLS}) VALUES(?,?,?,?,?,?,?,?)",
                           (name, version, op, record, message, author, now(),
                            _checksum(name, version, op, record)))
        return version

    def _latest(self, name: str) -> Version | None:
        rows = self._rows(f"SELECT {self._COLS} FROM versions WHERE name=? "
                          "ORDER BY version DESC LIMIT 1", (name,))
        return rows[0] if rows else None

    # ------------------------------------------------------------------ reading
    def exists(self, name: str) -> bool:
        v = self._latest(name)
        return v is not None and v.skill is not None

    def get(self, name: str, version: int | None = None) -> Skill:
        """The current skill ``name`` (or the given old version)."""
        if version is None:
            v = self._latest(name)
        else:
            rows = self._rows(f"SELECT {self._COLS} FROM versions WHERE name=? AND version=?",
                              (name, version))
            v = rows[0] if rows else None
        if v is None or v.skill is None:
            what = f"{name!r} v{version}" if version else repr(name)
            hint = "" if v is None else f" (it was {v.op}; see `robolearn-skills history {name}`)"
            raise LibraryError(f"no skill {what} in {self.path}{hint}; known: {self.names()}")
        return v.skill

    def current_version(self, name: str) -> int:
        v = self._latest(name)
        if v is None:
            raise LibraryError(f"no skill {name!r} in {self.path}; known: {self.names()}")
        return v.version

    def names(self) -> list[str]:
        return [v.name for v in self._current()]

    def skills(self) -> list[Skill]:
        """Every current (not removed) skill, sorted by name."""
        return [v.skill for v in self._current()]

    def _current(self) -> list[Version]:
        rows = self._rows(f"SELECT {self._COLS} FROM versions v WHERE version = "
                          "(SELECT MAX(version) FROM versions w WHERE w.name = v.name) "
                          "ORDER BY name")
        return [v for v in rows if v.skill is not None]

    def history(self, name: str) -> list[Version]:
        rows = self._rows(f"SELECT {self._COLS} FROM versions WHERE name=? ORDER BY version",
                          (name,))
        if not rows:
            raise LibraryError(f"no skill {name!r} has ever been in {self.path}")
        return rows

    def __len__(self) -> int:
        return len(self._current())

    # ------------------------------------------------------------------ writing
    def add(self, skill: Skill, message: str = "", author: str = "") -> int:
        skill.check()
        with self._tx():
            cur = self._latest(skill.name)
            if cur is not None and cur.skill is not None:
                raise LibraryError(f"skill {skill.name!r} already exists (v{cur.version}); "
                                   "use edit, or pick another name")
            return self._append(skill.name, "add", skill, message, author)

    def edit(self, skill: Skill, message: str = "", author: str = "",
             expected_version: int | None = None) -> int:
        """Store ``skill`` as the next version of its name.  With ``expected_version``,
        refuse if someone else wrote a newer version since (optimistic concurrency)."""
        skill.check()
        with self._tx():
            cur = self._latest(skill.name)
            if cur is None or cur.skill is None:
                raise LibraryError(f"no skill {skill.name!r} to edit; use add")
            if expected_version is not None and cur.version != expected_version:
                raise LibraryError(f"skill {skill.name!r} changed since v{expected_version} "
                                   f"(now v{cur.version}); reload and edit again")
            return self._append(skill.name, "edit", skill, message, author)

    def rename(self, old: str, new: str, message: str = "", author: str = "") -> int:
        with self._tx():
            skill = self.get(old)
            if self.exists(new):
                raise LibraryError(f"cannot rename {old!r} to {new!r}: {new!r} exists")
            moved = Skill.from_dict({**skill.to_dict(), "name": new})
            self._append(old, "renamed", None, message or f"renamed to {new}", author)
            return self._append(new, "rename", moved, message or f"renamed from {old}", author)

    def remove(self, name: str, message: str = "", author: str = "") -> int:
        with self._tx():
            self.get(name)
            return self._append(name, "removed", None, message, author)

    def revert(self, name: str, version: int, message: str = "", author: str = "") -> int:
        """Make old version ``version`` current again (as a new version; works on removed
        skills too)."""
        with self._tx():
            skill = self.get(name, version)
            return self._append(name, "revert", skill, message or f"reverted to v{version}",
                                author)

    def merge(self, keep: str, drop: str, message: str = "", author: str = "") -> int:
        """Fold near-duplicate ``drop`` into ``keep``: its description and paraphrases
        become paraphrases of ``keep``, its statistics add to ``keep``'s, and ``drop`` is
        tombstoned (revertible)."""
        if keep == drop:
            raise LibraryError("merge needs two different skills")
        with self._tx():
            a, b = self.get(keep), self.get(drop)
            if a.param_names != b.param_names:
                raise LibraryError(f"cannot merge {drop!r} into {keep!r}: parameters differ "
                                   f"({b.param_names} vs {a.param_names})")
            extra = [p for p in [b.description, *b.paraphrases]
                     if p not in a.paraphrases and p != a.description]
            merged = Skill.from_dict({**a.to_dict(), "paraphrases": a.paraphrases + extra})
            version = self._append(keep, "merge", merged, message or f"merged {drop}", author)
            self._append(drop, "merged", None, message or f"merged into {keep}", author)
            for env, att, suc in self._conn.execute(
                    "SELECT env, SUM(attempts), SUM(successes) FROM stats WHERE name=? "
                    "GROUP BY env", (drop,)).fetchall():
                self._bump(keep, version, env, att, suc)
            return version

    # ------------------------------------------------------------------ statistics
    def _bump(self, name: str, version: int, env: str, attempts: int, successes: int) -> None:
        self._conn.execute(
            "INSERT INTO stats VALUES(?,?,?,?,?,?) ON CONFLICT(name, version, env) DO UPDATE "
            "SET attempts = attempts + excluded.attempts, "
            "successes = successes + excluded.successes, updated_at = excluded.updated_at",
            (name, version, env, attempts, successes, now()))

    def record(self, name: str, env: str, successes: int, attempts: int = 1,
               version: int | None = None) -> None:
        """Add ``attempts`` runs of skill ``name`` in ``env`` with ``successes`` of them
        successful, counted against ``version`` (default: the current one)."""
        if not 0 <= successes <= attempts:
            raise ValueError(f"successes={successes} must lie in [0, attempts={attempts}]")
        with self._tx():
            if version is None:
                self.get(name)
                version = self._latest(name).version
            self._bump(name, version, env, attempts, successes)

    def stats(self, name: str) -> list[dict]:
        """Per (version, env): attempts, successes, success rate."""
        rows = self._conn.execute("SELECT version, env, attempts, successes, updated_at "
                                  "FROM stats WHERE name=? ORDER BY version, env",
                                  (name,)).fetchall()
        return [{"version": v, "env": e, "attempts": a, "successes": s,
                 "success_rate": s / a if a else None, "updated_at": t}
                for v, e, a, s, t in rows]

    def success_rate(self, name: str, env: str | None = None) -> float | None:
        rows = [r for r in self.stats(name) if env is None or r["env"] == env]
        att = sum(r["attempts"] for r in rows)
        return sum(r["successes"] for r in rows) / att if att else None

    # ------------------------------------------------------------------ export / import
    def export(self, path: str | os.PathLike) -> dict:
        """Write the whole library (every version, every statistic) as one JSON file,
        atomically (temp file + rename)."""
        rows = self._rows(f"SELECT {self._COLS} FROM versions ORDER BY name, version")
        stats = self._conn.execute("SELECT name, version, env, attempts, successes, updated_at "
                                   "FROM stats ORDER BY name, version, env").fetchall()
        doc = {"format": EXPORT_FORMAT, "format_version": FORMAT_VERSION, "exported_at": now(),
               "versions": [{**v.summary(), "skill": v.skill.to_dict() if v.skill else None}
                            for v in rows],
               "stats": [dict(zip(("name", "version", "env", "attempts", "successes",
                                   "updated_at"), s)) for s in stats]}
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, path)
        return {"skills": len(self), "versions": len(rows)}

    def import_(self, path: str | os.PathLike, author: str = "import") -> dict:
        """Bring an exported library in, in one transaction.  Names new here get their full
        history; names that exist get the file's current record as one new version (op
        ``import``) if it differs.  Returns counts."""
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise LibraryError(f"cannot read skill export {path}: {e}") from e
        if doc.get("format") != EXPORT_FORMAT:
            raise LibraryError(f"{path} is not a robolearn skill-library export "
                               f"(format={doc.get('format')!r})")
        by_name: dict[str, list[dict]] = {}
        for row in doc["versions"]:
            by_name.setdefault(row["name"], []).append(row)
        added = updated = 0
        with self._tx():
            for name, rows in by_name.items():
                rows.sort(key=lambda r: r["version"])
                exists = self._latest(name) is not None
                if not exists:
                    for r in rows:
                        skill = Skill.from_dict(r["skill"]) if r["skill"] else None
                        self._append(name, r["op"], skill, r["message"], r["author"] or author)
                    for s in doc.get("stats", []):
                        if s["name"] == name:
                            self._bump(name, s["version"], s["env"], s["attempts"],
                                       s["successes"])
                    added += 1
                elif rows[-1]["skill"] is not None:
                    new = Skill.from_dict(rows[-1]["skill"])
                    cur = self._latest(name).skill
                    if cur is None or _dumps(cur) != _dumps(new):
                        self._append(name, "import", new, f"imported from {Path(path).name}",
                                     author)
                        updated += 1
        return {"added": added, "updated": updated}


def salvage(src: str | os.PathLike, dst: str | os.PathLike) -> dict:
    """Copy every version row of a damaged library whose checksum still verifies into a new
    library at ``dst``; returns counts of rows kept and lost.  ``src`` is only read."""
    conn = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    kept, lost = 0, 0
    out = SkillStore(dst)
    try:
        rows = conn.execute(f"SELECT {SkillStore._COLS} FROM versions ORDER BY name, version")
        with out._tx():
            while True:
                try:
                    row = rows.fetchone()
                except sqlite3.DatabaseError:
                    lost += 1
                    break
                if row is None:
                    break
                name, version, op, record, message, author, created_at, checksum = row
                if _checksum(name, version, op, record) != checksum:
                    lost += 1
                    continue
                out._conn.execute(f"INSERT INTO versions({SkillStore._COLS}) "
                                  "VALUES(?,?,?,?,?,?,?,?)", row)
                kept += 1
    finally:
        conn.close()
        out.close()
    return {"kept": kept, "lost": lost}
