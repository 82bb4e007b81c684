-- One submit (a direct hire) as the ORM sends it: key lookup, the agent and its offer, lock the accounts, hold + two ledger rows,
-- balances, the task, its two events, commit (bench/submit).
\set owner random(1, :owners)
\set n random(1, 2000000000)
\set agent random(1, 8)
SELECT id, owner_id FROM bench_secret WHERE secret_hash = md5(:owner::text) || md5((:owner + 1)::text);
BEGIN;
SELECT o.id, o.price, a.id, a.name, a.status, a.max_concurrent FROM bench_offer o JOIN bench_agent a ON o.agent_id = a.id WHERE o.agent_id = :agent AND o.task_type = 'code_review' AND a.status = 'active';
SELECT id, kind, balance FROM bench_account WHERE owner_id = :owner AND kind IN ('pool', 'escrow') ORDER BY id FOR UPDATE;
INSERT INTO bench_hold (reference, payer_id, amount, status, created_at) VALUES ('task:' || :client_id || '-' || :n || '-' || txid_current(), :owner, 500, 'open', now()) RETURNING id;
INSERT INTO bench_entry (account_id, amount, kind, subject, created_at) SELECT * FROM UNNEST(ARRAY[:owner * 2 - 1, :owner * 2], ARRAY[-500, 500]::bigint[], ARRAY['hold', 'hold'], ARRAY['t', 't'], ARRAY[now(), now()]);
UPDATE bench_account SET balance = CASE WHEN kind = 'pool' THEN balance - 500 ELSE balance + 500 END WHERE owner_id = :owner AND kind IN ('pool', 'escrow');
INSERT INTO bench_task (id, task_type, status, input, max_budget, owner_id, agent_id, hold_id, created_at) VALUES (:client_id || '-' || :n || '-' || txid_current(), 'code_review', 'submitted', '{"description": "Review this snippet", "code": "x = 1"}', 500, :owner, :agent, currval('bench_hold_id_seq'), now());
INSERT INTO bench_event (task_id, type, data, created_at) SELECT * FROM UNNEST(ARRAY['t', 't'], ARRAY['submit', 'assign'], ARRAY['{}', '{}']::jsonb[], ARRAY[now(), now()]);
COMMIT;
