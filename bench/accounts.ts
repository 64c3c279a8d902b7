// The pgbench-style table the cdc benches stream (cdc-bench.ts, cdc-worker.ts).
export const ACCOUNTS_DDL = `CREATE TABLE accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84))`;
