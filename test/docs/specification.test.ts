// docs/specification.md is the project's own specification: every section number cited anywhere in the
// repository must name one of its section headings or numbered items, so a reader can follow every citation.
// Checked: (a) citations written `docs/specification.md` + section number, and links to its anchors; (b) every
// section-sign number in any form (the older "spec digest" form included), except section numbers of RFCs.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SPEC_PATH = join(ROOT, 'docs', 'specification.md');

/** Where citations may live. certs-example is scanned too: its generator cites the CSR rule. */
const SCANNED = ['src', 'test', 'bench', 'deploy', 'config', 'certs-example', 'docs', 'README.md'];
/** Build output, installed packages and generated material are not the project's text. */
const SKIPPED_DIRECTORIES = new Set(['node_modules', 'dist', 'generated', 'data', 'coverage', '.git']);
const MAX_SCANNED_BYTES = 4 * 1024 * 1024;

// The self-check below builds its citations from this constant, so its deliberately broken examples are not
// themselves citations of this file.
const SECTION_SIGN = '\u00a7';
const NUMBER = String.raw`(\d+(?:\.\d+)*)`;
/** A section number, optionally a range (`x.y–x.z`, the second part with or without its own section sign). */
const ANY_CITATION = new RegExp(`${SECTION_SIGN}\\s?${NUMBER}(?:\\s*[–-]\\s*${SECTION_SIGN}?\\s?${NUMBER})?`, 'g');
/** The new form: `docs/specification.md §x.y` (backticks around the path allowed). */
const SPEC_CITATION = new RegExp(`docs/specification\\.md\`?\\s*${SECTION_SIGN}\\s?${NUMBER}`, 'g');
/** Links to the document's anchors, from anywhere (`docs/specification.md#s1-4`, `specification.md#s9-22`). */
const SPEC_ANCHOR_LINK = /specification\.md#([A-Za-z0-9_-]+)/g;
/** "RFC 9110 §7.6.1" or "Trace Context §3.2.4" names a section of another specification, not of our document. */
const RFC_BEFORE = /\b(?:RFC\s?\d{3,5}|Trace Context)\s*(?:section\s*)?$/i;

interface Citation {
  readonly file: string;
  readonly line: number;
  readonly number: string;
}

interface SpecIndex {
  /** Section numbers defined by a heading (`### §1.4 …`) or a numbered item (`1. <a id…></a>**§9.1 …**`). */
  readonly numbers: ReadonlyMap<string, number>;
  /** Every `<a id="…">` anchor, in order. */
  readonly anchors: readonly string[];
}

function readSpecification(): string {
  if (!existsSync(SPEC_PATH)) throw new Error(`docs/specification.md is missing: ${SPEC_PATH}`);
  return readFileSync(SPEC_PATH, 'utf8');
}

function indexSpecification(text: string): SpecIndex {
  const heading = new RegExp(`^#{1,6}\\s+${SECTION_SIGN}${NUMBER}\\s`);
  const item = new RegExp(`^\\s*\\d+\\.\\s+(?:<a id="[^"]+"></a>\\s*)?\\*\\*${SECTION_SIGN}${NUMBER}\\b`);
  const numbers = new Map<string, number>();
  const lines = text.split('\n');
  lines.forEach((line, index) => {
    const found = heading.exec(line) ?? item.exec(line);
    if (!found) return;
    const number = found[1]!;
    if (numbers.has(number)) throw new Error(`docs/specification.md defines ${SECTION_SIGN}${number} twice (lines ${numbers.get(number)} and ${index + 1})`);
    numbers.set(number, index + 1);
  });
  const anchors = [...text.matchAll(/<a id="([^"]+)"><\/a>/g)].map((m) => m[1]!);
  return { numbers, anchors };
}

/** The anchor a section number gets: §2.10.4 → s2-10-4. */
function anchorFor(number: string): string {
  return `s${number.replaceAll('.', '-')}`;
}

/** Every section-sign citation in a text, RFC sections left out; a range yields both of its ends. */
function sectionCitations(file: string, text: string): Citation[] {
  const citations: Citation[] = [];
  for (const match of text.matchAll(ANY_CITATION)) {
    const start = match.index;
    if (RFC_BEFORE.test(text.slice(Math.max(0, start - 24), start))) continue;
    const line = text.slice(0, start).split('\n').length;
    citations.push({ file, line, number: match[1]! });
    if (match[2] !== undefined) citations.push({ file, line, number: match[2] });
  }
  return citations;
}

/** Lines citing a section of ours without naming docs/specification.md on the line (RFC and Trace Context aside). */
function unnamedCitations(file: string, text: string): string[] {
  const lines = text.split('\n');
  const cited = new Set(sectionCitations(file, text).map((c) => c.line));
  return [...cited].filter((line) => !lines[line - 1]!.includes('docs/specification.md')).map((line) => `${file}:${line}`);
}

function specCitations(file: string, text: string): Citation[] {
  return [...text.matchAll(SPEC_CITATION)].map((match) => ({
    file,
    line: text.slice(0, match.index).split('\n').length,
    number: match[1]!,
  }));
}

function anchorLinks(file: string, text: string): Citation[] {
  const links = [...text.matchAll(SPEC_ANCHOR_LINK)].map((match) => ({
    file,
    line: text.slice(0, match.index).split('\n').length,
    number: match[1]!,
  }));
  if (file !== 'docs/specification.md') return links;
  // Inside the document, plain `](#anchor)` links point at its own anchors too.
  const internal = [...text.matchAll(/\]\(#([A-Za-z0-9_-]+)\)/g)].map((match) => ({
    file,
    line: text.slice(0, match.index).split('\n').length,
    number: match[1]!,
  }));
  return [...links, ...internal];
}

