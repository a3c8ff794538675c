"""staff accounts: a second administrator approves an account that reads case text or enters rooms

Revision ID: 0007_staff_approval
Revises: 0006_staff_two_person_keys
Create Date: 2026-12-02 02:30:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0007_staff_approval'
down_revision = '0006_staff_two_person_keys'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('awaiting_approval', sa.Boolean(), nullable=False,
                                      server_default=sa.text('false')))
        batch_op.add_column(sa.Column('approved_by', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_column('approved_at')
        batch_op.drop_column('approved_by')
        batch_op.drop_column('awaiting_approval')
