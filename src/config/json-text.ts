// Config text: JSON with comments, as V2Ray reads it, with line and column in every error.
import { ConfigError } from '../errors.js'

/** JSON nested deeper than this is refused rather than risking the stack; real configs nest about 8 deep. */
const MAX_JSON_DEPTH = 256

function lineAndColumn(text: string, position: number): { line: number; column: number } {
  let line = 1
  let lineStart = 0
  for (
    let index = text.indexOf('\n');
    index !== -1 && index < position;
    index = text.indexOf('\n', index + 1)
  ) {
    line += 1
    lineStart = index + 1
  }
  return { line, column: position - lineStart + 1 }
}

const NUMBER_PATTERN = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
const ESCAPE_PATTERN = /\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})/y

/**
 * Parses the text of a config file: JSON plus the comments V2Ray accepts (`//`, `/* *\/` and `#` outside
 * strings). Throws ConfigError naming the source, line and column of a syntax error.
 * @example
 * parseConfigText('{ "log": { "loglevel": "info" } // verbose\n}', { source: 'config.json' })
 */
export function parseConfigText(text: string, options: { readonly source?: string } = {}): unknown {
  const source = options.source ?? 'the config'
  let position = 0

  const fail = (message: string, at = position): never => {
    const { line, column } = lineAndColumn(text, at)
    throw new ConfigError('', `Cannot parse ${source}: ${message} at line ${line}, column ${column}`)
  }

  const skipSpaceAndComments = (): void => {
    while (position < text.length) {
      const char = text[position]
      if (char === ' ' || char === '\t' || char === '\n' || char === '\r' || char === '\uFEFF') position += 1
      else if (char === '#' || text.startsWith('//', position)) {
        const end = text.indexOf('\n', position)
        position = end === -1 ? text.length : end + 1
      } else if (text.startsWith('/*', position)) {
        const end = text.indexOf('*/', position + 2)
        if (end === -1) fail('a /* comment is never closed')
        position = end + 2
      } else return
    }
  }

  const readString = (): string => {
    const start = position
    position += 1
    for (;;) {
      const char = text[position]
      if (char === undefined) return fail('a string is never closed', start)
      if (char === '"') break
      if (char === '\\') {
        ESCAPE_PATTERN.lastIndex = position
        if (!ESCAPE_PATTERN.test(text)) fail('a bad escape sequence in a string')
        position = ESCAPE_PATTERN.lastIndex
      } else if (char < ' ') fail('a control character (write it as an escape) in a string')
      else position += 1
    }
    position += 1
    return JSON.parse(text.slice(start, position)) as string
  }

  const readValue = (depth: number): unknown => {
    skipSpaceAndComments()
    const char = text[position]
    if (char === undefined) return fail('the text ends where a value is expected')
    if (char === '{' || char === '[') {
      if (depth >= MAX_JSON_DEPTH) fail(`values nested more than ${MAX_JSON_DEPTH} deep`)
      return char === '{' ? readObject(depth + 1) : readArray(depth + 1)
    }
    if (char === '"') return readString()
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, position)) {
        position += word.length
        return value
      }
    }
    NUMBER_PATTERN.lastIndex = position
    const number = NUMBER_PATTERN.exec(text)
    if (number !== null) {
      position = NUMBER_PATTERN.lastIndex
      return Number(number[0])
    }
    const word = /[^\s,:[\]{}"]{1,24}/y
    word.lastIndex = position
    const token = word.exec(text)?.[0]
    return fail(
      token === undefined
        ? `${JSON.stringify(char)} where a value is expected`
        : `${JSON.stringify(token)} is not a JSON value`,
    )
  }

  const readObject = (depth: number): Record<string, unknown> => {
    const object: Record<string, unknown> = {}
    position += 1
    skipSpaceAndComments()
    if (text[position] === '}') {
      position += 1
      return object
    }
    for (;;) {
      skipSpaceAndComments()
      if (text[position] === '}') fail("a comma before '}' (JSON allows no trailing comma)")
      if (text[position] !== '"') fail('a key in double quotes is expected')
      const key = readString()
      skipSpaceAndComments()
      if (text[position] !== ':') fail(`':' is expected after the key ${JSON.stringify(key)}`)
      position += 1
      // defineProperty: a "__proto__" key must stay a plain key, as JSON.parse keeps it.
      Object.defineProperty(object, key, {
        value: readValue(depth),
        enumerable: true,
        writable: true,
        configurable: true,
      })
      skipSpaceAndComments()
      if (text[position] === ',') position += 1
      else if (text[position] === '}') {
        position += 1
        return object
      } else fail("',' or '}' is expected")
    }
  }

  const readArray = (depth: number): unknown[] => {
    const array: unknown[] = []
    position += 1
    skipSpaceAndComments()
    if (text[position] === ']') {
      position += 1
      return array
    }
    for (;;) {
      skipSpaceAndComments()
      if (text[position] === ']') fail("a comma before ']' (JSON allows no trailing comma)")
      array.push(readValue(depth))
      skipSpaceAndComments()
      if (text[position] === ',') position += 1
      else if (text[position] === ']') {
        position += 1
        return array
      } else fail("',' or ']' is expected")
    }
  }

  skipSpaceAndComments()
  if (position === text.length) throw new ConfigError('', `Cannot parse ${source}: it holds no JSON value`)
  const value = readValue(0)
  skipSpaceAndComments()
  if (position < text.length) fail('more text after the JSON value')
  return value
}
