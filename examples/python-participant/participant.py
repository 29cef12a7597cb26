#!/usr/bin/env python3
"""A participant in Python for two-phase commit and Paxos Commit, written from docs/protocol.md alone.

It keeps a tiny ledger in SQLite: a PREPARE with payload {"amount": N} records a pending
entry (or votes no when N exceeds LEDGER_LIMIT), COMMIT marks the entry committed and
ABORT marks it aborted. The same SQLite file holds the durable participant log of
sections 6 and 14.4 of the protocol, so every reply leaves only after the state it reports
has been committed and synced to disk.

Two-phase commit (`2pc`, sections 1-13): votes go to the coordinator as VOTE. Paxos Commit
(`paxos-commit`, section 14): the vote is a PHASE2A in ballot 0, sent to every acceptor of
the transaction's membership; the outcome comes as COMMIT or ABORT from the leader, or is
learned earlier from the acceptors' PHASE2B.

    python participant.py            run the participant (configured by the environment)
    python participant.py --dump     print the ledger and the participant log as JSON

Environment: PARTICIPANT_NAME (ledger), KAFKA_BROKERS (required, comma-separated
host:port), KAFKA_TOPIC_PREFIX (txn), LEDGER_DB (ledger.db), LEDGER_LIMIT (1000),
ANNOUNCE_INTERVAL_MS (1000), QUERY_INTERVAL_MS (1000), KAFKA_SESSION_TIMEOUT_MS (10000),
KAFKA_PARTITIONS (6), KAFKA_REPLICATION_FACTOR (1), LEARN_FROM_PHASE2B (true),
LOG_LEVEL (INFO).
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import signal
import sqlite3
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

TWO_PC = "2pc"
PAXOS_COMMIT = "paxos-commit"
PROTOCOLS = (TWO_PC, PAXOS_COMMIT)
ENVELOPE_VERSION = 1
# What may arrive on P.rm.<name>, per protocol (sections 2 and 14.1).
ORDER_TYPES = {TWO_PC: ("PREPARE", "COMMIT", "ABORT"), PAXOS_COMMIT: ("PREPARE", "COMMIT", "ABORT", "PHASE2B")}
ALL_TYPES = ("ANNOUNCE", "PREPARE", "VOTE", "COMMIT", "ABORT", "ACK", "QUERY",
             "PHASE1A", "PHASE1B", "PHASE2A", "PHASE2B", "HEARTBEAT", "HANDOVER")
NAME_RULE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# An acceptor id becomes part of a topic name, P.acceptor.<id>: Kafka's legal topic characters.
ACCEPTOR_ID_RULE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
PAXOS_VALUES = ("Prepared", "Aborted")
OWN_BALLOT = {"round": 0, "replica": ""}

log = logging.getLogger("participant")


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Config:
    name: str
    brokers: list[str]
    prefix: str
    db_path: str
    limit: float
    announce_interval_ms: int
    query_interval_ms: int
    session_timeout_ms: int
    partitions: int
    replication_factor: int
    learn_from_phase2b: bool = True

    @property
    def own_topic(self) -> str:
        return f"{self.prefix}.rm.{self.name}"

    @property
    def coordinator_topic(self) -> str:
        return f"{self.prefix}.coordinator"

    @property
    def participants_topic(self) -> str:
        return f"{self.prefix}.participants"

    @property
    def dlq_topic(self) -> str:
        return f"{self.prefix}.dlq"

    @property
    def group_id(self) -> str:
        return f"{self.prefix}.rm.{self.name}"

    def acceptor_topic(self, acceptor: str) -> str:
        return f"{self.prefix}.acceptor.{acceptor}"


def _int_env(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}")
    if value < minimum:
        raise SystemExit(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool_env(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"{name} must be true or false, got {raw!r}")


def load_config(require_brokers: bool = True) -> Config:
    name = os.environ.get("PARTICIPANT_NAME", "").strip() or "ledger"
    if not NAME_RULE.match(name):
        raise SystemExit(f"PARTICIPANT_NAME {name!r} does not match {NAME_RULE.pattern}")
    brokers = [b.strip() for b in os.environ.get("KAFKA_BROKERS", "").split(",") if b.strip()]
    if require_brokers and not brokers:
        raise SystemExit("KAFKA_BROKERS is required (comma-separated host:port)")
    raw_limit = os.environ.get("LEDGER_LIMIT", "").strip() or "1000"
    try:
        limit = float(raw_limit)
    except ValueError:
        raise SystemExit(f"LEDGER_LIMIT must be a number, got {raw_limit!r}")
    return Config(
        name=name,
        brokers=brokers,
        prefix=os.environ.get("KAFKA_TOPIC_PREFIX", "").strip() or "txn",
        db_path=os.environ.get("LEDGER_DB", "").strip() or "ledger.db",
        limit=limit,
        announce_interval_ms=_int_env("ANNOUNCE_INTERVAL_MS", 1000),
        query_interval_ms=_int_env("QUERY_INTERVAL_MS", 1000),
        session_timeout_ms=_int_env("KAFKA_SESSION_TIMEOUT_MS", 10000),
        partitions=_int_env("KAFKA_PARTITIONS", 6),
        replication_factor=_int_env("KAFKA_REPLICATION_FACTOR", 1),
        learn_from_phase2b=_bool_env("LEARN_FROM_PHASE2B", True),
    )


def now_iso() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


# --------------------------------------------------------------------------- envelope


class Malformed(Exception):
    """A message that cannot be handled: it goes to the dead-letter topic (section 12)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(isinstance(item, str) and item for item in value)


