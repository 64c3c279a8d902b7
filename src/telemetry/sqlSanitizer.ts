// Statement text for traces without the values in it. The sync's COPY and compare statements take
// no bind parameters (COPY cannot), so cursor bounds and key values are inlined as literals; a
// trace backend must see the statement's shape, not those values.

const IDENT_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;

/**
 * `text` with every string literal (standard, E'', U&'', B'', X'', N'' and dollar-quoted) and every
 * numeric literal replaced by `?`. Quoted identifiers, comments, keywords and `$n` placeholders
 * stay. Unterminated literals are cut to `?` as well (never echoed).
 */
export function sanitizeSql(text: string): string {
  let out = '';
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    const prev = i > 0 ? text[i - 1]! : '';
    // Prefixed strings: E'..', U&'..', B'..', X'..', N'..' (the prefix letter must start a word).
    const prefix = /^(?:[eE]|[uU]&|[bBxXnN])'/.exec(text.slice(i, i + 3));
    if (prefix && !IDENT_CHAR.test(prev)) {
      const escapes = c === 'e' || c === 'E';
      i = skipQuoted(text, i + prefix[0].length, escapes);
      out += '?';
      continue;
    }
    if (c === "'") {
      // With standard_conforming_strings on (the default since 9.1) a backslash is no escape here.
      i = skipQuoted(text, i + 1, false);
      out += '?';
      continue;
    }
    if (c === '"') {
      const end = skipQuoted(text, i + 1, false, '"');
      out += text.slice(i, end);
      i = end;
      continue;
    }
    if (c === '-' && text[i + 1] === '-') {
      const end = text.indexOf('\n', i);
      const stop = end === -1 ? n : end;
      out += text.slice(i, stop);
      i = stop;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      let depth = 1;
      let j = i + 2;
      while (j < n && depth > 0) {
        if (text[j] === '/' && text[j + 1] === '*') (depth++, (j += 2));
        else if (text[j] === '*' && text[j + 1] === '/') (depth--, (j += 2));
        else j++;
      }
      out += text.slice(i, j);
      i = j;
      continue;
    }
    if (c === '$' && !IDENT_CHAR.test(prev)) {
      const tag = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(text.slice(i));
      if (tag) {
        const end = text.indexOf(tag[0], i + tag[0].length);
        i = end === -1 ? n : end + tag[0].length;
        out += '?';
        continue;
      }
      const param = /^\$\d+/.exec(text.slice(i));
      if (param) {
        out += param[0];
        i += param[0].length;
        continue;
      }
    }
    if (!IDENT_CHAR.test(prev) && (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(text[i + 1] ?? '')))) {
      const num = /^(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?)/.exec(text.slice(i))!;
      out += '?';
      i += num[0].length;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

/** The index just after the closing quote of a literal whose body starts at `from`. */
function skipQuoted(text: string, from: number, backslashEscapes: boolean, quote = "'"): number {
  let j = from;
  while (j < text.length) {
    const ch = text[j]!;
    if (backslashEscapes && ch === '\\') j += 2;
    else if (ch === quote) {
      if (text[j + 1] === quote) j += 2;
      else return j + 1;
    } else j++;
  }
  return text.length;
}