/** Text files under the scanned roots (binary files, i.e. those holding a NUL byte, are skipped). */
function scannedFiles(): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = [];
  const visit = (path: string): void => {
    const stat = statSync(path);
    if (stat.isDirectory()) {
      for (const entry of readdirSync(path).sort()) {
        if (!SKIPPED_DIRECTORIES.has(entry)) visit(join(path, entry));
      }
      return;
    }
    if (!stat.isFile() || stat.size > MAX_SCANNED_BYTES) return;
    const bytes = readFileSync(path);
    if (bytes.includes(0)) return;
    out.push({ file: relative(ROOT, path).split('\\').join('/'), text: bytes.toString('utf8') });
  };
  for (const root of SCANNED) {
    const path = join(ROOT, root);
    if (!existsSync(path)) throw new Error(`expected ${root} in the repository`);
    visit(path);
  }
  return out;
}

function unresolved(citations: readonly Citation[], defined: (n: string) => boolean): string[] {
  return citations.filter((c) => !defined(c.number)).map((c) => `${c.file}:${c.line} cites ${c.number}`);
}

describe('docs/specification.md numbering', () => {
  const spec = indexSpecification(readSpecification());

  it('has the top-level sections §1–§9 and the contradictions §9.1–§9.23 as numbered items', () => {
    for (let top = 1; top <= 9; top++) expect(spec.numbers.has(String(top)), `${SECTION_SIGN}${top}`).toBe(true);
    for (let item = 1; item <= 23; item++) expect(spec.numbers.has(`9.${item}`), `${SECTION_SIGN}9.${item}`).toBe(true);
  });

  it('keeps the subsection numbers the code was written against', () => {
    const expected = {
      1: 10, // §1.1–§1.10
      2: 10, // §2.1–§2.10
      3: 3,
      4: 5,
      5: 5,
      6: 3,
    } as const;
    for (const [top, count] of Object.entries(expected)) {
      for (let sub = 1; sub <= count; sub++) expect(spec.numbers.has(`${top}.${sub}`), `${SECTION_SIGN}${top}.${sub}`).toBe(true);
    }
  });

  it('gives every numbered section and item its stable anchor, each anchor once', () => {
    const anchors = new Set(spec.anchors);
    expect(anchors.size).toBe(spec.anchors.length);
    const missing = [...spec.numbers.keys()].filter((n) => !anchors.has(anchorFor(n)));
    expect(missing).toEqual([]);
  });

  it('nests every number under a defined parent', () => {
    const orphans = [...spec.numbers.keys()].filter((n) => n.includes('.') && !spec.numbers.has(n.slice(0, n.lastIndexOf('.'))));
    expect(orphans).toEqual([]);
  });
});

describe('citations of docs/specification.md across the repository', () => {
  const spec = indexSpecification(readSpecification());
  const files = scannedFiles();
  const isDefined = (number: string): boolean => spec.numbers.has(number);

  it('(a) resolves every `docs/specification.md §x.y` citation and every link to one of its anchors', () => {
    const citations = files.flatMap(({ file, text }) => specCitations(file, text));
    // The document's own "how to cite" examples are citations of this form, so the scan cannot come back empty.
    expect(citations.length).toBeGreaterThan(0);
    expect(unresolved(citations, isDefined)).toEqual([]);
    const anchors = new Set(spec.anchors);
    const links = files.flatMap(({ file, text }) => anchorLinks(file, text));
    expect(links.length).toBeGreaterThan(0);
    expect(unresolved(links, (anchor) => anchors.has(anchor))).toEqual([]);
  });

  it('(b) finds every section number cited in any form in the document', () => {
    const citations = files.flatMap(({ file, text }) => sectionCitations(file, text));
    // A scan that finds almost nothing is scanning the wrong place, not proving anything.
    expect(citations.filter((c) => c.file !== 'docs/specification.md').length).toBeGreaterThan(50);
    expect(unresolved(citations, isDefined)).toEqual([]);
  });

  it('(c) names the document on every line of code, tests or scripts that cites one of its sections', () => {
    // The README says once that its own "§n" means docs/specification.md; everywhere else the line says it.
    const bare = files
      // This file itself talks about the numbering, not about rules.
      .filter(({ file }) => /^(src|test|bench|deploy|config|certs-example)\//.test(file) && file !== 'test/docs/specification.test.ts')
      .flatMap(({ file, text }) => unnamedCitations(file, text));
    expect(bare).toEqual([]);
  });

  it('reports a citation that does not resolve, in either form, and leaves RFC sections alone', () => {
    const s = SECTION_SIGN;
    const text = [
      `// see docs/specification.md ${s}1.4 and docs/specification.md ${s}99.1`,
      `// (spec digest ${s}2.10.4, ${s}9.22) and ${s}5.3–5.7`,
      `// hop-by-hop headers (RFC 9110 ${s}7.6.1); RFC 8259 ${s}8.1`,
    ].join('\n');
    expect(unresolved(specCitations('x.ts', text), isDefined)).toEqual(['x.ts:1 cites 99.1']);
    expect(unresolved(sectionCitations('x.ts', text), isDefined)).toEqual(['x.ts:1 cites 99.1', 'x.ts:2 cites 5.7']);
    expect(sectionCitations('x.ts', text).map((c) => c.number)).toEqual(['1.4', '99.1', '2.10.4', '9.22', '5.3', '5.7']);
  });
});
