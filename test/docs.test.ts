import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

// A reference a reader cannot open from the repository is no reference (docs/architecture.md §5): every
// document that src/, test/ and bench/ cite must be a file of the repository, and every section they
// cite must be a heading of it.

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** Names of documents that live outside the repository; a citation of one is always an error. */
const OUTSIDE_DOCUMENTS =
  /(?<![\w/.-])(?:PROTOCOL|STYLE)(?:\.md)?(?= ?§|\.md|\b)|(?<![\w/.-])(?:peers|security|DEVELOPERS)\.md|\.\.\/shared\/|(?<![\w-])shared\/(?:reference|vectors)\b/g

/** A section citation: an optional document name, then § and a section number. */
const SECTION =
  /(?:(docs\/[\w-]+\.md|[\w-]+\.md|PROTOCOL|STYLE|RFC \d+|FIPS \d+|IMC \d+)\s*)?§\s*(\d+(?:\.\d+)*)/g

/**
 * A repository path ending in .md (a citation of a document by path). Markdown links written by code
 * (`[x.md](x.md)`, for a page in docs/) are relative to their page and not citations.
 */
const DOCUMENT_PATH = /(?<![\w/.([-])((?:[\w-]+\/)*[\w-]+\.md)\b/g

export interface Problem {
  readonly where: string
  readonly message: string
}

function filesUnder(dir: string, keep: (name: string) => boolean): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return entry.name === 'fixtures' ? [] : filesUnder(path, keep)
    return keep(entry.name) ? [path] : []
  })
}

/** Section numbers of a markdown file: "## 7. Body" gives 7, "### 7.3 Generic chunk" gives 7.3. */
export function headingsOf(markdown: string): Set<string> {
  const out = new Set<string>()
  for (const match of markdown.matchAll(/^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s/gm)) out.add(match[1] ?? '')
  return out
}

/**
 * The problems with the document citations in one file's text. A bare `§N` takes the document named
 * last on the same line, or docs/protocol.md when none is (the codecs cite the wire format by number).
 */
export function checkCitations(
  file: string,
  text: string,
  documentExists: (path: string) => boolean,
  headings: (path: string) => Set<string>,
): Problem[] {
  const problems: Problem[] = []
  const lines = text.split('\n')
  lines.forEach((line, index) => {
    const where = `${file}:${index + 1}`
    for (const match of line.matchAll(OUTSIDE_DOCUMENTS)) {
      problems.push({ where, message: `cites "${match[0]}", which is not in the repository` })
    }
    for (const match of line.matchAll(DOCUMENT_PATH)) {
      const path = match[1] ?? ''
      if (/^(?:PROTOCOL|STYLE|peers|security|DEVELOPERS)\.md$/.test(path)) continue
      if (!documentExists(path)) problems.push({ where, message: `cites ${path}, which does not exist` })
    }
    let current: string | undefined
    for (const match of line.matchAll(SECTION)) {
      const name = match[1]
      const section = match[2] ?? ''
      if (name !== undefined) current = name
      const document = current ?? 'docs/protocol.md'
      if (/^(?:RFC|FIPS|IMC) /.test(document) || !document.startsWith('docs/')) continue
      if (!documentExists(document)) continue
      if (!headings(document).has(section)) {
        problems.push({ where, message: `cites ${document} §${section}, which has no such heading` })
      }
    }
  })
  return problems
}

function repositoryCheck(): Problem[] {
  const headingCache = new Map<string, Set<string>>()
  const documentExists = (path: string): boolean => existsSync(join(ROOT, path))
  const headings = (path: string): Set<string> => {
    let set = headingCache.get(path)
    if (set === undefined) {
      set = headingsOf(readFileSync(join(ROOT, path), 'utf8'))
      headingCache.set(path, set)
    }
    return set
  }
  const code = ['src', 'test', 'bench', 'scripts'].flatMap((dir) =>
    filesUnder(join(ROOT, dir), (name) => name.endsWith('.ts')),
  )
  // This file's own examples of bad citations are not citations.
  return code
    .filter((file) => relative(ROOT, file) !== join('test', 'docs.test.ts'))
    .flatMap((file) =>
      checkCitations(relative(ROOT, file), readFileSync(file, 'utf8'), documentExists, headings),
    )
}

/** Relative links of the README and docs/*.md that do not lead to a file of the repository. */
function brokenLinks(): Problem[] {
  const pages = [join(ROOT, 'README.md'), ...filesUnder(join(ROOT, 'docs'), (name) => name.endsWith('.md'))]
  const problems: Problem[] = []
  for (const page of pages) {
    const text = readFileSync(page, 'utf8')
    for (const match of text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
      const target = match[1] ?? ''
      if (/^[a-z]+:/.test(target)) continue
      if (!existsSync(join(dirname(page), target))) {
        problems.push({ where: relative(ROOT, page), message: `links to ${target}, which does not exist` })
      }
    }
  }
  return problems
}

void test('checkCitations refuses documents outside the repository and sections that do not exist', () => {
  const exists = (path: string): boolean => path === 'docs/protocol.md'
  const headings = (): Set<string> => new Set(['7', '7.2', '7.3'])
  const check = (text: string): string[] =>
    checkCitations('x.ts', text, exists, headings).map((problem) => problem.message)
  assert.deepEqual(check('// docs/protocol.md §7.2 and §7.3; RFC 1928 §6; FIPS 197 §5.1.1, §5.3'), [])
  assert.deepEqual(check('/** (§7.3) */'), [])
  assert.equal(check('// PROTOCOL §7.2').length, 1)
  assert.equal(check('// what STYLE forbids').length, 1)
  assert.equal(check('// peers.md §3.1').length, 1)
  assert.equal(check('// see ../shared/vectors').length, 1)
  assert.deepEqual(check('// docs/protocol.md §7.9'), [
    'cites docs/protocol.md §7.9, which has no such heading',
  ])
  assert.deepEqual(check('// §12'), ['cites docs/protocol.md §12, which has no such heading'])
  assert.deepEqual(check('// docs/missing.md §1'), ['cites docs/missing.md, which does not exist'])
  assert.deepEqual(check("'see [other.md](other.md)'"), [])
})

void test('headingsOf reads numbered headings only', () => {
  assert.deepEqual([...headingsOf('# Title\n## 7. Body\n### 7.3 Generic chunk\n## Notes\n')], ['7', '7.3'])
})

void test('comments in src, test, bench and scripts cite only documents of the repository, and sections they have', () => {
  const problems = repositoryCheck()
  assert.deepEqual(
    problems.map((problem) => `${problem.where}: ${problem.message}`),
    [],
    'rewrite the references to the docs/ files (PROTOCOL §N is docs/protocol.md §N)',
  )
})

void test('README.md and docs/ link only to files that exist', () => {
  assert.deepEqual(
    brokenLinks().map((problem) => `${problem.where}: ${problem.message}`),
    [],
  )
})
