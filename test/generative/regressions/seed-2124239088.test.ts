// Generative seed 2124239088 (cdc; fresh-seed slice of 2026-12-03, session 3, found by the slice right
// after the idle schema check landed): one source transaction dropped a column, added d0_int DEFAULT 5
// and inserted 123 rows with their own d0_int. The idle check had evolved the target (to the columns
// of before that transaction) before any change of the table came, so the first relation message the
// reader saw was taken as its baseline, not as a change: the rows were written without d0_int, and
// the next idle check added the column and backfilled 5 into them. The first shape a reader sees now
// evolves the target when it was already evolved (src/sync/cdc/stream.ts, the relation message;
// test/cdcEngine.test.ts has the engine case).
import { regressionTest } from '../suite';

regressionTest(undefined, {
  "seed": 2124239088,
  "mode": "cdc",
  "tables": [
    {
      "name": "t0",
      "keyShape": "text",
      "keyCollation": "en-US-x-icu",
      "columns": [
        {
          "name": "c0_jsonb",
          "kind": "jsonb"
        },
        {
          "name": "c1_timestamptz",
          "kind": "timestamptz"
        },
        {
          "name": "c2_int",
          "kind": "int[]"
        },
        {
          "name": "c3_text",
          "kind": "text[]"
        },
        {
          "name": "c4_enum",
          "kind": "enum"
        },
        {
          "name": "c5_toast",
          "kind": "toast",
          "notNull": true
        }
      ],
      "keyFirst": false,
      "layout": "plain",
      "enumLabels": [
        "red",
        "green",
        "blue"
      ]
    },
    {
      "name": "t1",
      "keyShape": "int+text",
      "keyCollation": "en-US-x-icu",
      "columns": [
        {
          "name": "c0_text",
          "kind": "text",
          "collation": "sv-SE-x-icu"
        },
        {
          "name": "c1_bool",
          "kind": "bool"
        },
        {
          "name": "c2_tsvector",
          "kind": "tsvector"
        },
        {
          "name": "c3_text",
          "kind": "text[]"
        }
      ],
      "keyFirst": true,
      "layout": "partitioned",
      "enumLabels": [
        "red",
        "green",
        "blue"
      ]
    }
  ],
  "initialRows": [
    230,
    86
  ],
  "rounds": [
    {
      "txns": [
        {
          "table": 1,
          "ops": [
            {
              "op": "insert",
              "rows": 2
            }
          ]
        },
        {
          "table": 1,
          "ops": [
            {
              "op": "update",
              "rows": 33,
              "keyChange": false,
              "touchToast": false
            }
          ]
        },
        {
          "table": 0,
          "ops": [
            {
              "op": "drop-column",
              "name": "c0_jsonb"
            },
            {
              "op": "add-column",
              "column": {
                "name": "d0_int",
                "kind": "int",
                "default": "5"
              }
            },
            {
              "op": "hot",
              "rows": 1,
              "times": 21
            },
            {
              "op": "insert",
              "rows": 123
            }
          ]
        }
      ],
      "event": "join",
      "faultAfterMs": 826
    },
    {
      "txns": [
        {
          "table": 1,
          "ops": [
            {
              "op": "update",
              "rows": 19,
              "keyChange": false,
              "touchToast": false
            },
            {
              "op": "insert",
              "rows": 1
            },
            {
              "op": "update",
              "rows": 5,
              "keyChange": true,
              "touchToast": false
            }
          ]
        },
        {
          "table": 1,
          "ops": [
            {
              "op": "update",
              "rows": 3,
              "keyChange": false,
              "touchToast": false
            },
            {
              "op": "update",
              "rows": 136,
              "keyChange": true,
              "touchToast": false
            }
          ]
        }
      ],
      "event": "stop-start",
      "faultAfterMs": 416
    },
    {
      "txns": [
        {
          "table": 1,
          "ops": [
            {
              "op": "update",
              "rows": 101,
              "keyChange": false,
              "touchToast": false
            }
          ]
        }
      ],
      "event": "stream",
      "fault": "temporal-restart",
      "faultAfterMs": 1400
    }
  ],
  "databases": {
    "source": "default",
    "target": "default"
  },
  "batchRows": 200,
  "tamper": {
    "update": 1,
    "delete": 0,
    "insert": 0
  },
  "precreateTarget": false
});