def parse_membership(value: Any) -> dict[str, list[str]]:
    """A membership of section 14.1: the transaction's participants and its 2F+1 acceptors."""
    if not isinstance(value, dict):
        raise Malformed("membership missing or not an object")
    rms, acceptors = value.get("rms"), value.get("acceptors")
    if not _string_list(rms):
        raise Malformed("membership.rms must be a non-empty array of names")
    if not _string_list(acceptors):
        raise Malformed("membership.acceptors must be a non-empty array of replica ids")
    for acceptor in acceptors:
        if not ACCEPTOR_ID_RULE.match(acceptor):
            raise Malformed(f"acceptor id {acceptor!r} cannot name a topic")
    if len(set(acceptors)) != len(acceptors) or len(set(rms)) != len(rms):
        raise Malformed("membership names an acceptor or a participant twice")
    return {"rms": list(rms), "acceptors": list(acceptors)}


def parse_ballot(value: Any) -> tuple[int, str]:
    if not isinstance(value, dict):
        raise Malformed("ballot missing or not an object")
    round_, replica = value.get("round"), value.get("replica")
    if not _is_int(round_) or round_ < 0 or not isinstance(replica, str):
        raise Malformed("ballot must be {round: integer >= 0, replica: string}")
    if (round_ == 0) != (replica == ""):
        raise Malformed('ballot: round 0 goes with replica "" and only with it')
    return round_, replica


def parse_entries(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise Malformed("entries missing or not an array")
    entries = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("rm"), str) or entry.get("value") not in PAXOS_VALUES:
            raise Malformed('an entry must be {rm: string, value: "Prepared" | "Aborted"}')
        reason = entry.get("reason")
        entries.append({"rm": entry["rm"], "value": entry["value"], "reason": reason if isinstance(reason, str) else None})
    return entries


def parse_order(value: bytes | None) -> dict[str, Any]:
    """Validates an envelope read from P.rm.<name> (sections 3, 4, 12 and 14.1-14.2)."""
    if value is None:
        raise Malformed("value is null")
    try:
        envelope = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise Malformed(f"value is not JSON: {error}")
    except RecursionError:
        raise Malformed("value is not JSON this parser can read: nested too deeply")
    if not isinstance(envelope, dict):
        raise Malformed("value is not a JSON object")
    if not _is_int(envelope.get("v")) or envelope["v"] != ENVELOPE_VERSION:
        raise Malformed(f"unsupported envelope version {envelope.get('v')!r}")
    kind = envelope.get("type")
    if kind not in ALL_TYPES:
        raise Malformed(f"unknown type {kind!r}")
    protocol = envelope.get("protocol")
    if protocol not in PROTOCOLS:
        raise Malformed(f"unknown protocol {protocol!r}")
    txn_id = envelope.get("txnId")
    if not isinstance(txn_id, str):
        raise Malformed("txnId missing or not a string")
    if kind != "ANNOUNCE" and not txn_id:
        raise Malformed("txnId is empty")
    sender = envelope.get("from")
    if not isinstance(sender, str) or not sender:
        raise Malformed("from missing or empty")
    epoch = envelope.get("epoch")
    if not _is_int(epoch) or epoch < 0:
        raise Malformed("epoch missing or not a non-negative integer")
    if not isinstance(envelope.get("sentAt"), str):
        raise Malformed("sentAt missing or not a string")
    body = envelope.get("body")
    if not isinstance(body, dict):
        raise Malformed("body missing or not an object")
    if kind not in ORDER_TYPES[protocol]:
        raise Malformed(f"{kind} does not belong on a participant's topic")
    if kind == "PREPARE":
        timeout_ms = body.get("timeoutMs")
        if not _is_number(timeout_ms) or timeout_ms <= 0:
            raise Malformed("PREPARE without a positive timeoutMs")
        if protocol == PAXOS_COMMIT:
            body["membership"] = parse_membership(body.get("membership"))
            leader = body.get("leader")
            if not isinstance(leader, str) or not leader:
                raise Malformed("paxos-commit PREPARE without a leader")
    if kind == "PHASE2B":
        body["ballot"] = parse_ballot(body.get("ballot"))
        body["entries"] = parse_entries(body.get("entries"))
    return envelope


