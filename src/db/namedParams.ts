/**
 * Turns `:name` / `:step.column` placeholders into `$1, $2, …` so every value is bound, never
 * interpolated. Quoted strings, quoted identifiers, dollar-quoted bodies, comments and `::` casts
 * are left alone.
 */

export interface CompiledSql {
  text: string;
  /** Placeholder names in `$n` order. */
  names: string[];
}

export function compileNamedParams(sql: string): CompiledSql {
  const names: string[] = [];
  let out = '';
  let i = 0;
  const copyUntil = (end: string, from: number) => {
    const j = sql.indexOf(end, from);
    const stop = j === -1 ? sql.length : j + end.length;
    out += sql.slice(i, stop);
    i = stop;
  };
  while (i < sql.length) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === "'" && /[eE]/.test(sql[i - 1] ?? '') && !/[\w$]/.test(sql[i - 2] ?? '')) {
      // E'…' escape strings: a backslash escapes the next character, so E'\'' is one quote inside.
      let j = i + 1;
      while (j < sql.length) {
        if (sql[j] === '\\') j += 2;
        else if (sql[j] === "'" && sql[j + 1] === "'") j += 2;
        else if (sql[j] === "'") break;
        else j++;
      }
      const stop = Math.min(j + 1, sql.length);
      out += sql.slice(i, stop);
      i = stop;
    } else if (c === "'" || c === '"') {
      // Quotes escape by doubling, which this scan handles as two adjacent strings.
      copyUntil(c, i + 1);
    } else if (c === '-' && next === '-') {
      copyUntil('\n', i);
    } else if (c === '/' && next === '*') {
      copyUntil('*/', i + 2);
    } else if (c === '$') {
      const tag = /^\$([A-Za-z_]\w*)?\$/.exec(sql.slice(i));
      if (tag) {
        out += tag[0];
        i += tag[0].length;
        copyUntil(tag[0], i);
      } else {
        out += c;
        i++;
      }
    } else if (c === ':' && next === ':') {
      out += '::';
      i += 2;
    } else if (c === ':' && next !== undefined && /[A-Za-z_]/.test(next)) {
      const m = /^:([A-Za-z_][\w-]*(?:\.[A-Za-z_]\w*)?)/.exec(sql.slice(i))!;
      const name = m[1]!;
      let n = names.indexOf(name);
      if (n === -1) n = names.push(name) - 1;
      out += `$${n + 1}`;
      i += m[0].length;
    } else {
      out += c;
      i++;
    }
  }
  return { text: out, names };
}
