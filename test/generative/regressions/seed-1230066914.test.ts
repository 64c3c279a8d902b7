// Generative seed 1230066914 (cdc; --mode cdc slice of 2026-12-03, session 3, right after stream
// segments became an hour long): `ALTER TABLE … ADD COLUMN d2_enum` as the last thing done to t0.
// DDL reaches a stream only with the table's next change; none came, and the reader (no longer
// restarted every 30 s, whose first batch evolved every target) never gave p0's target the column.
// An idle reader now compares each source table's columns every few seconds and evolves the target
// (src/sync/cdc/stream.ts followIdleSchema; test/cdcEngine.test.ts has the engine case).
import { regressionTest } from '../suite';

regressionTest(undefined, {
  "seed": 1230066914,
  "mode": "cdc",
  "tables": [
    {
      "name": "t0",
      "keyShape": "int",
      "keyCollation": "C",
      "columns": [
        {
          "name": "c0_text",
          "kind": "text",
          "collation": "C"
        },
        {
          "name": "c1_int",
          "kind": "int[]"
        },
        {
          "name": "c2_toast",
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
      "keyShape": "int",
      "keyCollation": "C",
      "columns": [
        {
          "name": "c0_bigint",
          "kind": "bigint"
        },
        {
          "name": "c1_date",
          "kind": "date"
        },
        {
          "name": "c2_text",
          "kind": "text[]"
        },
        {
          "name": "c3_numeric",
          "kind": "numeric"
        }
      ],
      "keyFirst": true,
      "layout": "plain",
      "enumLabels": [
        "red",
        "green"
      ]
    }
  ],
  "initialRows": [
    205,
    34926
  ],
  "rounds": [
    {
      "txns": [
        {
          "table": 0,
          "ops": [
            {
              "op": "insert",
              "rows": 21
            },
            {
              "op": "add-column",
              "column": {
                "name": "d0_bool",
                "kind": "bool"
              }
            },
            {
              "op": "delete",
              "rows": 1
            },
            {
              "op": "delete",
              "rows": 2
            }
          ]
        }
      ],
      "event": "stream",
      "fault": "pg-restart",
      "faultAfterMs": 1471
    },
    {
      "txns": [
        {
          "table": 0,
          "ops": [
            {
              "op": "update",
              "rows": 76,
              "keyChange": true,
              "touchToast": false
            }
          ]
        },
        {
          "table": 0,
          "ops": [
            {
              "op": "insert",
              "rows": 1
            },
            {
              "op": "insert",
              "rows": 18
            },
            {
              "op": "add-column",
              "column": {
                "name": "d1_enum",
                "kind": "enum"
              }
            }
          ]
        },
        {
          "table": 0,
          "ops": [
            {
              "op": "insert",
              "rows": 5
            },
            {
              "op": "drop-column",
              "name": "c1_int"
            },
            {
              "op": "update",
              "rows": 1,
              "keyChange": false,
              "touchToast": false
            }
          ]
        },
        {
          "table": 0,
          "ops": [
            {
              "op": "delete",
              "rows": 3
            }
          ]
        }
      ],
      "event": "stop-start",
      "faultAfterMs": 349
    },
    {
      "txns": [
        {
          "table": 0,
          "ops": [
            {
              "op": "delete",
              "rows": 3
            },
            {
              "op": "hot",
              "rows": 4,
              "times": 34
            },
            {
              "op": "hot",
              "rows": 4,
              "times": 33
            }
          ]
        },
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
              "rows": 3,
              "keyChange": false,
              "touchToast": true
            }
          ]
        },
        {
          "table": 0,
          "ops": [
            {
              "op": "add-column",
              "column": {
                "name": "d2_enum",
                "kind": "enum"
              }
            }
          ]
        }
      ],
      "event": "join",
      "fault": "worker-kill",
      "faultAfterMs": 571
    }
  ],
  "databases": {
    "source": "default",
    "target": "default"
  },
  "batchRows": 5000,
  "tamper": {
    "update": 1,
    "delete": 1,
    "insert": 0
  },
  "precreateTarget": false
});
