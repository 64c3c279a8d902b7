// Shrunk by the generative suite from seed 13 (cdc); it failed with: command:round 1 cdc stop.
// round 1 cdc stop: exit 1, expected 0
import { regressionTest } from '../suite';

regressionTest('cdc-stop-after-worker-kill', {
  "seed": 13,
  "mode": "cdc",
  "tables": [
    {
      "name": "t0",
      "keyShape": "int+text",
      "keyCollation": "default",
      "columns": [
        {
          "name": "c1_tsvector",
          "kind": "tsvector"
        }
      ],
      "keyFirst": true,
      "layout": "replica-full",
      "enumLabels": [
        "red",
        "green",
        "blue"
      ]
    }
  ],
  "initialRows": [
    149
  ],
  "rounds": [
    {
      "txns": [],
      "event": "stop-start",
      "fault": "worker-kill",
      "faultAfterMs": 10
    }
  ],
  "databases": {
    "source": "default",
    "target": "default"
  },
  "batchRows": 50,
  "tamper": {
    "update": 1,
    "delete": 1,
    "insert": 1
  },
  "precreateTarget": false
});
