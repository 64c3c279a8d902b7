// Checks that keep the docs true to the code: relative links and #anchors resolve, every
// `lakebase-worker …` line in a code block exists with its flags in the CLI's command tree, and
// every YAML config example parses with the config schema. Pure functions over text, so the docs
// test can also feed them broken copies and see each check fail.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Command, Option } from 'commander';
import { ConfigError, parseConfig, parseDocument } from '../../src/config/load';

export interface DocFile {
  /** Path relative to the repository root, e.g. `docs/sync.md`. */
  file: string;
  text: string;
}

export interface CodeBlock {
  lang: string;
  /** 1-based line of the opening fence. */
  line: number;
  body: string;
  /** The HTML comment on the line before the fence, e.g. `invalid-example` or `quickstart: run`. */
  marker?: string;
}

/** README.md, CONTRIBUTING.md, bench/README.md and every page under docs/. */
export function docFiles(root: string): string[] {
  const pages = readdirSync(path.join(root, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.md'))
    .map((f) => path.join('docs', f));
  return ['README.md', 'CONTRIBUTING.md', 'bench/README.md', ...pages.sort()].filter((f) => existsSync(path.join(root, f)));
}

export function codeBlocks(text: string): CodeBlock[] {
  const lines = text.split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^\s*```(\S*)\s*$/.exec(lines[i] ?? '');
    if (!open) continue;
    let j = i + 1;
    while (j < lines.length && !/^\s*```\s*$/.test(lines[j] ?? '')) j++;
    let k = i - 1;
    while (k >= 0 && (lines[k] ?? '').trim() === '') k--;
    const marker = k >= 0 ? /^\s*<!--\s*(.+?)\s*-->\s*$/.exec(lines[k] ?? '')?.[1] : undefined;
    blocks.push({ lang: open[1] ?? '', line: i + 1, body: lines.slice(i + 1, j).join('\n'), marker });
    i = j;
  }
  return blocks;
}

/** The text outside fenced code blocks and inline code spans, line numbers kept. */
function prose(text: string): string {
  const lines = text.split('\n');
  let inFence = false;
  return lines
    .map((l) => {
      if (/^\s*```/.test(l)) {
        inFence = !inFence;
        return '';
      }
      return inFence ? '' : l.replace(/`[^`]*`/g, '``');
    })
    .join('\n');
}

/** GitHub's anchor slugs for the headings of a markdown text (duplicates get -1, -2, …). */
export function headingSlugs(text: string): Set<string> {
  const slugs = new Set<string>();
  const seen = new Map<string, number>();
  let inFence = false;
  for (const line of text.split('\n')) {
    if (/^\s*```/.test(line)) inFence = !inFence;
    const h = !inFence && /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const base = (h[1] ?? '')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    slugs.add(n === 0 ? base : `${base}-${n}`);
  }
  return slugs;
}

/** Every relative link and #anchor of `doc` that does not resolve, as `file:line: …`. */
export function brokenLinks(doc: DocFile, root: string, readText: (file: string) => string): string[] {
  const problems: string[] = [];
  prose(doc.text)
    .split('\n')
    .forEach((line, i) => {
      for (const m of line.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        const target = m[1] ?? '';
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        const [file = '', anchor] = target.split('#', 2);
        const resolved = file ? path.normalize(path.join(path.dirname(doc.file), decodeURIComponent(file))) : doc.file;
        const where = `${doc.file}:${i + 1}`;
        if (file && (resolved.startsWith('..') || !existsSync(path.join(root, resolved)))) {
          problems.push(`${where}: link ${target}: ${resolved} does not exist`);
          continue;
        }
        if (anchor === undefined) continue;
        if (!resolved.endsWith('.md') || (file && statSync(path.join(root, resolved)).isDirectory())) {
          problems.push(`${where}: link ${target}: an #anchor into ${resolved}, which is not a markdown page`);
          continue;
        }
        const text = resolved === doc.file ? doc.text : readText(resolved);
        if (!headingSlugs(text).has(anchor)) problems.push(`${where}: link ${target}: ${resolved} has no heading #${anchor}`);
      }
    });
  return problems;
}

/** Splits a shell command line into words (quotes removed), stopping at a comment, a pipe or `;`/`&&`. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] ?? '';
    if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1);
      word = (word ?? '') + line.slice(i + 1, end < 0 ? undefined : end);
      i = end < 0 ? line.length : end;
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (word === undefined && (c === '#' || c === ';' || c === '>' || (c === '|' && line[i + 1] === ' ') || line.startsWith('&&', i))) {
      break;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The `lakebase-worker …` command lines of a shell code block, continuations joined. */
export function commandLines(block: CodeBlock): { line: number; words: string[] }[] {
  const out: { line: number; words: string[] }[] = [];
  const lines = block.body.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let text = lines[i] ?? '';
    while (text.endsWith('\\') && i + 1 < lines.length) text = text.slice(0, -1) + ' ' + (lines[++i] ?? '');
    // In command position: at the start (after `$ `, `npx `, VAR=value) or after `&&` / `;` / `| `.
    for (const segment of text.split(/&&|;|\|\s/)) {
      const words = shellWords(segment.replace(/^\s*\$\s+/, ''));
      while (words.length && /^[A-Z_][A-Z0-9_]*=/.test(words[0] ?? '')) words.shift();
      if (words[0] === 'npx') words.shift();
      if (words[0] === 'lakebase-worker') out.push({ line: block.line + 1 + start, words: words.slice(1) });
    }
  }
  return out;
}

