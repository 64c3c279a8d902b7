import { z } from 'zod';

const port = z.int().min(0).max(65535);

export const federationPolicySchema = z.strictObject({
  name: z.string().min(1),
  issuer: z.string().url(),
  audiences: z.array(z.string().min(1)).min(1),
  /** Claim naming the Databricks user (account-wide policies). */
  subjectClaim: z.string().min(1).default('sub'),
  /** Defaults to the jwks_uri of `<issuer>/.well-known/openid-configuration`, as on Databricks. */
  jwksUri: z.string().url().optional(),
  /** Set for a service principal's workload identity policy; token exchanges must then send its client_id. */
  servicePrincipal: z.string().min(1).optional(),
  /** For workload policies: the `sub` the workload's token must carry. */
  subject: z.string().min(1).optional(),
});

export const emulatorOptionsSchema = z.strictObject({
  http: z.strictObject({ host: z.string().default('127.0.0.1'), port: port.default(0) }).default({ host: '127.0.0.1', port: 0 }),
  postgres: z.strictObject({ host: z.string().default('127.0.0.1'), port: port.default(0) }).default({ host: '127.0.0.1', port: 0 }),
  /** The real PostgreSQL behind the front (trust or password auth for this user). */
  upstream: z.string().default('postgres://postgres@127.0.0.1:5432/postgres'),
  accountId: z.string().min(1).default('emulated-account'),
  /** Lifetime of OAuth access tokens and database credentials (Lakebase: about an hour). */
  tokenTtlSeconds: z.number().positive().default(3600),
  credentialTtlSeconds: z.number().positive().default(3600),
  servicePrincipals: z.array(z.strictObject({ clientId: z.string().min(1), clientSecret: z.string().min(1) })).default([]),
  users: z.array(z.strictObject({ email: z.string().min(1), pats: z.array(z.string().min(1)).default([]) })).default([]),
  federationPolicies: z.array(federationPolicySchema).default([]),
  /** Names accepted by POST /api/2.0/database/credentials. */
  databaseInstances: z.array(z.string().min(1)).default([]),
  /**
   * Native Postgres password roles: these users log in with their password, never with a token
   * (and an OAuth identity cannot log in with a password), as Lakebase keeps the two kinds apart.
   */
  passwordRoles: z.array(z.strictObject({ role: z.string().min(1), password: z.string().min(1) })).default([]),
  /**
   * Scale to zero: the compute starts suspended; the first connection starts waking it, and until
   * wakeDelayMs has passed every login is answered FATAL 57P03 (a pessimistic model of the few
   * hundred milliseconds Lakebase documents). emulator.suspendCompute() suspends it again.
   */
  scaleToZero: z.strictObject({ wakeDelayMs: z.int().min(0).default(300) }).optional(),
  /**
   * Root endpoints of Autoscaling projects, projects/{p}/branches/{b}/endpoints/{e}: Get Endpoint
   * and POST /api/2.0/postgres/credentials accept them (and the endpoints of branches created later).
   */
  endpoints: z.array(z.string().regex(/^projects\/[^/]+\/branches\/[^/]+\/endpoints\/[^/]+$/, 'expected projects/{p}/branches/{b}/endpoints/{e}')).default([]),
  /** Upstream databases a created branch copies from its parent (src/emulator/branches.ts). */
  databases: z.array(z.string().min(1)).default([]),
  /** If set, only these identities may create or delete branches (CAN MANAGE on the project); others get 403. */
  projectManagers: z.array(z.string().min(1)).optional(),
});

export type EmulatorOptions = z.input<typeof emulatorOptionsSchema>;
export type ResolvedEmulatorOptions = z.output<typeof emulatorOptionsSchema>;
export type FederationPolicy = z.output<typeof federationPolicySchema>;
