// Aligned columns for human output. Widths ignore ANSI colour codes so coloured cells line up.
const ANSI = /\u001b\[[0-9;]*m/g;
const visibleLength = (s: string): number => s.replace(ANSI, '').length;

export interface Column {
  header: string;
  align?: 'left' | 'right';
}

export function formatTable(columns: Column[], rows: string[][]): string {
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const pad = (cell: string, i: number): string => {
    const gap = ' '.repeat(widths[i]! - visibleLength(cell));
    return columns[i]?.align === 'right' ? gap + cell : cell + gap;
  };
  const line = (cells: string[]): string => cells.map(pad).join('  ').trimEnd();
  return [line(columns.map((c) => c.header.toUpperCase())), ...rows.map(line)].join('\n');
}
