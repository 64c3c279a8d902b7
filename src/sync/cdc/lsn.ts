// PostgreSQL LSNs ("16/B374D848") as numbers we can compare and subtract.

export const lsnValue = (lsn: string): bigint => {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
};

export const compareLsn = (a: string, b: string): number => {
  const d = lsnValue(a) - lsnValue(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
};

export const maxLsn = (a: string, b: string) => (compareLsn(a, b) >= 0 ? a : b);
export const minLsn = (a: string, b: string) => (compareLsn(a, b) <= 0 ? a : b);

export const lsnBytes = (from: string, to: string): number => Math.max(0, Number(lsnValue(to) - lsnValue(from)));

export const formatLsn = (v: bigint): string => `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;

/** The form PostgreSQL prints ("0/16B3748"); the replication library pads with zeros. */
export const normalizeLsn = (lsn: string): string => formatLsn(lsnValue(lsn));
