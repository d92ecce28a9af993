"""videos: typed columns. `status` is checked against the four statuses, `size` "WxH" becomes `width` and
`height`, `seconds` an integer, and `params` splits into `inputs` (what the client asked for) and the
engine's counters `submit_attempts` / `download_attempts` (real columns).

The rows are migrated in Python, in batches, the same way on SQLite and PostgreSQL (JSON functions
differ between the two). Downgrade puts everything back into the 0006 shape.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("queued", "in_progress", "completed", "failed")
COUNTERS = ("submit_attempts", "download_attempts")
INPUT_KEYS = ("metadata", "characters", "image_first", "image_last", "source_key", "segment_seconds", "source_seconds")
BATCH = 500

JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _videos(*columns: str) -> sa.TableClause:
    types: dict[str, Any] = {
        "id": sa.String(80),
        "size": sa.String(20),
        "seconds": sa.String(10),
        "width": sa.Integer(),
        "height": sa.Integer(),
        "params": JSONType,
        "inputs": JSONType,
        "submit_attempts": sa.Integer(),
        "download_attempts": sa.Integer(),
    }
    return sa.table("videos", *(sa.column(c, types[c]) for c in columns))


def _batches(conn: sa.Connection, query: sa.Select[Any]) -> Iterator[Sequence[sa.Row[Any]]]:
    rows = conn.execute(query).all()  # read first: the updates below never share a cursor with the read
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _split_size(size: str | None) -> tuple[int, int]:
    w, _, h = (size or "").partition("x")
    return _int(w), _int(h)


def upgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("width", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("height", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("inputs", JSONType, nullable=True))
        batch_op.add_column(sa.Column("submit_attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("download_attempts", sa.Integer(), server_default="0", nullable=False))

    conn = op.get_bind()
    old = _videos("id", "size", "params")
    new = _videos("id", "width", "height", "inputs", "submit_attempts", "download_attempts")
    stmt = (
        sa.update(new)
        .where(new.c.id == sa.bindparam("b_id"))
        .values(
            width=sa.bindparam("b_width"),
            height=sa.bindparam("b_height"),
            inputs=sa.bindparam("b_inputs", type_=JSONType),
            submit_attempts=sa.bindparam("b_submit"),
            download_attempts=sa.bindparam("b_download"),
        )
    )
    for rows in _batches(conn, sa.select(old.c.id, old.c.size, old.c.params)):
        values = []
        for row in rows:
            params = dict(row.params or {})
            w, h = _split_size(row.size)
            values.append(
                {
                    "b_id": row.id,
                    "b_width": w,
                    "b_height": h,
                    "b_inputs": {k: params[k] for k in INPUT_KEYS if params.get(k) is not None},
                    "b_submit": _int(params.get("submit_attempts")),
                    "b_download": _int(params.get("download_attempts")),
                }
            )
        conn.execute(stmt, values)

    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.alter_column("width", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("height", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("inputs", existing_type=JSONType, nullable=False)
        # every stored value is digits ("8"): a plain cast on both databases
        batch_op.alter_column(
            "seconds",
            existing_type=sa.String(length=10),
            type_=sa.Integer(),
            existing_nullable=False,
            postgresql_using="seconds::integer",
        )
        batch_op.create_check_constraint(op.f("ck_videos_video_status"), sa.column("status").in_(STATUSES))
        batch_op.drop_column("size")
        batch_op.drop_column("params")


def downgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("size", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("params", JSONType, nullable=True))
        batch_op.drop_constraint(op.f("ck_videos_video_status"), type_="check")
        batch_op.alter_column(
            "seconds",
            existing_type=sa.Integer(),
            type_=sa.String(length=10),
            existing_nullable=False,
            postgresql_using="seconds::varchar",
        )

    conn = op.get_bind()
    cur = _videos("id", "width", "height", "inputs", "submit_attempts", "download_attempts")
    old = _videos("id", "size", "params")
    stmt = (
        sa.update(old)
        .where(old.c.id == sa.bindparam("b_id"))
        .values(size=sa.bindparam("b_size"), params=sa.bindparam("b_params", type_=JSONType))
    )
    query = sa.select(cur.c.id, cur.c.width, cur.c.height, cur.c.inputs, cur.c.submit_attempts, cur.c.download_attempts)
    for rows in _batches(conn, query):
        values = []
        for row in rows:
            params: dict[str, Any] = {"metadata": {}, "characters": [], **(row.inputs or {})}
            for name in COUNTERS:
                if getattr(row, name):
                    params[name] = int(getattr(row, name))
            values.append({"b_id": row.id, "b_size": f"{row.width}x{row.height}", "b_params": params})
        conn.execute(stmt, values)

    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.alter_column("size", existing_type=sa.String(length=20), nullable=False)
        batch_op.alter_column("params", existing_type=JSONType, nullable=False)
        batch_op.drop_column("download_attempts")
        batch_op.drop_column("submit_attempts")
        batch_op.drop_column("inputs")
        batch_op.drop_column("height")
        batch_op.drop_column("width")
