// Shrunk by the generative suite from seed 538096705 (cdc); it failed with: loss:lost.
// round 1 (join): p1: lost: ["1", "b#1"]
// Not a product loss: p1's copy (69,486 rows in chunks of 50) outlasted the harness's 20 s
// convergence window. The harness now judges a pipeline once `cdc status` no longer says snapshot
// (runCase.ts, copied()); this case passes in about 80 s and stays as the regression of that.
import { regressionTest } from '../suite';

regressionTest(undefined, {
  "seed": 538096705,
  "mode": "cdc",
  "tables": [
    {
      "name": "t0",
      "keyShape": "text",
      "keyCollation": "C",
      "columns": [
        {
          "name": "c0_tsvector",
          "kind": "tsvector"
        },
        {
          "name": "c1_domain",
          "kind": "domain"
        },
        {
          "name": "c2_text",
          "kind": "text"
        },
        {
          "name": "c3_int",
          "kind": "int"
        },
        {
          "name": "c4_toast",
          "kind": "toast",
          "collation": "sv-SE-x-icu"
        }
      ],
      "keyFirst": false,
      "layout": "plain",
      "enumLabels": [
        "red",
        "green"
      ]
    },
    {
      "name": "t1",
      "keyShape": "int+text",
      "keyCollation": "default",
      "columns": [
        {
          "name": "c0_bytea",
          "kind": "bytea"
        },
        {
          "name": "c1_domain",
          "kind": "domain"
        },
        {
          "name": "c2_enum",
          "kind": "enum"
        }
      ],
      "keyFirst": false,
      "layout": "plain",
      "enumLabels": [
        "red",
        "green",
        "blue"
      ]
    }
  ],
  "initialRows": [
    293,
    69486
  ],
  "rounds": [
    {
      "txns": [
        {
          "table": 1,
          "ops": [
            {
              "op": "update",
              "rows": 39,
              "keyChange": false,
              "touchToast": false
            },
            {
              "op": "insert",
              "rows": 3
            }
          ]
        },
        {
          "table": 1,
          "ops": [
            {
              "op": "delete",
              "rows": 1
            },
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
              "op": "delete",
              "rows": 82
            }
          ]
        }
      ],
      "event": "join",
      "faultAfterMs": 1341
    }
  ],
  "databases": {
    "source": "default",
    "target": "default"
  },
  "batchRows": 50,
  "tamper": {
    "update": 0,
    "delete": 2,
    "insert": 0
  },
  "precreateTarget": false
});