def envelope(kind: str, txn_id: str, sender: str, epoch: int, body: dict[str, Any], protocol: str = TWO_PC) -> bytes:
    return json.dumps(
        {"v": ENVELOPE_VERSION, "type": kind, "txnId": txn_id, "protocol": protocol, "from": sender,
         "epoch": epoch, "sentAt": now_iso(), "body": body},
        separators=(",", ":"),
    ).encode("utf-8")


# --------------------------------------------------------------------------- durable state

SCHEMA = """
CREATE TABLE IF NOT EXISTS participant_log (
  txn_id TEXT PRIMARY KEY,
  state TEXT NOT NULL CHECK (state IN ('prepared', 'committed', 'aborted')),
  epoch INTEGER NOT NULL,
  payload TEXT,
  reason TEXT,
  trace_context TEXT,
  timeout_ms INTEGER,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  protocol TEXT NOT NULL DEFAULT '2pc',
  membership TEXT,
  leader TEXT
);
CREATE TABLE IF NOT EXISTS entries (
  txn_id TEXT PRIMARY KEY,
  amount NUMERIC NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'committed', 'aborted'))
);
"""
# Columns added for Paxos Commit; a ledger file made before them gets them on open.
ADDED_COLUMNS = {
    "protocol": "TEXT NOT NULL DEFAULT '2pc'",
    "membership": "TEXT",
    "leader": "TEXT",
}


