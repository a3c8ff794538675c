"""possession factor: one-time codes, enrolled device keys, single-use challenges

Revision ID: 0008_possession
Revises: 0007_staff_approval
Create Date: 2026-12-02 02:30:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0008_possession'
down_revision = '0007_staff_approval'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('possession_codes',
    sa.Column('code_id', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('act', sa.String(length=32), nullable=True),
    sa.Column('session_id', sa.String(length=40), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('address_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('code_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('credential', sa.JSON(), nullable=True),
    sa.Column('requested_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.case_id'], name=op.f('fk_possession_codes_case_id_cases')),
    sa.ForeignKeyConstraint(['party_id'], ['parties.party_id'], name=op.f('fk_possession_codes_party_id_parties')),
    sa.PrimaryKeyConstraint('code_id', name=op.f('pk_possession_codes'))
    )
    with op.batch_alter_table('possession_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_possession_codes_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_possession_codes_party_id'), ['party_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_possession_codes_address_hash'), ['address_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_possession_codes_created_at'), ['created_at'], unique=False)
    op.create_table('device_enrolments',
    sa.Column('enrolment_id', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('public_key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('code_id', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('credential', sa.JSON(), nullable=True),
    sa.Column('enrolled_by', sa.String(length=80), nullable=False),
    sa.Column('enrolled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.case_id'], name=op.f('fk_device_enrolments_case_id_cases')),
    sa.ForeignKeyConstraint(['party_id'], ['parties.party_id'], name=op.f('fk_device_enrolments_party_id_parties')),
    sa.ForeignKeyConstraint(['code_id'], ['possession_codes.code_id'],
                            name=op.f('fk_device_enrolments_code_id_possession_codes')),
    sa.PrimaryKeyConstraint('enrolment_id', name=op.f('pk_device_enrolments')),
    sa.UniqueConstraint('public_key', name=op.f('uq_device_enrolments_public_key'))
    )
    with op.batch_alter_table('device_enrolments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_device_enrolments_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_device_enrolments_party_id'), ['party_id'], unique=False)
    op.create_table('possession_challenges',
    sa.Column('challenge_id', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('act', sa.String(length=32), nullable=False),
    sa.Column('session_id', sa.String(length=40), nullable=True),
    sa.Column('nonce', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.case_id'], name=op.f('fk_possession_challenges_case_id_cases')),
    sa.ForeignKeyConstraint(['party_id'], ['parties.party_id'],
                            name=op.f('fk_possession_challenges_party_id_parties')),
    sa.PrimaryKeyConstraint('challenge_id', name=op.f('pk_possession_challenges'))
    )
    with op.batch_alter_table('possession_challenges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_possession_challenges_case_id'), ['case_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('possession_challenges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_possession_challenges_case_id'))
    op.drop_table('possession_challenges')
    with op.batch_alter_table('device_enrolments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_device_enrolments_party_id'))
        batch_op.drop_index(batch_op.f('ix_device_enrolments_case_id'))
    op.drop_table('device_enrolments')
    with op.batch_alter_table('possession_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_possession_codes_created_at'))
        batch_op.drop_index(batch_op.f('ix_possession_codes_address_hash'))
        batch_op.drop_index(batch_op.f('ix_possession_codes_party_id'))
        batch_op.drop_index(batch_op.f('ix_possession_codes_case_id'))
    op.drop_table('possession_codes')
