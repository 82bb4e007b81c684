-- One task from submit to completed, statement by statement as City sends them (bench/ceiling),
-- its callers' principals kept (a web process on Redis keeps those of the secrets it has seen,
-- so a request sends no key lookup): the submit of bench/sql/submit.sql (a direct hire) but its
-- key lookup, then as the agent provisionSandbox, markExecuting and complete, then the quality
-- check's job (the task read, then locked with its hold and the four accounts of the capture:
-- the hold's release, the charge, the agent's payout, the fee) and the sandbox's cleanup after
-- it. Every write City makes is here, each in the transaction City makes it in; what only Python
-- does (the evaluation, the stream's publish, the job's enqueue) is not. Parameters come from
-- bench_keys.
\set n random(1, :owners)
\set r random(1, 1000000000000000000)
\set shard random(0, :fee_shards - 1)
-- POST /api/v1/tasks (the owner)
BEGIN;
SELECT f.*, a.* FROM bench_agentoffer f INNER JOIN bench_agent a ON (f.agent_id = a.id) WHERE (f.agent_id = (SELECT agent_id FROM bench_keys WHERE n = :n) AND f.task_type = 'code_review' AND a.status = 'active') LIMIT 21;
SELECT * FROM bench_account WHERE (owner_id = (SELECT owner_id FROM bench_keys WHERE n = :n) AND kind IN ('pool', 'escrow')) ORDER BY id ASC FOR UPDATE;
INSERT INTO bench_transaction (kind, reference, subject, memo, created_at) VALUES ('hold', 'task:' || (:client_id || '-' || :r) || ':hold', :client_id || '-' || :r, '', now()) RETURNING id;
INSERT INTO bench_entry (transaction_id, account_id, amount, kind, subject, balance_after, created_at) SELECT * FROM UNNEST(ARRAY[lastval(), lastval()]::bigint[], ARRAY[(SELECT pool_id FROM bench_keys WHERE n = :n), (SELECT escrow_id FROM bench_keys WHERE n = :n)]::bigint[], ARRAY[-500, 500]::bigint[], ARRAY['hold', 'hold']::varchar[], ARRAY['s', 's']::varchar[], ARRAY[999999000, 1000]::bigint[], ARRAY[now(), now()]::timestamptz[]);
UPDATE bench_account SET balance = (CASE WHEN kind = 'pool' THEN balance - 500 WHEN kind = 'escrow' THEN balance + 500 ELSE NULL END)::bigint WHERE id IN ((SELECT pool_id FROM bench_keys WHERE n = :n), (SELECT escrow_id FROM bench_keys WHERE n = :n));
INSERT INTO bench_hold (reference, subject, payer_id, escrow_id, amount, status, payee_id, charged, fee, refunded, created_at, settled_at) VALUES ('task:' || (:client_id || '-' || :r), :client_id || '-' || :r, (SELECT pool_id FROM bench_keys WHERE n = :n), (SELECT escrow_id FROM bench_keys WHERE n = :n), 500, 'open', NULL, 0, 0, 0, now(), NULL) RETURNING id AS hold_id \gset
INSERT INTO bench_task (id, task_type, status, input, output, max_budget, price, caller_owner_id, caller_agent_id, agent_id, direct_hire, routing_since, route_attempts, next_route_at, excluded_agent_ids, execution_timeout, parent_id, hold_id, sandbox_id, credits_held, credits_charged, credits_refunded, quality_score, quality_reasons, self_reported_quality_score, execution_time_ms, failure_reason, error_message, feedback, feedback_at, created_at, updated_at, assigned_at, started_at, completed_at, finished_at) VALUES ((:client_id || '-' || :r), 'code_review', 'submitted', '{"description": "Review this snippet", "code": "x = 1"}', NULL, 500, 100, (SELECT owner_id FROM bench_keys WHERE n = :n), NULL, (SELECT agent_id FROM bench_keys WHERE n = :n), true, NULL, 0, NULL, '[]', NULL, NULL, lastval(), '', 500, NULL, 0, NULL, '[]', NULL, NULL, '', '', '', NULL, now(), now(), now(), NULL, NULL, NULL);
INSERT INTO bench_taskevent (task_id, type, from_status, to_status, actor, data, created_at) SELECT * FROM UNNEST(ARRAY[(:client_id || '-' || :r), (:client_id || '-' || :r)]::varchar[], ARRAY['submit', 'assign']::varchar[], ARRAY['', 'submitted']::varchar[], ARRAY['submitted', 'submitted']::varchar[], ARRAY['owner:o', 'owner:o']::varchar[], ARRAY['{"maxBudget": 500, "routing": "direct"}', '{"agentId": "a", "price": 100, "direct": true}']::jsonb[], ARRAY[now(), now()]::timestamptz[]);
COMMIT;
-- POST /api/v1/tasks/{id}/sandbox (the agent)
BEGIN;
SELECT * FROM bench_task WHERE ((caller_agent_id = (SELECT agent_id FROM bench_keys WHERE n = :n) OR agent_id = (SELECT agent_id FROM bench_keys WHERE n = :n)) AND id = (:client_id || '-' || :r)) FOR UPDATE;
SELECT * FROM bench_sandbox WHERE (status = 'live' AND task_id = (:client_id || '-' || :r));
INSERT INTO bench_sandbox (id, task_id, provider, external_id, status, created_at, destroyed_at) VALUES (('sbx-' || :client_id || '-' || :r), (:client_id || '-' || :r), 'local', '/srv/city/var/sandboxes/' || ('sbx-' || :client_id || '-' || :r), 'live', now(), NULL);
INSERT INTO bench_taskevent (task_id, type, from_status, to_status, actor, data, created_at) VALUES ((:client_id || '-' || :r), 'sandbox_provision', 'submitted', 'submitted', 'agent:' || (SELECT agent_id FROM bench_keys WHERE n = :n), '{"sandboxId": "sbx"}'::jsonb, now()) RETURNING id;
COMMIT;
-- POST /api/v1/tasks/{id}/executing
BEGIN;
SELECT * FROM bench_task WHERE ((caller_agent_id = (SELECT agent_id FROM bench_keys WHERE n = :n) OR agent_id = (SELECT agent_id FROM bench_keys WHERE n = :n)) AND id = (:client_id || '-' || :r)) FOR UPDATE;
SELECT * FROM bench_sandbox WHERE (status = 'live' AND task_id = (:client_id || '-' || :r));
SELECT * FROM bench_agent WHERE id = (SELECT agent_id FROM bench_keys WHERE n = :n) FOR UPDATE;
SELECT COUNT(*) FROM bench_task WHERE agent_id = (SELECT agent_id FROM bench_keys WHERE n = :n) AND status = 'executing';
UPDATE bench_task SET status = 'executing', output = NULL, price = 100, agent_id = (SELECT agent_id FROM bench_keys WHERE n = :n), routing_since = NULL, route_attempts = 0, next_route_at = NULL, excluded_agent_ids = '[]'::jsonb, execution_timeout = NULL, sandbox_id = ('sbx-' || :client_id || '-' || :r), credits_held = 500, credits_charged = NULL, credits_refunded = 0, quality_score = NULL, quality_reasons = '[]'::jsonb, self_reported_quality_score = NULL, execution_time_ms = NULL, failure_reason = '', error_message = '', feedback = '', feedback_at = NULL, updated_at = now(), assigned_at = now(), started_at = now(), completed_at = NULL, finished_at = NULL WHERE id = (:client_id || '-' || :r);
INSERT INTO bench_taskevent (task_id, type, from_status, to_status, actor, data, created_at) VALUES ((:client_id || '-' || :r), 'start', 'submitted', 'executing', 'agent:' || (SELECT agent_id FROM bench_keys WHERE n = :n), '{"sandboxId": "sbx"}'::jsonb, now()) RETURNING id;
COMMIT;
-- POST /api/v1/tasks/{id}/complete
BEGIN;
SELECT * FROM bench_task WHERE ((caller_agent_id = (SELECT agent_id FROM bench_keys WHERE n = :n) OR agent_id = (SELECT agent_id FROM bench_keys WHERE n = :n)) AND id = (:client_id || '-' || :r)) FOR UPDATE;
UPDATE bench_task SET status = 'quality_check', output = '{"summary": "One finding: x is assigned but never used.", "findings": [{"line": 1, "severity": "low", "message": "unused name x"}]}'::jsonb, price = 100, agent_id = (SELECT agent_id FROM bench_keys WHERE n = :n), routing_since = NULL, route_attempts = 0, next_route_at = NULL, excluded_agent_ids = '[]'::jsonb, execution_timeout = NULL, sandbox_id = ('sbx-' || :client_id || '-' || :r), credits_held = 500, credits_charged = NULL, credits_refunded = 0, quality_score = NULL, quality_reasons = '[]'::jsonb, self_reported_quality_score = NULL, execution_time_ms = 5, failure_reason = '', error_message = '', feedback = '', feedback_at = NULL, updated_at = now(), assigned_at = now(), started_at = now(), completed_at = NULL, finished_at = NULL WHERE id = (:client_id || '-' || :r);
INSERT INTO bench_taskevent (task_id, type, from_status, to_status, actor, data, created_at) VALUES ((:client_id || '-' || :r), 'complete', 'executing', 'quality_check', 'agent:' || (SELECT agent_id FROM bench_keys WHERE n = :n), '{"executionTimeMs": 5, "qualityScore": null}'::jsonb, now()) RETURNING id;
COMMIT;
-- the quality check's job: the capture (credits.services.hold_capture) and the task completed
SELECT * FROM bench_task WHERE id = (:client_id || '-' || :r);
BEGIN;
SELECT * FROM bench_task WHERE id = (:client_id || '-' || :r) FOR UPDATE;
SELECT * FROM bench_hold WHERE id = :hold_id FOR UPDATE;
SELECT * FROM bench_account WHERE (id IN ((SELECT pool_id FROM bench_keys WHERE n = :n), (SELECT escrow_id FROM bench_keys WHERE n = :n)) OR (agent_id = (SELECT agent_id FROM bench_keys WHERE n = :n) AND kind = 'earnings') OR (agent_id IS NULL AND kind = 'fees' AND owner_id IS NULL AND shard = :shard)) ORDER BY id ASC FOR UPDATE;
INSERT INTO bench_transaction (kind, reference, subject, memo, created_at) VALUES ('capture', 'task:' || (:client_id || '-' || :r) || ':capture', (:client_id || '-' || :r), '', now()) RETURNING id;
INSERT INTO bench_entry (transaction_id, account_id, amount, kind, subject, balance_after, created_at) SELECT * FROM UNNEST(ARRAY[lastval(), lastval(), lastval(), lastval(), lastval()]::bigint[], ARRAY[(SELECT escrow_id FROM bench_keys WHERE n = :n), (SELECT pool_id FROM bench_keys WHERE n = :n), (SELECT pool_id FROM bench_keys WHERE n = :n), (SELECT earnings_id FROM bench_keys WHERE n = :n), (SELECT id FROM bench_account WHERE kind = 'fees' AND owner_id IS NULL AND agent_id IS NULL AND shard = :shard)]::bigint[], ARRAY[-500, 500, -100, 90, 10]::bigint[], ARRAY['release', 'release', 'charge', 'payout', 'fee']::varchar[], ARRAY[(:client_id || '-' || :r), (:client_id || '-' || :r), (:client_id || '-' || :r), (:client_id || '-' || :r), (:client_id || '-' || :r)]::varchar[], ARRAY[1000, 999999000, 999998900, 90, 10]::bigint[], ARRAY[now(), now(), now(), now(), now()]::timestamptz[]);
UPDATE bench_account SET balance = (CASE WHEN kind = 'escrow' THEN balance - 500 WHEN kind = 'pool' THEN balance + 400 WHEN kind = 'earnings' THEN balance + 90 WHEN kind = 'fees' THEN balance + 10 ELSE NULL END)::bigint WHERE id IN ((SELECT escrow_id FROM bench_keys WHERE n = :n), (SELECT pool_id FROM bench_keys WHERE n = :n), (SELECT earnings_id FROM bench_keys WHERE n = :n), (SELECT id FROM bench_account WHERE kind = 'fees' AND owner_id IS NULL AND agent_id IS NULL AND shard = :shard));
UPDATE bench_hold SET status = 'captured', payee_id = (SELECT earnings_id FROM bench_keys WHERE n = :n), fee_account_id = (SELECT id FROM bench_account WHERE kind = 'fees' AND owner_id IS NULL AND agent_id IS NULL AND shard = :shard), charged = 100, fee = 10, settled_at = now() WHERE id = :hold_id;
UPDATE bench_task SET status = 'completed', output = '{"summary": "One finding: x is assigned but never used.", "findings": [{"line": 1, "severity": "low", "message": "unused name x"}]}'::jsonb, price = 100, agent_id = (SELECT agent_id FROM bench_keys WHERE n = :n), routing_since = NULL, route_attempts = 0, next_route_at = NULL, excluded_agent_ids = '[]'::jsonb, execution_timeout = NULL, sandbox_id = ('sbx-' || :client_id || '-' || :r), credits_held = 0, credits_charged = 100, credits_refunded = 0, quality_score = 66, quality_reasons = '["2 substantive fields (+74)", "59 characters of text (+2)", "code_review: 1 finding, each with a line and a message (+10)", "code_review: 1 line found in the code reviewed (+0)", "execution time 5 ms is implausibly short for a code_review (under 100 ms) (-20)"]'::jsonb, self_reported_quality_score = NULL, execution_time_ms = 5, failure_reason = '', error_message = '', feedback = '', feedback_at = NULL, updated_at = now(), assigned_at = now(), started_at = now(), completed_at = now(), finished_at = now() WHERE id = (:client_id || '-' || :r);
INSERT INTO bench_taskevent (task_id, type, from_status, to_status, actor, data, created_at) VALUES ((:client_id || '-' || :r), 'pass', 'quality_check', 'completed', 'system', '{"score": 66, "passScore": 60, "reasons": ["2 substantive fields (+74)", "59 characters of text (+2)", "code_review: 1 finding, each with a line and a message (+10)", "code_review: 1 line found in the code reviewed (+0)", "execution time 5 ms is implausibly short for a code_review (under 100 ms) (-20)"]}'::jsonb, now()) RETURNING id;
COMMIT;
-- the sandbox's cleanup, after the job's commit
BEGIN;
SELECT * FROM bench_sandbox WHERE (status = 'live' AND task_id = (:client_id || '-' || :r)) FOR UPDATE;
UPDATE bench_sandbox SET status = 'destroyed', destroyed_at = now() WHERE id = ('sbx-' || :client_id || '-' || :r);
COMMIT;
