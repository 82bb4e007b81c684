-- One GET /api/v1/tasks/{id} as the ORM sends it (bench/read): the caller's secret with its
-- owner, user and agent, then the task, the caller's own. Parameters come from bench_keys.
\set n random(1, :owners)
SELECT s.*, o.*, u.*, a.*, o2.* FROM bench_apisecret s LEFT OUTER JOIN bench_owner o ON (s.owner_id = o.id) LEFT OUTER JOIN bench_user u ON (o.user_id = u.id) LEFT OUTER JOIN bench_agent a ON (s.agent_id = a.id) LEFT OUTER JOIN bench_owner o2 ON (a.operator_id = o2.id) WHERE (s.revoked_at IS NULL AND s.secret_hash = (SELECT secret_hash FROM bench_keys WHERE n = :n)) ORDER BY s.id ASC LIMIT 1;
SELECT * FROM bench_task WHERE (caller_owner_id = (SELECT owner_id FROM bench_keys WHERE n = :n) AND id = (SELECT task_id FROM bench_keys WHERE n = :n)) ORDER BY id ASC LIMIT 1;
