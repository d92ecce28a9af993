"""operators: key limits and quotas, channels, usage accounting

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column("expires_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("rpm_limit", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_concurrent", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("ip_allowlist", JSON, nullable=True))
        batch_op.add_column(sa.Column("quota_credits", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("used_credits", sa.Float(), server_default="0", nullable=False))

    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("channel_fp", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("reserved_credits", sa.Float(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("charged_credits", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("settlement", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("settled_at", sa.Float(), nullable=True))
        batch_op.create_index("ix_videos_usage", ["created_at", "api_key_id"], unique=False)

    op.create_table(
        "channels",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("vendor", sa.String(length=40), nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=True),
        sa.Column("models", JSON, nullable=True),
        sa.Column("credentials_enc", sa.Text(), nullable=True),
        sa.Column("first_seen", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.Float(), nullable=True),
        sa.Column("cooldown_until", sa.Float(), nullable=True),
        sa.Column("last_success_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_channels")),
    )


def downgrade() -> None:
    op.drop_table("channels")
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_index("ix_videos_usage")
        for col in ("settled_at", "settlement", "charged_credits", "reserved_credits", "channel_fp", "channel"):
            batch_op.drop_column(col)
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        for col in (
            "used_credits",
            "quota_credits",
            "ip_allowlist",
            "max_concurrent",
            "rpm_limit",
            "expires_at",
            "enabled",
        ):
            batch_op.drop_column(col)
