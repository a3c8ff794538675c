"""join link deliveries per channel; notices name their link; receipts can be revoked

Revision ID: 0005_links_delivery
Revises: 0004_witness
Create Date: 2026-12-01 23:59:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0005_links_delivery'
down_revision = '0004_witness'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'link_deliveries',
        sa.Column('delivery_id', sa.String(length=40), nullable=False),
        sa.Column('link_id', sa.String(length=40), nullable=False),
        sa.Column('case_id', sa.String(length=40), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('error', sa.String(length=32), nullable=True),
        sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['case_id'], ['cases.case_id'], name=op.f('fk_link_deliveries_case_id_cases')),
        sa.ForeignKeyConstraint(['link_id'], ['join_links.link_id'],
                                name=op.f('fk_link_deliveries_link_id_join_links')),
        sa.PrimaryKeyConstraint('delivery_id', name=op.f('pk_link_deliveries')),
    )
    with op.batch_alter_table('link_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_link_deliveries_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_link_deliveries_link_id'), ['link_id'], unique=False)
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('link_id', sa.String(length=40), nullable=True))
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('receipt_revoked_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('receipt_revoked_by', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('receipt_revoked_by')
        batch_op.drop_column('receipt_revoked_at')
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_column('link_id')
    with op.batch_alter_table('link_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_link_deliveries_link_id'))
        batch_op.drop_index(batch_op.f('ix_link_deliveries_case_id'))
    op.drop_table('link_deliveries')
