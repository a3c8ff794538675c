"""audit checkpoints keep their C2SP signed note with witness cosignatures

Revision ID: 0004_witness
Revises: 0003_chat_journal
Create Date: 2026-12-02 00:05:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0004_witness'
down_revision = '0003_chat_journal'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_checkpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_checkpoints', schema=None) as batch_op:
        batch_op.drop_column('note')
