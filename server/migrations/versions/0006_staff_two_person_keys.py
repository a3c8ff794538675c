"""staff accounts: creator and password change; compliance key proposals and signed recipient statements

Revision ID: 0006_staff_two_person_keys
Revises: 0005_links_delivery
Create Date: 2026-12-02 00:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0006_staff_two_person_keys'
down_revision = '0005_links_delivery'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('created_by', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('recipient_proposals',
    sa.Column('proposal_id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('recipient', sa.String(length=128), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('proposed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('approvals', sa.JSON(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['staff_users.user_id'],
                            name=op.f('fk_recipient_proposals_user_id_staff_users')),
    sa.PrimaryKeyConstraint('proposal_id', name=op.f('pk_recipient_proposals'))
    )
    with op.batch_alter_table('recipient_proposals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recipient_proposals_user_id'), ['user_id'], unique=False)
    op.create_table('recipient_statements',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('statement', sa.LargeBinary(), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.LargeBinary(length=64), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_recipient_statements'))
    )


def downgrade() -> None:
    op.drop_table('recipient_statements')
    with op.batch_alter_table('recipient_proposals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recipient_proposals_user_id'))
    op.drop_table('recipient_proposals')
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_column('password_changed_at')
        batch_op.drop_column('created_by')
