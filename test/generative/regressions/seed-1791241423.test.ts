// Generative seed 1791241423 (cdc; fresh-seed slice of 2026-12-03): `cdc start --pipeline p1` right
// after the harness's pg_terminate_backend fault failed its pre-start check: "testConnection(p1)
// failed: terminating connection due to administrator command; SQLSTATE 57P01
// [LakebaseTransientError]". The check activity ran with maximumAttempts 1, so a transient error
// (a pooled connection the server had just ended) failed the whole start. The check now retries
// transient failures (src/workflows/activityCalls.ts testConnection). A race: the case passed alone
// before the change too, so this file keeps the shape, not a proof.
import { regressionTest } from '../suite';

regressionTest(undefined, {
  "seed": 1791241423,
  "mode": "cdc",
  "tables": [
    {
      "name": "t0",
      "keyShape": "int",
      "keyCollation": "de-DE-x-icu",
      "columns": [
        {
          "name": "c0_tsvector",
          "kind": "tsvector"
        },
        {
          "name": "c1_bigint",
          "kind": "bigint"
        },
        {
          "name": "c2_toast",
          "kind": "toast",
          "collation": "de-DE-x-icu"
        }
      ],
      "keyFirst": true,
      "layout": "partitioned",
      "enumLabels": [
        "red",
        "green"
      ]
    },
    {
      "name": "t1",
      "keyShape": "int+text",
      "keyCollation": "de-DE-x-icu",
      "columns": [
        {
          "name": "c0_text",
          "kind": "text[]"
        },
        {
          "name": "c1_tsvector",
          "kind": "tsvector"
        },
        {
          "name": "c2_bytea",
          "kind": "bytea"
        },
        {
          "name": "c3_int",
          "kind": "int"
        },
        {
          "name": "c4_numeric",
          "kind": "numeric"
        },
        {
          "name": "c5_toast",
          "kind": "toast",
          "collation": "sv-SE-x-icu",
          "notNull": true
        }
      ],
      "keyFirst": false,
      "layout": "partitioned",
      "enumLabels": [
        "red",
        "green",
        "blue"
      ]
    }
  ],
  "initialRows": [
    243,
    132
  ],
  "rounds": [
    {
      "txns": [
        {
          "table": 0,
          "ops": [
            {
              "op": "insert",
              "rows": 1
            },
            {
              "op": "update",
              "rows": 2,
              "keyChange": false,
              "touchToast": false
            },
            {
              "op": "hot",
              "rows": 3,
              "times": 25
            }
          ]
        },
        {
          "table": 0,
          "ops": [
            {
              "op": "insert",
              "rows": 11
            }
          ]
        },
        {
          "table": 1,
          "ops": [
            {
              "op": "truncate"
            },
            {
              "op": "truncate"
            }
          ]
        }
      ],
      "event": "join",
      "fault": "terminate-backends",
      "faultAfterMs": 922
    }
  ],
  "databases": {
    "source": "default",
    "target": "default"
  },
  "batchRows": 5000,
  "tamper": {
    "update": 1,
    "delete": 2,
    "insert": 0
  },
  "precreateTarget": false
});
