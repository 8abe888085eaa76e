-- Delivery at commit without the worker: this cluster does not preload
-- the library, so nothing would deliver, and queueing is refused with a
-- hint. Input is checked first (tests/delivery.rs has a worker).
SELECT erlang_send_on_commit(:'node', 'orders', '{"id": 1}');
SELECT erlang_cast_on_commit(:'node', 'regress_server', 'record', '[1]');
-- Bad input says what is wrong, worker or not.
SELECT erlang_send_on_commit(NULL, 'orders', '1');
SELECT erlang_send_on_commit(:'node', NULL, '1');
SELECT erlang_send_on_commit(:'node', 'orders', NULL);
SELECT erlang_send_on_commit(:'node', 'orders', '{"$atom": 1}');
SELECT erlang_send_on_commit(:'node', 'orders', '1', '');
SELECT erlang_send_on_commit(:'node', 'orders', '1', ack => NULL);
SELECT erlang_send_on_commit(:'node', '', '1');
SELECT erlang_cast_on_commit(:'node', 'm', 'f', '{"a": 1}');
SELECT erlang_cast_on_commit(:'node', 'm', 'f', NULL);
SELECT erlang_cast_on_commit('nosuchserver', 'm', 'f');
SELECT erlang_outbox_retry(NULL);
SELECT erlang_outbox_purge(NULL);
-- Nothing was queued; retrying or purging what is not there is harmless.
SELECT count(*) FROM erlang_outbox;
SELECT erlang_outbox_retry(1), erlang_outbox_purge('1 day');
-- A role without rights is refused before anything else; the queue itself
-- is not its to read or write, the view is.
CREATE ROLE outbox_nobody;
SET ROLE outbox_nobody;
SELECT erlang_send_on_commit('x', 'orders', '1');
SELECT erlang_outbox_retry(1);
SELECT * FROM erlang_outbox_queue;
INSERT INTO erlang_outbox_commits VALUES ('1', 1);
SELECT count(*) FROM erlang_outbox;
RESET ROLE;
DROP ROLE outbox_nobody;
