// Shrunk by the generative suite from seed 48 (cdc); it failed with: loss:differs.
// round 1 (stop-start): p0: differs: ["63", " Ω#63"]: c5_toast: source "##8Ne>]]Dr[iCn0kaL(MPdz@B!=zEQ{42*lEz?./"… (7897 chars) target null
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
    62
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
        }
      ],
      "event": "stop-start",
      "faultAfterMs": 1207
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
