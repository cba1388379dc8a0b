// codemirror-json-schema (0.8) maps the cursor to a JSON pointer through the YAML syntax
// tree, and loses its way after a comment, a block scalar (`prompt: |`) or a plain value
// of several words (`name: Launch kit`). Completion and hover therefore read a same-length
// copy of the text in which comments and block-scalar bodies are blanked and plain values
// are one word: every position stays where it was.

const PLAIN = /^(\s*(?:- +)?[\w.-]+:[ \t]+)([^\s'"[{|>&*!#%@`][^#]*?)([ \t]*(?:#.*)?)$/;
const BLOCK = /^(\s*(?:- +)?[^#\s][^#]*?:\s+|\s*- +)([|>][-+0-9]*)(\s*(?:#.*)?)$/;

export function schemaText(text: string): string {
  const lines = text.split("\n");
  let blockIndent: number | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const indent = line.length - line.trimStart().length;
    if (blockIndent !== null) {
      if (line.trim() === "" || indent > blockIndent) {
        lines[i] = " ".repeat(line.length);
        continue;
      }
      blockIndent = null;
    }
    if (/^\s*#/.test(line)) {
      lines[i] = " ".repeat(line.length);
      continue;
    }
    const block = BLOCK.exec(line);
    if (block) {
      // `key: |` becomes `key: x` (a plain scalar of the same length); its body is blanked.
      lines[i] = block[1] + "x".repeat(block[2].length) + " ".repeat(block[3].length);
      blockIndent = indent + (block[1].trimStart().startsWith("- ") ? 2 : 0);
      continue;
    }
    const plain = PLAIN.exec(line);
    if (plain && /\s/.test(plain[2])) lines[i] = plain[1] + "x".repeat(plain[2].length) + " ".repeat(plain[3].length);
  }
  return lines.join("\n");
}
