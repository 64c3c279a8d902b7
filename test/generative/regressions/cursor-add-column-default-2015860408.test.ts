// Shrunk by the generative suite from seed 2015860408 (upsert-cursor); it failed with: loss:differs.
// after the last sync: p0: differs: ["1", "éZ#1"]: d0_text: source "dflt" target null; d1_int: source "5" target null (not shrunk: found in the last minutes of the session)
import { regressionTest } from '../suite';

regressionTest('cursor-add-column-default', {
  "seed": 2015860408,
  "mode": "upsert-cursor",
  "tables": [
    {
      "name": "t0",
      "keyShape": "int+text",
      "keyCollation": "en-US-x-icu",
      "columns": [
        {
          "name": "c0_timestamptz",
          "kind": "timestamptz"
        },
        {
          "name": "c1_bytea",
          "kind": "bytea"
        },
        {
          "name": "c2_text",
          "kind": "text",
          "collation": "C"
        },
        {
          "name": "c3_int",
          "kind": "int[]"
        },
        {
          "name": "c4_numeric",
          "kind": "numeric"
        },
        {
          "name": "c5_int",
          "kind": "int"
        },
        {
          "name": "c6_toast",
          "kind": "toast",
          "collation": "sv-SE-x-icu",
          "notNull": true
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
    294
  ],
  "rounds": [
    {
      "txns": [
        {
          "table": 0,
          "ops": [
            {
              "op": "update",
              "rows": 3,
              "keyChange": false,
              "touchToast": true
            },
            {
              "op": "add-column",
              "column": {
                "name": "d0_text",
                "kind": "text",
                "default": "'dflt'"
              }
            },
            {
              "op": "update",
              "rows": 1,
              "keyChange": true,
              "touchToast": true
            },
            {
              "op": "add-column",
              "column": {
                "name": "d1_int",
                "kind": "int",
                "default": "5"
              }
            }
          ]
        }
      ],
      "event": "rerun",
      "faultAfterMs": 334
    }
  ],
  "databases": {
    "source": "default",
    "target": "default"
  },
  "batchRows": 5000,
  "tamper": {
    "update": 0,
    "delete": 2,
    "insert": 0
  },
  "precreateTarget": false
});
