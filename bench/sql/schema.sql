-- The tables pgbench's scripts run on: copies of City's own (LIKE ... INCLUDING ALL: the same
-- columns, types, defaults, constraints but foreign keys, and indexes), filled with the rows the
-- run seeded through City's services, so that a statement here is the one the ORM sends there.
DROP TABLE IF EXISTS bench_apisecret, bench_owner, bench_user, bench_agent, bench_agentoffer,
    bench_account, bench_transaction, bench_entry, bench_hold, bench_task, bench_taskevent,
    bench_sandbox, bench_keys;
CREATE TABLE bench_apisecret (LIKE identity_apisecret INCLUDING ALL);
CREATE TABLE bench_owner (LIKE identity_owner INCLUDING ALL);
CREATE TABLE bench_user (LIKE auth_user INCLUDING ALL);
CREATE TABLE bench_agent (LIKE identity_agent INCLUDING ALL);
CREATE TABLE bench_agentoffer (LIKE identity_agentoffer INCLUDING ALL);
CREATE TABLE bench_account (LIKE credits_account INCLUDING ALL);
CREATE TABLE bench_transaction (LIKE credits_transaction INCLUDING ALL);
CREATE TABLE bench_entry (LIKE credits_entry INCLUDING ALL);
CREATE TABLE bench_hold (LIKE credits_hold INCLUDING ALL);
CREATE TABLE bench_task (LIKE tasks_task INCLUDING ALL);
CREATE TABLE bench_taskevent (LIKE tasks_taskevent INCLUDING ALL);
CREATE TABLE bench_sandbox (LIKE tasks_sandbox INCLUDING ALL);
INSERT INTO bench_apisecret SELECT * FROM identity_apisecret;
INSERT INTO bench_owner SELECT * FROM identity_owner;
INSERT INTO bench_user SELECT * FROM auth_user;
INSERT INTO bench_agent SELECT * FROM identity_agent;
INSERT INTO bench_agentoffer SELECT * FROM identity_agentoffer;
INSERT INTO bench_account SELECT * FROM credits_account;
INSERT INTO bench_task SELECT * FROM tasks_task;
-- New rows take ids after the copied ones.
SELECT setval(pg_get_serial_sequence('bench_hold', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM credits_hold));
SELECT setval(pg_get_serial_sequence('bench_transaction', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM credits_transaction));
-- The run's owners, numbered 1..N as pgbench picks them: each one's secret, task and accounts,
-- and the agent it hires with its earnings account.
CREATE TABLE bench_keys (n int PRIMARY KEY, secret_hash varchar(64) NOT NULL,
    owner_id varchar(32) NOT NULL, task_id varchar(32) NOT NULL, pool_id int NOT NULL,
    escrow_id int NOT NULL, agent_id varchar(32) NOT NULL, earnings_id int NOT NULL);
VACUUM ANALYZE;
