import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { confirmable, type CheckpointMember } from '../src/sync/cdc/checkpoint';

// The one rule for the LSN a slot's reader may confirm (src/sync/cdc/checkpoint.ts).

const member = (pipeline: string, more: Partial<CheckpointMember> = {}): CheckpointMember => ({
  pipeline, phase: 'streaming', startLsn: '0/100', appliedLsn: null, parked: false, stopped: false, ...more,
});

describe('cdc checkpoint: what a reader may confirm', () => {
  test('every target committed and nobody copying: the wanted position', () => {
    const d = confirmable({ wanted: '0/900', members: [member('a', { appliedLsn: '0/800' })], applying: new Map([['a', '0/800']]) });
    assert.deepEqual(d, { kind: 'confirm', lsn: '0/900', holdBack: [] });
  });

  test('a pipeline still copying holds the slot at its start, the lowest of several', () => {
    const d = confirmable({
      wanted: '0/900',
      members: [member('a', { appliedLsn: '0/800' }), member('b', { phase: 'snapshot', startLsn: '0/500' }), member('c', { phase: 'snapshot', startLsn: '0/300' })],
      applying: new Map([['a', '0/800']]),
    });
    assert.deepEqual(d, { kind: 'confirm', lsn: '0/300', holdBack: ['b', 'c'] });
  });

  test('a join the reader never loaded (its row appeared since) still holds it back: the rule reads rows, not the reader’s list', () => {
    const d = confirmable({ wanted: '1/0', members: [member('a'), member('late', { phase: 'snapshot', startLsn: '0/A00' })], applying: new Map([['a', null]]) });
    assert.equal(d.kind === 'confirm' && d.lsn, '0/A00');
  });

  test('a pipeline that finished copying while the reader did not apply for it makes the reader start again', () => {
    const d = confirmable({ wanted: '1/0', members: [member('a'), member('b', { startLsn: '0/A00' })], applying: new Map([['a', null]]) });
    assert.deepEqual(d, { kind: 'restart', pipeline: 'b' });
  });

  test('parked and stopped pipelines do not hold the slot back', () => {
    const d = confirmable({
      wanted: '1/0',
      members: [member('a'), member('p', { phase: 'snapshot', startLsn: '0/1', parked: true }), member('s', { startLsn: '0/2', stopped: true })],
      applying: new Map([['a', null]]),
    });
    assert.deepEqual(d, { kind: 'confirm', lsn: '1/0', holdBack: [] });
  });

  test('a target committed past this reader: the reader is fenced', () => {
    const d = confirmable({ wanted: '1/0', members: [member('a', { appliedLsn: '0/F00' })], applying: new Map([['a', '0/E00']]) });
    assert.deepEqual(d, { kind: 'fenced', pipeline: 'a', ours: '0/E00', theirs: '0/F00' });
    assert.equal(confirmable({ wanted: '1/0', members: [member('a', { appliedLsn: '0/E00' })], applying: new Map([['a', '0/E00']]) }).kind, 'confirm');
  });
});
