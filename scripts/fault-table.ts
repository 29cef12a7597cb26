/**
 * Summarises the fault tests' per-run lines (`FAULT <protocol> <scenario> run=<i>
 * decisionMs=<n> [completeMs=<n>]`) as a Markdown table: scenario x protocol, runs, median
 * and worst time from the kill to the decision and to completion.
 *
 *   npx tsx scripts/fault-table.ts .local/test-output.log
 */
import { readFileSync } from 'node:fs';

// Terminal colour codes (ESC [ ... m), so that lines from a coloured reporter match too.
const COLOUR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
const LINE = /FAULT (\S+) (\S+) run=\d+ decisionMs=(\d+)(?: completeMs=(\d+))?/;

interface Row {
  readonly protocol: string;
  readonly scenario: string;
  readonly decisionMs: number[];
  readonly completeMs: number[];
}

const median = (xs: readonly number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : Math.round((sorted[mid - 1]! + sorted[mid]!) / 2);
};
const figures = (xs: readonly number[]): string => (xs.length ? `${median(xs)} / ${Math.max(...xs)}` : 'n/a');

export function faultTable(text: string): string {
  const rows = new Map<string, Row>();
  for (const line of text.replace(COLOUR, '').split('\n')) {
    const match = LINE.exec(line);
    if (!match) continue;
    const [, protocol, scenario, decisionMs, completeMs] = match;
    const key = `${protocol} ${scenario}`;
    const row = rows.get(key) ?? { protocol: protocol!, scenario: scenario!, decisionMs: [], completeMs: [] };
    row.decisionMs.push(Number(decisionMs));
    if (completeMs !== undefined) row.completeMs.push(Number(completeMs));
    rows.set(key, row);
  }
  const header = ['| protocol | scenario | runs | to decision, median / worst (ms) | to completion, median / worst (ms) |', '| --- | --- | --- | --- | --- |'];
  const body = [...rows.values()].map((r) => `| ${r.protocol} | ${r.scenario} | ${r.decisionMs.length} | ${figures(r.decisionMs)} | ${figures(r.completeMs)} |`);
  return [...header, ...body].join('\n');
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: tsx scripts/fault-table.ts <test output>...');
  process.exit(2);
}
console.log(faultTable(files.map((f) => readFileSync(f, 'utf8')).join('\n')));
