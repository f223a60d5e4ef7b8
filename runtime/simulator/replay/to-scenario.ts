// Turns the decisions a replay found changed into scenario cases (`capgate test --from-audit
// audit.json --write-scenario out.yaml`): each case carries the world rebuilt from its record
// and expects what the new policy decided, so the change becomes a regression test. The old
// decision is kept in a comment beside it.
import type { CapabilityCall } from '../../engine/outcome.ts';
import type { SimulatedWorld } from '../../capabilities/simulated/world.ts';
import { formatByteSize } from '../byte-size.ts';
import type { ReplayedDecision, ReplayResult } from './replay.ts';
import { replayInputFrom } from './world-from-record.ts';

/** A YAML double-quoted scalar: JSON's string escapes are valid YAML. */
const q = (s: string): string => JSON.stringify(s);

const verdict = (decision: string, reason: string): string => (decision === 'allow' ? 'allow' : `deny(${reason})`);

function callLine(c: CapabilityCall): string {
  if (c.op === 'query-vm-identity') return `{ op: query-vm-identity, pid: ${c.pid}, result: ${c.result} }`;
  return `{ op: set-memlock, pid: ${c.pid}, bytes: ${formatByteSize(c.bytes)}, result: ${c.result} }`;
}

function worldLines(world: SimulatedWorld, absentPids: number[]): string[] {
  const lines = ['    vms:'];
  for (const vm of world.vms) {
    const labels = vm.identity.labels.map(([k, v]) => `${q(k)}: ${q(v)}`).join(', ');
    lines.push(
      `      - { uuid: ${q(vm.identity.uuid)}, name: ${q(vm.identity.name)}, id: ${vm.identity.id}, labels: { ${labels} }, pids: [${vm.pids.join(', ')}] }`,
    );
  }
  lines.push(world.processes.length === 0 ? '    processes: []' : '    processes:');
  for (const p of world.processes)
    lines.push(
      `      - { pid: ${p.pid}, memlock: { soft: ${formatByteSize(p.memlock.soft)}, hard: ${formatByteSize(p.memlock.hard)} } }`,
    );
  lines.push(`    absentPids: [${absentPids.join(', ')}]`);
  return lines;
}

function caseLines(r: ReplayedDecision): string[] {
  const input = replayInputFrom(r.record);
  if (input === null) return []; // not replayed: nothing to write
  const rec = r.record;
  const o = r.outcome;
  const req = input.request;
  const lines = [
    `  - name: ${q(`${rec.decisionId}: ${verdict(rec.decision, rec.reason)} -> ${verdict(o.decision, o.reason)}`)}`,
    `    # recorded ${rec.time}${rec.policy ? ` by ${rec.policy.name} rev ${rec.policy.revision}` : ''}: ${verdict(rec.decision, rec.reason)}`,
    ...input.assumptions.map((a) => `    # assumed: ${a}`),
    `    host: { canRaiseHardLimit: ${input.world.canRaiseHardLimit} }`,
    ...worldLines(input.world, input.absentPids),
    `    request: { requesterPid: ${req.requesterPid}, requesterUid: ${req.requesterUid}, targetPid: ${req.targetPid}, bytes: ${formatByteSize(req.bytes)} }`,
    '    expect:',
    `      decision: ${o.decision}`,
    ...(o.decision === 'deny'
      ? [`      reason: ${q(o.reason.startsWith('/') ? `/^${escapeRegex(o.reason)}$/` : o.reason)}`]
      : []),
    o.capabilityCalls.length === 0 ? '      calls: []' : '      calls:',
    ...o.capabilityCalls.map((c) => `        - ${callLine(c)}`),
  ];
  return lines;
}

/** A reason starting with "/" would read as a pattern: write it as an anchored, escaped one. */
function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** The scenario text, or null when no decision changed (a scenario needs at least one case). */
export function scenarioFromReplay(result: ReplayResult, source: string): string | null {
  const changed = result.replayed.filter((r) => r.change !== 'none');
  if (changed.length === 0) return null;
  const header = [
    `# Written by \`capgate test --from-audit ${source} --write-scenario\`: the ${changed.length} recorded decision(s)`,
    '# the tested policy changes. Each case expects the new decision; the old one is in its comment.',
    '# Each case runs in the world rebuilt from its audit record (its own vms, processes, absentPids).',
    'cases:',
  ];
  return `${[...header, ...changed.flatMap(caseLines)].join('\n')}\n`;
}
