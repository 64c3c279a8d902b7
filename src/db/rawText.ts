import type pg from 'pg';

/** Every value comes back as PostgreSQL's own text: exact for every type (no float rounding, no Date truncation). */
export const RAW_TEXT: pg.CustomTypesConfig = { getTypeParser: () => (value: string) => value };
