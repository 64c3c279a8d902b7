// Loaded by path (`failureConverterPath`) in the worker, in the client, and baked into the workflow
// bundle. With payload encryption on, a failure's message and stack move into an encoded payload
// that the codec encrypts: a database error quoting a row value (23505 "Key (email)=(…)") must not
// sit in plaintext history. Key holders see it through the codec server or a client with the key.
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
