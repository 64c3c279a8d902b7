#!/usr/bin/env node
'use strict';
// Runs the TypeScript sources directly through tsx: no build step between `npm ci` and use.
require('tsx/cjs');
require('../src/cli/main.ts');
