-- The tables pgbench's scripts run on: City's hot paths' shapes (bench/api_ceiling.py).
DROP TABLE IF EXISTS bench_entry, bench_event, bench_task, bench_hold, bench_account, bench_secret,
    bench_offer, bench_agent;
CREATE TABLE bench_secret (id serial PRIMARY KEY, secret_hash varchar(64) UNIQUE NOT NULL,
    owner_id int NOT NULL, last_used_at timestamptz);
CREATE TABLE bench_agent (id serial PRIMARY KEY, name varchar(200) NOT NULL,
    status varchar(16) NOT NULL, max_concurrent int NOT NULL);
CREATE TABLE bench_offer (id serial PRIMARY KEY, agent_id int NOT NULL, task_type varchar(64) NOT NULL,
    price bigint NOT NULL, UNIQUE (agent_id, task_type));
CREATE TABLE bench_account (id serial PRIMARY KEY, owner_id int NOT NULL, kind varchar(16) NOT NULL,
    balance bigint NOT NULL);
CREATE INDEX ON bench_account (owner_id, kind);
CREATE TABLE bench_hold (id bigserial PRIMARY KEY, reference varchar(128) UNIQUE NOT NULL,
    payer_id int NOT NULL, amount bigint NOT NULL, status varchar(16) NOT NULL,
    created_at timestamptz NOT NULL);
CREATE TABLE bench_task (id varchar(32) PRIMARY KEY, task_type varchar(64) NOT NULL,
    status varchar(16) NOT NULL, input jsonb NOT NULL, max_budget bigint NOT NULL,
    owner_id int NOT NULL, agent_id int, hold_id bigint NOT NULL, created_at timestamptz NOT NULL);
CREATE INDEX ON bench_task (owner_id, created_at);
CREATE TABLE bench_entry (id bigserial PRIMARY KEY, account_id int NOT NULL, amount bigint NOT NULL,
    kind varchar(16) NOT NULL, subject varchar(64) NOT NULL, created_at timestamptz NOT NULL);
CREATE INDEX ON bench_entry (account_id, id);
CREATE TABLE bench_event (id bigserial PRIMARY KEY, task_id varchar(32) NOT NULL,
    type varchar(32) NOT NULL, data jsonb NOT NULL, created_at timestamptz NOT NULL);
CREATE INDEX ON bench_event (task_id, id);
INSERT INTO bench_secret (secret_hash, owner_id)
    SELECT md5(i::text) || md5((i + 1)::text), i FROM generate_series(1, :owners) i;
INSERT INTO bench_agent (name, status, max_concurrent)
    SELECT 'agent ' || i, 'active', 1000000000 FROM generate_series(1, 8) i;
INSERT INTO bench_offer (agent_id, task_type, price) SELECT id, 'code_review', 100 FROM bench_agent;
INSERT INTO bench_account (owner_id, kind, balance)
    SELECT i, k, 1000000000000 FROM generate_series(1, :owners) i, (VALUES ('pool'), ('escrow')) v(k);
INSERT INTO bench_hold (reference, payer_id, amount, status, created_at)
    VALUES ('seed', 1, 0, 'open', now());
INSERT INTO bench_task (id, task_type, status, input, max_budget, owner_id, agent_id, hold_id, created_at)
    SELECT 'seed' || i, 'code_review', 'submitted', '{"description": "Review this"}', 500, i, 1, 1, now()
    FROM generate_series(1, :owners) i;
VACUUM ANALYZE;
