-- Warm-up after a restart (etc/conf.d/upgrade.ini, step upgrade_warmup):
-- read the hot data once so that the first clients find it in the buffer
-- pool. Statements are separated by ';'; results are read and discarded.
-- Replace these examples with your own hot tables and indexes.
--
-- MariaDB 10.x / MySQL 5.7+ can also reload the pool dumped at shutdown
-- (innodb_buffer_pool_dump_at_shutdown / _load_at_startup); then this file
-- may only need the tables that dump misses.

SELECT COUNT(*) FROM mysql.user;
-- SELECT COUNT(*) FROM shop.orders FORCE INDEX (PRIMARY);
-- SELECT COUNT(*) FROM shop.customers FORCE INDEX (idx_email);
