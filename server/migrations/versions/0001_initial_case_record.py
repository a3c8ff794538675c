"""initial case record

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 18:01:29.413991
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('audit_checkpoints',
    sa.Column('tree_size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('root_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.LargeBinary(length=64), nullable=False),
    sa.PrimaryKeyConstraint('tree_size', name=op.f('pk_audit_checkpoints'))
    )
    op.create_table('audit_entries',
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('action', sa.String(length=48), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('canonical', sa.LargeBinary(), nullable=True),
    sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=True),
    sa.PrimaryKeyConstraint('entry_id', name=op.f('pk_audit_entries')),
    sa.UniqueConstraint('seq', name=op.f('uq_audit_entries_seq')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index('ix_audit_entries_case', ['case_id', 'seq'], unique=False)
        batch_op.create_index('ix_audit_entries_pending', ['entry_id'], unique=False, postgresql_where=sa.text('seq IS NULL'), sqlite_where=sa.text('seq IS NULL'))

    op.create_table('cases',
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('case_number', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('lender', sa.String(length=200), nullable=False),
    sa.Column('loan_reference', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('principal_minor', sa.BigInteger(), nullable=False),
    sa.Column('overdue_minor', sa.BigInteger(), nullable=False),
    sa.Column('days_overdue', sa.Integer(), nullable=False),
    sa.Column('overdue_bucket', sa.String(length=8), nullable=False),
    sa.Column('proposal', sa.Text(), nullable=False),
    sa.Column('rejection_reason', sa.Text(), nullable=True),
    sa.Column('outcome', sa.String(length=24), nullable=True),
    sa.Column('closing_note', sa.Text(), nullable=True),
    sa.Column('receipt_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('receipt_public_key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('receipt_expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('case_id', name=op.f('pk_cases')),
    sa.UniqueConstraint('case_number', name=op.f('uq_cases_case_number')),
    sa.UniqueConstraint('receipt_hash', name=op.f('uq_cases_receipt_hash'))
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cases_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_state'), ['state'], unique=False)

    op.create_table('staff_users',
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=120), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('age_recipient', sa.String(length=128), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_staff_users')),
    sa.UniqueConstraint('username', name=op.f('uq_staff_users_username'))
    )
    op.create_table('agreements',
    sa.Column('agreement_id', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('signatures', sa.JSON(), nullable=False),
    sa.Column('countersignature', sa.JSON(), nullable=True),
    sa.Column('created_by', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.case_id'], name=op.f('fk_agreements_case_id_cases')),
    sa.PrimaryKeyConstraint('agreement_id', name=op.f('pk_agreements'))
    )
    with op.batch_alter_table('agreements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agreements_case_id'), ['case_id'], unique=False)

    op.create_table('assignments',
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('assigned_by', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.case_id'], name=op.f('fk_assignments_case_id_cases')),
    sa.ForeignKeyConstraint(['user_id'], ['staff_users.user_id'], name=op.f('fk_assignments_user_id_staff_users')),
    sa.PrimaryKeyConstraint('case_id', 'role', name=op.f('pk_assignments'))
    )
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assignments_user_id'), ['user_id'], unique=False)

    op.create_table('parties',
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('verified_by', sa.String(length=40), nullable=True),
    sa.Column('verification_method', sa.String(length=32), nullable=True),
    sa.Column('verification_reference', sa.String(length=120), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.case_id'], name=op.f('fk_parties_case_id_cases')),
    sa.PrimaryKeyConstraint('party_id', name=op.f('pk_parties')),
    sa.UniqueConstraint('case_id', 'role', name='uq_parties_case_role')
    )
    with op.batch_alter_table('parties', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_parties_case_id'), ['case_id'], unique=False)

    op.create_table('scheduled_sessions',
    sa.Column('session_id', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('proposed_by', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.case_id'], name=op.f('fk_scheduled_sessions_case_id_cases')),
    sa.PrimaryKeyConstraint('session_id', name=op.f('pk_scheduled_sessions'))
    )
    with op.batch_alter_table('scheduled_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scheduled_sessions_case_id'), ['case_id'], unique=False)

    op.create_table('sealed_records',
    sa.Column('record_id', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('session_id', sa.String(length=40), nullable=True),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('participant_id', sa.String(length=40), nullable=True),
    sa.Column('part', sa.Integer(), nullable=True),
    sa.Column('index', sa.Integer(), nullable=True),
    sa.Column('storage_key', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('audit_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['audit_entry_id'], ['audit_entries.entry_id'], name=op.f('fk_sealed_records_audit_entry_id_audit_entries')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.case_id'], name=op.f('fk_sealed_records_case_id_cases')),
    sa.PrimaryKeyConstraint('record_id', name=op.f('pk_sealed_records')),
    sa.UniqueConstraint('storage_key', name=op.f('uq_sealed_records_storage_key'))
    )
    with op.batch_alter_table('sealed_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sealed_records_case_id'), ['case_id'], unique=False)

    op.create_table('staff_sessions',
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['staff_users.user_id'], name=op.f('fk_staff_sessions_user_id_staff_users')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_staff_sessions'))
    )
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_sessions_user_id'), ['user_id'], unique=False)

    op.create_table('consents',
    sa.Column('consent_id', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('session_id', sa.String(length=40), nullable=False),
    sa.Column('participant_id', sa.String(length=40), nullable=False),
    sa.Column('notice_sha256', sa.String(length=64), nullable=False),
    sa.Column('given_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sealed_record_id', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.case_id'], name=op.f('fk_consents_case_id_cases')),
    sa.ForeignKeyConstraint(['session_id'], ['scheduled_sessions.session_id'], name=op.f('fk_consents_session_id_scheduled_sessions')),
    sa.PrimaryKeyConstraint('consent_id', name=op.f('pk_consents'))
    )
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consents_case_id'), ['case_id'], unique=False)

    op.create_table('feedback',
    sa.Column('feedback_id', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('rating', sa.Integer(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.case_id'], name=op.f('fk_feedback_case_id_cases')),
    sa.ForeignKeyConstraint(['party_id'], ['parties.party_id'], name=op.f('fk_feedback_party_id_parties')),
    sa.PrimaryKeyConstraint('feedback_id', name=op.f('pk_feedback')),
    sa.UniqueConstraint('case_id', 'party_id', name='uq_feedback_case_party')
    )
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_case_id'), ['case_id'], unique=False)

    op.create_table('join_links',
    sa.Column('link_id', sa.String(length=40), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('session_id', sa.String(length=40), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('issued_by', sa.String(length=40), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.case_id'], name=op.f('fk_join_links_case_id_cases')),
    sa.ForeignKeyConstraint(['party_id'], ['parties.party_id'], name=op.f('fk_join_links_party_id_parties')),
    sa.ForeignKeyConstraint(['session_id'], ['scheduled_sessions.session_id'], name=op.f('fk_join_links_session_id_scheduled_sessions')),
    sa.PrimaryKeyConstraint('link_id', name=op.f('pk_join_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_join_links_token_hash'))
    )
    with op.batch_alter_table('join_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_join_links_case_id'), ['case_id'], unique=False)

    op.create_table('notices',
    sa.Column('notice_id', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('sealed_secret', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.case_id'], name=op.f('fk_notices_case_id_cases')),
    sa.ForeignKeyConstraint(['party_id'], ['parties.party_id'], name=op.f('fk_notices_party_id_parties')),
    sa.PrimaryKeyConstraint('notice_id', name=op.f('pk_notices'))
    )
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notices_case_id'), ['case_id'], unique=False)

    op.create_table('session_confirmations',
    sa.Column('session_id', sa.String(length=40), nullable=False),
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_by', sa.String(length=80), nullable=False),
    sa.ForeignKeyConstraint(['party_id'], ['parties.party_id'], name=op.f('fk_session_confirmations_party_id_parties')),
    sa.ForeignKeyConstraint(['session_id'], ['scheduled_sessions.session_id'], name=op.f('fk_session_confirmations_session_id_scheduled_sessions')),
    sa.PrimaryKeyConstraint('session_id', 'party_id', name=op.f('pk_session_confirmations'))
    )



def downgrade() -> None:

    op.drop_table('session_confirmations')
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notices_case_id'))

    op.drop_table('notices')
    with op.batch_alter_table('join_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_join_links_case_id'))

    op.drop_table('join_links')
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_case_id'))

    op.drop_table('feedback')
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consents_case_id'))

    op.drop_table('consents')
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_sessions_user_id'))

    op.drop_table('staff_sessions')
    with op.batch_alter_table('sealed_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sealed_records_case_id'))

    op.drop_table('sealed_records')
    with op.batch_alter_table('scheduled_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scheduled_sessions_case_id'))

    op.drop_table('scheduled_sessions')
    with op.batch_alter_table('parties', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_parties_case_id'))

    op.drop_table('parties')
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assignments_user_id'))

    op.drop_table('assignments')
    with op.batch_alter_table('agreements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agreements_case_id'))

    op.drop_table('agreements')
    op.drop_table('staff_users')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_state'))
        batch_op.drop_index(batch_op.f('ix_cases_created_at'))

    op.drop_table('cases')
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entries_pending', postgresql_where=sa.text('seq IS NULL'), sqlite_where=sa.text('seq IS NULL'))
        batch_op.drop_index('ix_audit_entries_case')

    op.drop_table('audit_entries')
    op.drop_table('audit_checkpoints')

