// Parses docs/asyncapi.yaml with the official AsyncAPI parser (with its Spectral ruleset);
// exits 1 on any diagnostic of severity 0 (error), printing every diagnostic.
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';

const path = process.argv[2] ?? new URL('../../docs/asyncapi.yaml', import.meta.url).pathname;
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(path, 'utf8'), { source: path });
for (const d of diagnostics) {
  console.log(`severity ${d.severity} ${d.code} ${d.path.join('.')}: ${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === 0);
if (errors.length > 0 || document === undefined) {
  console.log(`FAIL: ${errors.length} error(s)`);
  process.exit(1);
}
console.log(`OK: ${document.channels().length} channels, ${document.operations().length} operations`);
