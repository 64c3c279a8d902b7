import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

// Typed search attributes the Temporal UI filters on. Registered by `lakebase-worker setup` on a
// cluster, and by `--search-attribute` on the dev server the demo and tests start.
export const LakebaseProfile = defineSearchAttributeKey('LakebaseProfile', SearchAttributeType.KEYWORD);
export const LakebaseEnvironment = defineSearchAttributeKey('LakebaseEnvironment', SearchAttributeType.KEYWORD);
export const LakebasePipeline = defineSearchAttributeKey('LakebasePipeline', SearchAttributeType.KEYWORD);
export const LakebaseJob = defineSearchAttributeKey('LakebaseJob', SearchAttributeType.KEYWORD);
export const LakebaseRowsWritten = defineSearchAttributeKey('LakebaseRowsWritten', SearchAttributeType.INT);

export const LAKEBASE_SEARCH_ATTRIBUTES = [LakebaseProfile, LakebaseEnvironment, LakebasePipeline, LakebaseJob, LakebaseRowsWritten];
