-- scf sink postgres, schema version 1: the chain's events, and the current
-- state users query, as of the height in sink_cursor.
--
-- Keys, token ids and hashes are lowercase hex, as the API prints them.
-- Amounts are integers in minor units (`*_minor`, e.g. cents); divide by
-- 10 ^ chain.currency_decimals for the currency (scf_amount below). Times
-- are timestamptz from the block header, never from the sink's clock.
--
-- Tables whose rows change (a token spent, a nonce advanced) leave room in
-- each page (fillfactor 70) so an update that changes no indexed column
-- stays on its page without touching the indexes (a HOT update). Only the
-- keys and tokens(holder) are indexed: every index is paid for on every
-- insert; add the ones your queries need.

-- The chain this database follows: one row, written on the first run. A
-- sink pointed at a node of another chain refuses it.
CREATE TABLE chain (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    chain_id text NOT NULL,
    chain_name text NOT NULL,
    currency_code text NOT NULL,
    currency_decimals smallint NOT NULL
);

-- Where the sink is: every event and state change of heights 1..height is
-- in this database, and nothing of a later height. Written in the same
-- transaction as the rows it accounts for.
CREATE TABLE sink_cursor (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    height bigint NOT NULL,
    block_hash text NOT NULL,
    app_hash text NOT NULL,
    block_time timestamptz,
    -- The cursor of the last event written (null: none yet).
    last_event text,
    events bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every event, as GET /v1/events serves it; payload is the event's JSON
-- (kind and its fields).
CREATE TABLE events (
    cursor text PRIMARY KEY,
    height bigint NOT NULL,
    tx_index integer NOT NULL,
    event_index integer NOT NULL,
    kind text NOT NULL,
    block_time timestamptz NOT NULL,
    tx_hash text NOT NULL,
    signer text NOT NULL,
    payload jsonb NOT NULL
);

-- A participant by its identity (the key it was registered with, which
-- tokens, credit lines and events name it by forever).
CREATE TABLE participants (
    key text PRIMARY KEY,
    -- the key it signs with now: `key` until it first rotates
    signing_key text NOT NULL,
    name text NOT NULL,
    -- operator, bank, core_enterprise, supplier, auditor, validator (a
    -- validator's account, granted by governance only)
    roles text[] NOT NULL,
    active boolean NOT NULL,
    next_nonce bigint NOT NULL,
    updated_height bigint NOT NULL
) WITH (fillfactor = 70);

-- One row per core enterprise with a credit line: the sum of its banks'
-- grants, and what it has confirmed and not yet settled.
CREATE TABLE credit_lines (
    core text PRIMARY KEY,
    limit_minor bigint NOT NULL,
    outstanding_minor bigint NOT NULL,
    updated_height bigint NOT NULL
) WITH (fillfactor = 70);

-- Each bank's grant in a core enterprise's credit line.
CREATE TABLE credit_grants (
    core text NOT NULL,
    bank text NOT NULL,
    limit_minor bigint NOT NULL,
    PRIMARY KEY (core, bank)
);

-- One row per confirmed receivable (root token).
CREATE TABLE receivables (
    root text PRIMARY KEY,
    issuer text NOT NULL,
    amount_minor bigint NOT NULL,
    maturity timestamptz NOT NULL,
    invoice_ref text NOT NULL,
    frozen_tokens integer NOT NULL,
    settled boolean NOT NULL,
    payment_ref text,
    settled_at timestamptz,
    confirmed_height bigint NOT NULL,
    updated_height bigint NOT NULL
) WITH (fillfactor = 70);

-- Every token, spent ones included (lineage: parent, root).
CREATE TABLE tokens (
    id text PRIMARY KEY,
    root text NOT NULL,
    -- null for a root
    parent text,
    issuer text NOT NULL,
    holder text NOT NULL,
    amount_minor bigint NOT NULL,
    maturity timestamptz NOT NULL,
    -- active, pending (offered for financing), spent, settled
    status text NOT NULL,
    frozen boolean NOT NULL,
    pending_bank text,
    pending_rate_bps integer,
    -- the transaction that spent it
    spent_by text,
    payment_ref text,
    -- confirmed, transferred, financed
    origin text NOT NULL,
    created_height bigint NOT NULL,
    updated_height bigint NOT NULL
) WITH (fillfactor = 70);
CREATE INDEX tokens_holder ON tokens (holder);

-- One row per financing request, with the bank's decision once made.
CREATE TABLE financing (
    -- the cursor of the financing_requested event
    request text PRIMARY KEY,
    token text NOT NULL,
    root text NOT NULL,
    seller text NOT NULL,
    bank text NOT NULL,
    amount_minor bigint NOT NULL,
    -- yearly discount rate in basis points (435 = 4.35 %)
    rate_bps integer NOT NULL,
    requested_at timestamptz NOT NULL,
    -- requested, accepted, rejected
    status text NOT NULL,
    -- the cursor of the financing_accepted or financing_rejected event
    decision text,
    decided_at timestamptz,
    -- accepted only: what the bank paid, over how many days, its new token
    price_minor bigint,
    days bigint,
    bought_token text
) WITH (fillfactor = 70);
CREATE INDEX financing_open ON financing (token) WHERE status = 'requested';

-- Every key a participant rotated to (by rotating it, or by a recovery an
-- auditor approved), bound to its identity for good: a key is bound once.
CREATE TABLE key_bindings (
    key text PRIMARY KEY,
    participant text NOT NULL,
    bound_height bigint NOT NULL
);

-- Each participant's latest lost-key recovery: asked by an operator, then
-- approved by an auditor (null while waiting).
CREATE TABLE key_recoveries (
    participant text PRIMARY KEY,
    new_key text NOT NULL,
    requested_by text NOT NULL,
    requested_height bigint NOT NULL,
    approved_by text,
    approved_height bigint,
    updated_height bigint NOT NULL
) WITH (fillfactor = 70);

-- The validator set over the chain's life: epoch 0 is genesis's, each
-- adopted change makes the next, in force from from_height until the next
-- epoch's. The set of height H is the epoch with the greatest
-- from_height <= H.
CREATE TABLE validator_epochs (
    epoch bigint PRIMARY KEY,
    from_height bigint NOT NULL,
    validators integer NOT NULL,
    total_power bigint NOT NULL,
    updated_height bigint NOT NULL
);

-- The members of each epoch.
CREATE TABLE validators (
    epoch bigint NOT NULL,
    consensus_key text NOT NULL,
    -- its account's identity (its first consensus key), the same across
    -- key rotations
    identity text NOT NULL,
    name text NOT NULL,
    peer_id text NOT NULL,
    address text NOT NULL,
    power bigint NOT NULL,
    PRIMARY KEY (epoch, consensus_key)
);

-- Every proposed change of the validator set. Open: adopted_height is null
-- and expires_at is above the height.
CREATE TABLE validator_proposals (
    -- the hash of the proposing transaction
    id text PRIMARY KEY,
    -- add, remove, set_power, rotate_key
    change text NOT NULL,
    -- the change's fields, as the feed's events show them
    details jsonb NOT NULL,
    -- identities
    proposer text NOT NULL,
    proposed_height bigint NOT NULL,
    expires_at bigint NOT NULL,
    approvals text[] NOT NULL,
    -- the block that adopted it, and the approval that did
    adopted_height bigint,
    adopted_by text,
    effective_from bigint,
    epoch bigint,
    updated_height bigint NOT NULL
) WITH (fillfactor = 70);

-- An amount in minor units as the chain's currency: scf_amount(123456)
-- is 1234.56 on a chain of two decimals.
CREATE FUNCTION scf_amount(minor numeric) RETURNS numeric
    LANGUAGE sql STABLE
    AS $$ SELECT round(minor / 10::numeric ^ currency_decimals, currency_decimals) FROM chain $$;