function findOption(cmd: Command, flag: string): Option | undefined {
  const opts = [...cmd.options];
  return opts.find((o) => o.long === flag || o.short === flag);
}

/** Why `words` (after `lakebase-worker`) is not a command line the CLI accepts, or undefined. */
export function commandProblem(program: Command, words: string[]): string | undefined {
  // `a|b|c` in a command position stands for each of them.
  const alternatives = (w: string) => w.split('|');
  const walk = (cmd: Command, rest: string[], shown: string[]): string | undefined => {
    const [word, ...after] = rest;
    if (word !== undefined && !word.startsWith('-') && cmd.commands.length > 0) {
      for (const name of alternatives(word)) {
        const sub = cmd.commands.find((c) => c.name() === name || c.aliases().includes(name));
        if (!sub) return `${[...shown, name].join(' ')}: no such command (${cmd.name()} has ${cmd.commands.map((c) => c.name()).join(', ')})`;
        const problem = walk(sub, after, [...shown, name]);
        if (problem) return problem;
      }
      return undefined;
    }
    return argsProblem(cmd, rest, shown.join(' ') || 'lakebase-worker');
  };
  return walk(program, words, []);
}

function argsProblem(cmd: Command, words: string[], shown: string): string | undefined {
  const positionals: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = (words[i] ?? '').replace(/^\[/, '').replace(/\]$/, ''); // `[--env E]`: optional in the docs' notation
    if (word === '--help' || word === '-h') continue;
    if (!word.startsWith('-') || word === '-') {
      positionals.push(word);
      continue;
    }
    const flag = word.split('=', 1)[0] ?? word;
    const option = findOption(cmd, flag);
    if (!option) {
      const known = cmd.options.map((o) => o.long ?? o.short).join(', ');
      return `${shown}: unknown option ${flag} (it has ${known || 'no options'})`;
    }
    if ((option.required || option.optional) && !word.includes('=')) {
      const value = words[i + 1];
      if (option.required && (value === undefined || value.startsWith('-'))) return `${shown}: option ${flag} needs a value`;
      if (value !== undefined && !value.startsWith('-')) i++;
      while (option.variadic && !(words[i + 1] ?? '-').startsWith('-')) i++;
    }
  }
  const args = cmd.registeredArguments;
  const required = args.filter((a) => a.required).length;
  const variadic = args.some((a) => a.variadic);
  if (positionals.length < required) return `${shown}: expects ${args.map((a) => a.name()).join(' ')}, got ${positionals.length} argument(s)`;
  if (!variadic && positionals.length > args.length && cmd.commands.length === 0)
    return `${shown}: takes ${args.length} argument(s), got ${positionals.join(' ')}`;
  return undefined;
}

/**
 * A base config a YAML fragment is laid over: the profile, environments and pipelines the docs'
 * fragments refer to without repeating them. Objects merge, everything else is replaced, so a
 * wrong key or value in the fragment still fails the schema.
 */
const fragmentBase = {
  profiles: {
    analytics: {
      auth: { method: 'pat', token: 'docs-example-token' },
      environments: {
        prod: { host: 'instance-1.database.cloud.databricks.com', user: 'svc@example.com' },
        staging: { host: 'instance-2.database.cloud.databricks.com', user: 'svc@example.com' },
      },
    },
  },
  pipelines: {
    'orders-to-reporting': {
      source: { profile: 'analytics', environment: 'prod', table: 'public.orders' },
      target: { profile: 'analytics', environment: 'prod', table: 'reporting.orders' },
      key: ['id'],
    },
    'customers-to-reporting': {
      source: { profile: 'analytics', environment: 'prod', table: 'public.customers' },
      target: { profile: 'analytics', environment: 'prod', table: 'reporting.customers' },
      key: ['id'],
    },
  },
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function overlay(base: unknown, over: unknown): unknown {
  if (!isObject(base) || !isObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? overlay(base[k], v) : v;
  return out;
}

/** The schema's complaint about a YAML config example, or undefined when it is valid. */
export function yamlConfigProblem(body: string): string | undefined {
  let raw: unknown;
  try {
    raw = parseDocument(body, 'example.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.join('; ');
    throw err;
  }
  // `${NAME}` without a default stands for a value the reader sets.
  const env: NodeJS.ProcessEnv = {};
  for (const m of body.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) if (m[1]) env[m[1]] = 'docs-example-value';
  const attempt = (value: unknown): string | undefined => {
    try {
      parseConfig(value, env, 'example');
      return undefined;
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.join('; ');
      throw err;
    }
  };
  const alone = attempt(raw);
  if (alone === undefined) return undefined;
  return attempt(overlay(fragmentBase, raw));
}
