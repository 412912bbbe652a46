"""Tags of models, endpoint configs and endpoints, keyed by the resource's ARN.

A part of `SqlRegistry` (it uses the `_read` / `_write` transactions of `SqlBase`). The rules
that need the stored tags are checked inside the write transaction (on PostgreSQL under a lock
per resource), so two concurrent AddTags cannot together pass the limit: at most `MAX_TAGS` per
resource (AWS's 50); a key added again replaces its value and keeps its place. A resource
created again under an old name starts with the tags of its create request only
(`replace_tags`), so a deleted resource's tags never reappear.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, delete, func, insert, select, text, update

from greenshift.errors import ValidationError
from greenshift.registry import schema as t
from greenshift.registry.sql_base import SqlBase

MAX_TAGS = 50

# Built once: every CreateEndpoint replaces its endpoint's tags.
_DELETE_ALL = delete(t.tags).where(t.tags.c.resource_arn == bindparam("arn"))
_INSERT = insert(t.tags)


def too_many(arn: str, total: int) -> ValidationError:
    return ValidationError(
        f'Resource "{arn}" would have {total} tags: a resource can have at most {MAX_TAGS} tags.'
    )


class SqlTags(SqlBase):
    """Tag methods of the SQL registry."""

    def list_tags(self, arn: str) -> list[tuple[str, str]]:
        """The resource's tags, in the order their keys were first added."""
        tags = t.tags
        query = (
            select(tags.c.key, tags.c.value)
            .where(tags.c.resource_arn == arn)
            .order_by(tags.c.seq, tags.c.key)
        )
        with self._read() as conn:
            return [(row[0], row[1]) for row in conn.execute(query)]

    def add_tags(self, arn: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Add or overwrite; raises ValidationError when the resource would pass MAX_TAGS."""
        with self._write() as conn:
            self._merge(conn, arn, pairs)

    def replace_tags(self, arn: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Exactly `pairs` (the tags of a create request). Its one refusal (too many) needs no
        stored tags and comes before any write, so it joins the group commit's transaction
        (greenshift.registry.batching's rule)."""
        wanted = dict(pairs)  # the last value given for a key wins
        if len(wanted) > MAX_TAGS:
            raise too_many(arn, len(wanted))
        rows = [
            {"resource_arn": arn, "key": key, "value": value, "seq": seq}
            for seq, (key, value) in enumerate(wanted.items(), start=1)
        ]

        def replace(conn: Connection) -> None:
            lock_resource(conn, arn)
            conn.execute(_DELETE_ALL, {"arn": arn})
            if rows:
                conn.execute(_INSERT, rows)

        self._in_batch(replace)

    def delete_tags(self, arn: str, keys: Sequence[str]) -> None:
        """Remove the keys; keys the resource does not have are ignored, as on AWS."""
        tags = t.tags
        with self._write() as conn:
            conn.execute(
                delete(tags).where(tags.c.resource_arn == arn).where(tags.c.key.in_(list(keys)))
            )

    @staticmethod
    def _merge(conn: Connection, arn: str, pairs: Sequence[tuple[str, str]]) -> None:
        tags = t.tags
        lock_resource(conn, arn)
        wanted = dict(pairs)  # the last value given for a key wins
        rows = conn.execute(select(tags.c.key, tags.c.seq).where(tags.c.resource_arn == arn)).all()
        existing = {row[0]: row[1] for row in rows}
        new_keys = [k for k in wanted if k not in existing]
        if len(existing) + len(new_keys) > MAX_TAGS:
            raise too_many(arn, len(existing) + len(new_keys))
        for key in wanted:
            if key in existing:
                conn.execute(
                    update(tags)
                    .where(tags.c.resource_arn == arn)
                    .where(tags.c.key == key)
                    .values(value=wanted[key])
                )
        next_seq = (
            conn.execute(select(func.max(tags.c.seq)).where(tags.c.resource_arn == arn)).scalar()
            or 0
        )
        for i, key in enumerate(new_keys, start=1):
            conn.execute(
                insert(tags).values(resource_arn=arn, key=key, value=wanted[key], seq=next_seq + i)
            )


def lock_resource(conn: Connection, arn: str) -> None:
    """SQLite's write transaction already holds the database's lock; PostgreSQL locks rows, and
    the rows to lock may not exist yet: serialize the tag writers of one resource."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:arn))"), {"arn": arn})