def open_db(path: str) -> sqlite3.Connection:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # isolation_level=None: no implicit transactions; every write below opens its own
    # BEGIN IMMEDIATE, which takes SQLite's write lock for the whole handling of a message.
    db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    # FULL: a COMMIT returns only after the write-ahead log is synced to disk.
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=10000")
    db.executescript(SCHEMA)
    db.execute("BEGIN IMMEDIATE")
    try:
        have = {row["name"] for row in db.execute("PRAGMA table_info(participant_log)")}
        for column, declaration in ADDED_COLUMNS.items():
            if column not in have:
                db.execute(f"ALTER TABLE participant_log ADD COLUMN {column} {declaration}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return db


@dataclass
class Reply:
    """What to send once the local transaction has committed."""

    kind: str  # 2pc: VOTE or ACK; paxos-commit: PHASE2A or ACK
    body: dict[str, Any]
    epoch: int
    trace: str | None
    protocol: str = TWO_PC
    # PHASE2A goes to P.acceptor.<a> for every one of these; everything else to P.coordinator.
    acceptors: list[str] = field(default_factory=list)


class Ledger:
    """The participant state machines of sections 5 (with the epoch rule of section 8) and 14.3, over SQLite."""

    def __init__(self, db: sqlite3.Connection, limit: float, name: str) -> None:
        self.db = db
        self.limit = limit
        self.name = name

    def in_doubt(self) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT txn_id, epoch, trace_context, timeout_ms FROM participant_log WHERE state = 'prepared' ORDER BY created_at"
        ).fetchall()

    def record(self, txn_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM participant_log WHERE txn_id = ?", (txn_id,)).fetchone()

    def handle(self, order: dict[str, Any], trace: str | None) -> Reply | None:
        """Handles one validated order in one local transaction; returns the reply to send after it committed."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if order["protocol"] == PAXOS_COMMIT:
                reply = self._handle_paxos_locked(order, trace)
            else:
                reply = self._handle_locked(order, trace)
            self.db.execute("COMMIT")
            return reply
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    # -- two-phase commit (sections 5, 6 and 8)

    def _handle_locked(self, order: dict[str, Any], trace: str | None) -> Reply | None:
        kind, txn_id, epoch = order["type"], order["txnId"], order["epoch"]
        row = self.record(txn_id)
        now = now_iso()
        if row is not None:
            if row["protocol"] != TWO_PC:
                log.warning("ignoring 2pc %s for %s, a %s transaction", kind, txn_id, row["protocol"])
                return None
            if epoch < row["epoch"]:
                log.info("ignoring %s for %s: epoch %d is below the stored %d", kind, txn_id, epoch, row["epoch"])
                return None
            if epoch > row["epoch"]:
                self.db.execute("UPDATE participant_log SET epoch = ?, updated_at = ? WHERE txn_id = ?", (epoch, now, txn_id))
            stored_trace = row["trace_context"]
            state = row["state"]
        else:
            stored_trace = None
            state = "working"
        reply_trace = trace if trace is not None else stored_trace

        def reply(reply_kind: str, body: dict[str, Any]) -> Reply:
            # The stored epoch, which is now the order's (lower ones were ignored above).
            return Reply(reply_kind, body, epoch, reply_trace)

        if kind == "PREPARE":
            if state == "working":
                payload = order["body"].get("payload")
                timeout_ms = order["body"]["timeoutMs"]
                refusal = self._refusal(payload)
                if refusal is not None:
                    self._insert(txn_id, "aborted", epoch, payload, refusal, trace, timeout_ms, now)
                    log.info("PREPARE %s: voting NO (%s)", txn_id, refusal)
                    return reply("VOTE", {"vote": "NO", "reason": refusal})
                self.db.execute("INSERT INTO entries (txn_id, amount, state) VALUES (?, ?, 'pending')", (txn_id, payload["amount"]))
                self._insert(txn_id, "prepared", epoch, payload, None, trace, timeout_ms, now)
                log.info("PREPARE %s: pending entry of %s, voting YES", txn_id, payload["amount"])
                return reply("VOTE", {"vote": "YES"})
            if state == "prepared":
                return reply("VOTE", {"vote": "YES"})
            if state == "aborted":
                return reply("VOTE", {"vote": "NO", "reason": row["reason"] or "aborted"})
            return None  # committed: a stale PREPARE

        return self._outcome(txn_id, kind, state, epoch, TWO_PC, trace, reply_trace, now)

    # -- Paxos Commit (sections 14.3 and 14.4)

    def _handle_paxos_locked(self, order: dict[str, Any], trace: str | None) -> Reply | None:
        # No epoch rule here: every paxos-commit envelope carries epoch 0, ballots fence (14.1).
        kind, txn_id = order["type"], order["txnId"]
        row = self.record(txn_id)
        now = now_iso()
        if row is not None and row["protocol"] != PAXOS_COMMIT:
            log.warning("ignoring paxos-commit %s for %s, a %s transaction", kind, txn_id, row["protocol"])
            return None
        state = row["state"] if row is not None else "working"
        reply_trace = trace if trace is not None else (row["trace_context"] if row is not None else None)

        def reply(reply_kind: str, body: dict[str, Any], acceptors: list[str] | None = None) -> Reply:
            return Reply(reply_kind, body, 0, reply_trace, PAXOS_COMMIT, acceptors or [])

        if kind == "PREPARE":
            if state == "working":
                body = order["body"]
                payload, membership, leader = body.get("payload"), body["membership"], body["leader"]
                refusal = self._refusal(payload)
                if refusal is None and self.name not in membership["rms"]:
                    refusal = f"membership.rms does not name {self.name}"
                if refusal is not None:
                    self._insert(txn_id, "aborted", 0, payload, refusal, trace, body["timeoutMs"], now, PAXOS_COMMIT, membership, leader)
                    log.info("PREPARE %s: proposing Aborted (%s)", txn_id, refusal)
                    return reply("PHASE2A", phase2a(membership, leader, self.name, "Aborted", refusal), membership["acceptors"])
                self.db.execute("INSERT INTO entries (txn_id, amount, state) VALUES (?, ?, 'pending')", (txn_id, payload["amount"]))
                self._insert(txn_id, "prepared", 0, payload, None, trace, body["timeoutMs"], now, PAXOS_COMMIT, membership, leader)
                log.info("PREPARE %s: pending entry of %s, proposing Prepared to %s", txn_id, payload["amount"], ",".join(membership["acceptors"]))
                return reply("PHASE2A", phase2a(membership, leader, self.name, "Prepared"), membership["acceptors"])
            if state == "prepared":
                # The stored membership and leader: a new leader's PREPARE does not change them.
                membership, leader = json.loads(row["membership"]), row["leader"]
                return reply("PHASE2A", phase2a(membership, leader, self.name, "Prepared"), membership["acceptors"])
            return None  # committed or aborted: nothing to say

        if kind in ("COMMIT", "ABORT"):
            return self._outcome(txn_id, kind, state, 0, PAXOS_COMMIT, trace, reply_trace, now)
        return None  # PHASE2B is handled by the Participant, which tallies it (14.5)

    def paxos_learned(self, txn_id: str, outcome: str) -> Reply | None:
        """Applies an outcome learned from PHASE2B as the COMMIT or ABORT of 14.3 would."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.record(txn_id)
            result = None
            if row is not None and row["protocol"] == PAXOS_COMMIT:
                result = self._outcome(txn_id, outcome, row["state"], 0, PAXOS_COMMIT, None, row["trace_context"], now_iso())
            self.db.execute("COMMIT")
            return result
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    # -- shared

    def _outcome(self, txn_id: str, outcome: str, state: str, epoch: int, protocol: str, trace: str | None,
                 reply_trace: str | None, now: str) -> Reply | None:
        """COMMIT or ABORT by the one table both protocols share (sections 5 and 14.3).

        `epoch` is what the ACK carries (0 for paxos-commit); `trace` is the order's, stored if
        this creates the record.
        """

        def ack() -> Reply:
            return Reply("ACK", {"outcome": outcome}, epoch, reply_trace, protocol)

        if outcome == "COMMIT":
            if state == "prepared":
                self._apply(txn_id, "committed", now)
                return ack()
            if state == "committed":
                return ack()
            log.warning("ignoring COMMIT for %s in state %s", txn_id, state)
            return None
        if state == "working":
            self._insert(txn_id, "aborted", epoch, None, "aborted before prepare", trace, None, now, protocol)
            log.info("ABORT %s before any PREPARE", txn_id)
            return ack()
        if state == "prepared":
            self._apply(txn_id, "aborted", now)
            return ack()
        if state == "aborted":
            return ack()
        return None  # committed: the decision never changes

    def _apply(self, txn_id: str, state: str, now: str) -> None:
        """Commits or undoes the pending entry and stores the outcome, in the caller's local transaction."""
        self.db.execute("UPDATE entries SET state = ? WHERE txn_id = ?", (state, txn_id))
        self._set_state(txn_id, state, now)
        log.info("%s %s: entry %s", "COMMIT" if state == "committed" else "ABORT", txn_id, state)

    def _refusal(self, payload: Any) -> str | None:
        if not isinstance(payload, dict) or not _is_number(payload.get("amount")):
            return 'payload must be an object with a numeric "amount"'
        amount = payload["amount"]
        if amount < 0:
            return f"amount {amount} is negative"
        if amount > self.limit:
            return f"amount {amount:g} exceeds the ledger limit of {self.limit:g}"
        return None

    def _insert(self, txn_id: str, state: str, epoch: int, payload: Any, reason: str | None, trace: str | None,
                timeout_ms: float | None, now: str, protocol: str = TWO_PC, membership: dict[str, list[str]] | None = None,
                leader: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO participant_log (txn_id, state, epoch, payload, reason, trace_context, timeout_ms, created_at, updated_at,"
            " protocol, membership, leader) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (txn_id, state, epoch, json.dumps(payload), reason, trace,
             None if timeout_ms is None else int(timeout_ms), now, now,
             protocol, None if membership is None else json.dumps(membership), leader),
        )

    def _set_state(self, txn_id: str, state: str, now: str) -> None:
        self.db.execute("UPDATE participant_log SET state = ?, updated_at = ? WHERE txn_id = ?", (state, now, txn_id))


def phase2a(membership: dict[str, list[str]], leader: str, name: str, value: str, reason: str | None = None) -> dict[str, Any]:
    """The body of a participant's PHASE2A (14.2): its own vote, in its own ballot 0."""
    entry: dict[str, Any] = {"rm": name, "value": value}
    if reason is not None:
        entry["reason"] = reason
    return {"membership": membership, "ballot": dict(OWN_BALLOT), "leader": leader, "entries": [entry]}


class Phase2bTally:
    """What this participant has heard from acceptors of one transaction (14.5); kept in memory only."""

    def __init__(self, membership: dict[str, list[str]]) -> None:
        self.membership = membership
        self.majority = len(membership["acceptors"]) // 2 + 1
        # (rm, round, replica) -> (value, acceptors that accepted it in that ballot)
        self.accepted: dict[tuple[str, int, str], tuple[str, set[str]]] = {}
        self.chosen: dict[str, str] = {}

    def add(self, acceptor: str, ballot: tuple[int, str], entries: list[dict[str, Any]]) -> str | None:
        """Counts one PHASE2B; returns COMMIT or ABORT once the outcome is known."""
        if acceptor not in self.membership["acceptors"]:
            return None
        for entry in entries:
            rm, value = entry["rm"], entry["value"]
            if rm not in self.membership["rms"]:
                continue
            key = (rm, ballot[0], ballot[1])
            known = self.accepted.get(key)
            if known is None:
                known = (value, set())
                self.accepted[key] = known
            elif known[0] != value:
                log.warning("PHASE2B from %s: %s has two values in ballot %s; ignoring the second", acceptor, rm, ballot)
                continue
            known[1].add(acceptor)
            if len(known[1]) >= self.majority:
                self.chosen.setdefault(rm, value)
        return self.outcome()

    def outcome(self) -> str | None:
        if "Aborted" in self.chosen.values():
            return "ABORT"
        if all(self.chosen.get(rm) == "Prepared" for rm in self.membership["rms"]):
            return "COMMIT"
        return None


def dump(config: Config) -> None:
    if not os.path.exists(config.db_path):
        print(json.dumps({"entries": {}, "log": {}}))
        return
    db = sqlite3.connect(config.db_path, timeout=10.0)
    db.row_factory = sqlite3.Row
    try:
        entries = {r["txn_id"]: {"amount": r["amount"], "state": r["state"]}
                   for r in db.execute("SELECT * FROM entries ORDER BY txn_id")}
        records = {}
        for r in db.execute("SELECT * FROM participant_log ORDER BY txn_id"):
            keys = r.keys()
            records[r["txn_id"]] = {
                "state": r["state"], "epoch": r["epoch"], "reason": r["reason"],
                "protocol": r["protocol"] if "protocol" in keys else TWO_PC,
                "membership": json.loads(r["membership"]) if "membership" in keys and r["membership"] else None,
                "leader": r["leader"] if "leader" in keys else None,
            }
    except sqlite3.OperationalError:
        entries, records = {}, {}
    finally:
        db.close()
    print(json.dumps({"entries": entries, "log": records}, indent=2, sort_keys=True))


# --------------------------------------------------------------------------- Kafka


class Participant:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.instance_id = str(uuid.uuid4())
        self.ledger = Ledger(open_db(config.db_path), config.limit, config.name)
        self.stopping = False
        self.joined = False
        self.ready = False
        self.next_announce = 0.0
        # txn_id -> (monotonic time of the next QUERY); only transactions stored as prepared.
        self.queries: dict[str, float] = {}
        # txn_id -> PHASE2B heard so far (14.5); only paxos-commit transactions stored as prepared.
        self.tallies: dict[str, Phase2bTally] = {}
        self.producer = None
        self.consumer = None

    # -- set-up

    def connect(self) -> None:
        from kafka import KafkaConsumer, KafkaProducer
        from kafka.errors import NoBrokersAvailable

        deadline = time.monotonic() + 60
        while True:
            try:
                self._create_topics()
                self.producer = KafkaProducer(
                    bootstrap_servers=self.config.brokers,
                    client_id=f"{self.config.name}-{self.instance_id[:8]}",
                    acks="all",
                    linger_ms=0,
                    max_block_ms=15000,
                )
                break
            except NoBrokersAvailable:
                if time.monotonic() > deadline or self.stopping:
                    raise
                log.warning("no Kafka broker reachable at %s yet; retrying", ",".join(self.config.brokers))
                time.sleep(1)
        session = self.config.session_timeout_ms
        self.consumer = KafkaConsumer(
            bootstrap_servers=self.config.brokers,
            client_id=f"{self.config.name}-{self.instance_id[:8]}",
            group_id=self.config.group_id,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=session,
            heartbeat_interval_ms=max(100, session // 3),
            fetch_max_wait_ms=100,
            max_poll_records=100,
        )
        self.consumer.subscribe([self.config.own_topic], listener=self._listener())

    def _create_topics(self) -> None:
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic
        from kafka.errors import TopicAlreadyExistsError

        admin = KafkaAdminClient(bootstrap_servers=self.config.brokers, client_id=f"{self.config.name}-admin")
        try:
            existing = set(admin.list_topics())
            wanted = [self.config.own_topic, self.config.coordinator_topic, self.config.participants_topic, self.config.dlq_topic]
            for topic in wanted:
                if topic in existing:
                    continue
                try:
                    admin.create_topics([NewTopic(topic, self.config.partitions, self.config.replication_factor)])
                    log.info("created topic %s", topic)
                except TopicAlreadyExistsError:
                    pass
        finally:
            admin.close()

    def _listener(self):
        from kafka import ConsumerRebalanceListener

        participant = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                if revoked:
                    log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

            def on_partitions_assigned(self, assigned):
                log.info("joined group %s; partitions %s", participant.config.group_id, sorted(tp.partition for tp in assigned))
                participant.joined = True

        return Listener()

    # -- sending

    def _send(self, topic: str, key: str, value: bytes, headers: list[tuple[str, bytes]] | None = None, wait: bool = True) -> bool:
        try:
            future = self.producer.send(topic, key=key.encode("utf-8"), value=value, headers=headers or None)
            if wait:
                future.get(timeout=15)
            return True
        except Exception as error:  # a lost reply is recovered by the protocol (section 7)
            log.warning("sending to %s failed: %s", topic, error)
            return False

    def _send_all(self, topics: list[str], key: str, value: bytes, headers: list[tuple[str, bytes]] | None) -> int:
        """Sends one message to several topics at once; returns how many sends succeeded."""
        futures = []
        for topic in topics:
            try:
                futures.append((topic, self.producer.send(topic, key=key.encode("utf-8"), value=value, headers=headers)))
            except Exception as error:
                log.warning("sending to %s failed: %s", topic, error)
        deadline = time.monotonic() + 15
        sent = 0
        for topic, future in futures:
            try:
                future.get(timeout=max(0.1, deadline - time.monotonic()))
                sent += 1
            except Exception as error:  # an acceptor that missed it is one of the F tolerated (14.4)
                log.warning("sending to %s failed: %s", topic, error)
        return sent

    def reply(self, txn_id: str, reply: Reply) -> None:
        headers = [("traceparent", reply.trace.encode("utf-8"))] if reply.trace else None
        value = envelope(reply.kind, txn_id, self.config.name, reply.epoch, reply.body, reply.protocol)
        if reply.kind == "PHASE2A":
            topics = [self.config.acceptor_topic(a) for a in reply.acceptors]
            sent = self._send_all(topics, txn_id, value, headers)
            log.info("PHASE2A %s %s sent to %d of %d acceptors", txn_id, reply.body["entries"][0]["value"], sent, len(topics))
        else:
            self._send(self.config.coordinator_topic, txn_id, value, headers)

    def announce(self, wait: bool = False) -> bool:
        body = {"name": self.config.name, "protocols": list(PROTOCOLS), "topic": self.config.own_topic, "instanceId": self.instance_id}
        return self._send(self.config.participants_topic, self.config.name, envelope("ANNOUNCE", "", self.config.name, 0, body), wait=wait)

    def query_due(self, now: float) -> None:
        for txn_id, due in list(self.queries.items()):
            if due > now:
                continue
            row = self.ledger.record(txn_id)
            if row is None or row["state"] != "prepared":
                del self.queries[txn_id]
                self.tallies.pop(txn_id, None)
                continue
            trace = row["trace_context"]
            if row["protocol"] == PAXOS_COMMIT:
                # Section 14.6: QUERY every acceptor; the leader answers on our topic.
                acceptors = json.loads(row["membership"])["acceptors"]
                log.info("QUERY %s to %s (prepared, outcome unknown)", txn_id, ",".join(acceptors))
                headers = [("traceparent", trace.encode("utf-8"))] if trace else None
                value = envelope("QUERY", txn_id, self.config.name, 0, {}, PAXOS_COMMIT)
                self._send_all([self.config.acceptor_topic(a) for a in acceptors], txn_id, value, headers)
            else:
                log.info("QUERY %s (in doubt since it voted YES)", txn_id)
                self.reply(txn_id, Reply("QUERY", {}, row["epoch"], trace))
            self.queries[txn_id] = now + self.config.query_interval_ms / 1000

    # -- receiving

    def dead_letter(self, message, reason: str) -> None:
        log.warning("dead-lettering offset %d of %s/%d: %s", message.offset, message.topic, message.partition, reason)
        headers = [(k, v) for k, v in (message.headers or []) if k not in ("x-dlq-reason", "x-dlq-source-topic")]
        headers += [("x-dlq-reason", reason.encode("utf-8")), ("x-dlq-source-topic", message.topic.encode("utf-8"))]
        future = self.producer.send(self.config.dlq_topic, key=message.key, value=message.value, headers=headers)
        future.get(timeout=15)  # raises: then the message is not committed and is read again

    def handle(self, message) -> None:
        try:
            order = parse_order(message.value)
        except Malformed as error:
            self.dead_letter(message, str(error))
            return
        trace = None
        for key, value in message.headers or []:
            if key == "traceparent" and value is not None:
                trace = value.decode("utf-8", errors="replace")
        txn_id = order["txnId"]
        if order["type"] == "PHASE2B":
            result = self.learn(order)
        else:
            result = self.ledger.handle(order, trace)
        if result is None:
            return
        if order["type"] == "PREPARE" and is_yes(result):
            # Not knowing the outcome after the prepare timeout: ask (sections 10 and 14.6).
            timeout_s = order["body"]["timeoutMs"] / 1000
            self.queries.setdefault(txn_id, time.monotonic() + timeout_s)
        elif result.kind == "ACK":
            self.queries.pop(txn_id, None)
            self.tallies.pop(txn_id, None)
        self.reply(txn_id, result)

    def learn(self, order: dict[str, Any]) -> Reply | None:
        """Section 14.5: counts a PHASE2B and applies the outcome once a majority has chosen it."""
        if not self.config.learn_from_phase2b:
            return None
        txn_id = order["txnId"]
        tally = self.tallies.get(txn_id)
        if tally is None:
            row = self.ledger.record(txn_id)
            if row is None or row["protocol"] != PAXOS_COMMIT or row["state"] != "prepared":
                return None  # nothing to learn: no membership yet, or the outcome is already applied
            tally = self.tallies[txn_id] = Phase2bTally(json.loads(row["membership"]))
        outcome = tally.add(order["from"], order["body"]["ballot"], order["body"]["entries"])
        if outcome is None:
            return None
        log.info("learned %s for %s from the acceptors' PHASE2B", outcome, txn_id)
        self.tallies.pop(txn_id, None)
        return self.ledger.paxos_learned(txn_id, outcome)

    def run(self) -> int:
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        self.connect()
        # Sections 10 and 14.6: every transaction stored as prepared is in doubt; ask about it
        # now and then every QUERY_INTERVAL_MS until a COMMIT or ABORT arrives on our topic.
        for row in self.ledger.in_doubt():
            self.queries[row["txn_id"]] = 0.0
        if self.queries:
            log.info("recovering %d in-doubt transaction(s)", len(self.queries))
        self.query_due(time.monotonic())

        while not self.stopping:
            batches = self.consumer.poll(timeout_ms=100)
            now = time.monotonic()
            if self.joined and now >= self.next_announce:
                # Announce once the group is joined, then every ANNOUNCE_INTERVAL_MS (section 11).
                sent = self.announce(wait=not self.ready)
                self.next_announce = now + self.config.announce_interval_ms / 1000
                if sent and not self.ready:
                    self.ready = True
                    print(f"{self.config.name} ready", flush=True)
            for tp, messages in batches.items():
                for message in messages:
                    if self.stopping:
                        break  # not committed: read again by whoever has the partition next
                    try:
                        self.handle(message)
                    except Exception:
                        # Nothing was acknowledged: read the message again after a pause (section 5).
                        log.exception("handling offset %d of %s/%d failed; will retry", message.offset, tp.topic, tp.partition)
                        self.consumer.seek(tp, message.offset)
                        time.sleep(0.5)
                        break
                    try:
                        self.consumer.commit({TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(message.offset + 1, "", -1)})
                    except Exception as error:
                        # E.g. the group rebalanced: whoever reads the partition next starts at
                        # the last committed offset and sees this message again, a harmless
                        # duplicate (section 9). A later commit covers it if we keep it.
                        log.warning("committing offset %d of %s/%d failed: %s", message.offset, tp.topic, tp.partition, error)
            self.query_due(time.monotonic())
        return self.shutdown()

    def shutdown(self) -> int:
        log.info("stopping")
        try:
            if self.consumer is not None:
                self.consumer.close(autocommit=False)
        finally:
            if self.producer is not None:
                self.producer.flush(timeout=5)
                self.producer.close(timeout=5)
            self.ledger.db.close()
        log.info("stopped")
        return 0


def is_yes(reply: Reply) -> bool:
    if reply.kind == "VOTE":
        return reply.body.get("vote") == "YES"
    return reply.kind == "PHASE2A" and reply.body["entries"][0]["value"] == "Prepared"


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    if "--dump" in argv[1:]:
        dump(load_config(require_brokers=False))
        return 0
    config = load_config()
    participant = Participant(config)

    def stop(signum, _frame):
        log.info("received %s", signal.Signals(signum).name)
        participant.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("%s starting: topic %s, group %s, db %s", config.name, config.own_topic, config.group_id, config.db_path)
    return participant.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
