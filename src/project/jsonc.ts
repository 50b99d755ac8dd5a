/**
 * JSONC reading for project files: comments and trailing commas are allowed everywhere.
 * Syntax errors are reported with line and column, all of them at once.
 */
import { parse, printParseErrorCode, type ParseError } from "jsonc-parser";
import type { ConfigIssue } from "./types.js";

/** Converts a character offset to 1-based line and column. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

const MESSAGES: Record<string, string> = {
  InvalidSymbol: "unexpected character",
  InvalidNumberFormat: "invalid number",
  PropertyNameExpected: "property name expected",
  ValueExpected: "value expected",
  ColonExpected: "':' expected",
  CommaExpected: "',' expected",
  CloseBraceExpected: "'}' expected",
  CloseBracketExpected: "']' expected",
  EndOfFileExpected: "end of file expected",
  InvalidCommentToken: "invalid comment",
  UnexpectedEndOfComment: "unterminated comment",
  UnexpectedEndOfString: "unterminated string",
  UnexpectedEndOfNumber: "unterminated number",
  InvalidUnicode: "invalid unicode escape",
  InvalidEscapeCharacter: "invalid escape character",
  InvalidCharacter: "invalid character in string",
};

/**
 * Parses JSONC text. Returns the value, or `undefined` plus one issue per syntax error
 * (`file: line 3, column 7: ',' expected`).
 */
export function parseJsonc(text: string, file: string): { value: unknown; issues: ConfigIssue[] } {
  const errors: ParseError[] = [];
  const value: unknown = parse(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length === 0) return { value, issues: [] };
  const issues = errors.map((e) => {
    const { line, column } = lineColumn(text, e.offset);
    const code = printParseErrorCode(e.error);
    return { file, path: "", message: `line ${line}, column ${column}: ${MESSAGES[code] ?? code}` };
  });
  return { value: undefined, issues };
}
