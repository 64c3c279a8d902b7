// Shrunk by the generative suite from seed 48 (cdc); it failed with: loss:differs.
// round 1 (stop-start + terminate-backends): p0: differs: ["252", "E{x}#252"]: c5_toast: source "Ltq0s0gi7<IyY2BK0q>%+4jt;=|0s<nfdt{AW<Cp"… (3523 chars) target null
import { regressionTest } from '../suite';

regressionTest('cdc-toast-key-change', {
  "seed": 48,
  "mode": "cdc",
  "tables": [
    {
      "name": "t0",
      "keyShape": "int+text",
      "keyCollation": "en-US-x-icu",
      "columns": [
        {
          "name": "c0_int",
          "kind": "int[]"
        },
        {
          "name": "c1_text",
          "kind": "text",
          "collation": "de-DE-x-icu"
        },
        {
          "name": "c2_tsvector",
          "kind": "tsvector"
        },
        {
          "name": "c3_int",
          "kind": "int"
        },
        {
          "name": "c4_date",
          "kind": "date"
        },
        {
          "name": "c5_toast",
          "kind": "toast",
          "collation": "sv-SE-x-icu"
        },
        {
          "name": "c6_bigint",
          "kind": "bigint"
        }
      ],
      "keyFirst": true,
      "layout": "plain",
      "enumLabels": [
        "red",
        "green",
        "blue"
      ]
    }
  ],
  "initialRows": [
    251
  ],
  "rounds": [
    {
      "txns": [
        {
          "table": 0,
          "ops": [
            {
              "op": "update",
              "rows": 18,
              "keyChange": true,
              "touchToast": false
            }
          ]
        },
        {
          "table": 0,
          "ops": [
            {
              "op": "update",
              "rows": 14,
              "keyChange": false,
              "touchToast": false
            },
            {
              "op": "update",
              "rows": 1,
              "keyChange": false,
              "touchToast": true
            }
          ]
        }
      ],
      "event": "stop-start",
      "fault": "terminate-backends",
      "faultAfterMs": 1207
    },
    {
      "txns": [
        {
          "table": 0,
          "ops": [
            {
              "op": "update",
              "rows": 1,
              "keyChange": false,
              "touchToast": false
            },
            {
              "op": "update",
              "rows": 177,
              "keyChange": true,
              "touchToast": true
            },
            {
              "op": "truncate"
            }
          ]
        },
        {
          "table": 0,
          "ops": [
            {
              "op": "delete",
              "rows": 2
            },
            {
              "op": "truncate"
            },
            {
              "op": "drop-column",
              "name": "c4_date"
            }
          ]
        }
      ],
      "event": "stream",
      "faultAfterMs": 1133
    },
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
        }
      ],
      "event": "stream",
      "faultAfterMs": 823
    }
  ],
  "databases": {
    "source": "default",
    "target": "default"
  },
  "batchRows": 5000,
  "tamper": {
    "update": 0,
    "delete": 0,
    "insert": 1
  },
  "precreateTarget": false
});
