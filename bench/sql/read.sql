-- One read as the ORM sends it: key lookup, then the task row (bench/read).
\set owner random(1, :owners)
SELECT id, owner_id FROM bench_secret WHERE secret_hash = md5(:owner::text) || md5((:owner + 1)::text);
SELECT * FROM bench_task WHERE id = 'seed' || :owner AND owner_id = :owner;
