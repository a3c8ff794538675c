"""the chat journal: sealed chat of running sessions under per-session keys, for the transcript

Revision ID: 0003_chat_journal
Revises: 0002
Create Date: 2026-12-02 00:10:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0003_chat_journal'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'session_key_salts',
        sa.Column('session_id', sa.String(length=40), nullable=False),
        sa.Column('salt', sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint('session_id', name=op.f('pk_session_key_salts')),
    )
    op.create_table(
        'chat_journal',
        sa.Column('session_id', sa.String(length=40), nullable=False),
        sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('sealed', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('session_id', 'seq', name=op.f('pk_chat_journal')),
    )


def downgrade() -> None:
    op.drop_table('chat_journal')
    op.drop_table('session_key_salts')
