// Generative seed 1303156252 (cdc; fresh-seed slice of 2026-12-03, session 3): rows inserted,
// and keys changed, before `ALTER TABLE … ADD COLUMN d0_text text DEFAULT 'dflt'` but applied by a
// segment that started after it (cdc stop, then start) reached the target with d0_text NULL: the
// segment's first batch gave the target the column and backfilled the rows already there, then
// inserted the older rows without it. Rows decoded from WAL older than the ALTER now take the
// source's missing value (pg_attribute.attmissingval), as the source's rows have it
// (src/sync/cdc/stream.ts, schemaFollow.ts missingValues; test/cdcEngine.test.ts has the engine case).
import { regressionTest } from '../suite';

regressionTest(undefined, {
  "seed": 1303156252,
  "mode": "cdc",
  "tables": [
    {
      "name": "t0",
      "keyShape": "int+text",
      "keyCollation": "de-DE-x-icu",
      "columns": [
        {
          "name": "c0_toast",
          "kind": "toast",
          "collation": "sv-SE-x-icu",
          "notNull": true
        },
        {
          "name": "c1_tsvector",
          "kind": "tsvector"
        },
        {
          "name": "c2_jsonb",
          "kind": "jsonb"
        },
        {
          "name": "c3_domain",
          "kind": "domain"
        },
        {
          "name": "c4_int",
          "kind": "int[]"
        },
        {
          "name": "c5_int",
          "kind": "int"
        }
      ],
      "keyFirst": true,
      "layout": "plain",
      "enumLabels": [
        "red"
      ]
    }
  ],
  "initialRows": [
    292
  ],
  "rounds": [
    {
      "txns": [
        {
          "table": 0,
          "ops": [
            {
              "op": "delete",
              "rows": 1
            }
          ]
        },
        {
          "table": 0,
          "ops": [
            {
              "op": "update",
              "rows": 27,
              "keyChange": true,
              "touchToast": true
            },
            {
              "op": "drop-column",
              "name": "c1_tsvector"
            },
            {
              "op": "delete",
              "rows": 8
            }
          ]
        }
      ],
      "event": "stream",
      "faultAfterMs": 396
    },
    {
      "txns": [
        {
          "table": 0,
          "ops": [
            {
              "op": "delete",
              "rows": 19
            },
            {
              "op": "insert",
              "rows": 103
            },
            {
              "op": "hot",
              "rows": 4,
              "times": 28
            },
            {
              "op": "update",
              "rows": 134,
              "keyChange": false,
              "touchToast": true
            }
          ]
        },
        {
          "table": 0,
          "ops": [
            {
              "op": "insert",
              "rows": 6
            },
            {
              "op": "insert",
              "rows": 2
            },
            {
              "op": "delete",
              "rows": 91
            },
            {
              "op": "add-column",
              "column": {
                "name": "d0_text",
                "kind": "text",
                "default": "'dflt'"
              }
            }
          ]
        }
      ],
      "event": "stop-start",
      "faultAfterMs": 453
    }
  ],
  "databases": {
    "source": "default",
    "target": "default"
  },
  "batchRows": 5000,
  "tamper": {
    "update": 2,
    "delete": 2,
    "insert": 1
  },
  "precreateTarget": false
});
