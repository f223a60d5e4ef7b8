// The SDK helpers every language has (parse a Kubernetes quantity, format a byte size) agree with
// capgate's own parser on one table of inputs, and a crash says why in every language: the SDK
// logs message and location, the engine names the trapping function. Real builds: asc in
// process, cargo and clang when installed (else those languages skip and say why).
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../runtime/engine/engine.ts';
import { componentize } from '../../runtime/packaging/componentize.ts';
import { compileCProject } from '../../runtime/packaging/project/compile-c-project.ts';
import { compileRustProject } from '../../runtime/packaging/project/compile-rust-project.ts';
import { formatByteSize, parseByteSize } from '../../runtime/simulator/byte-size.ts';
import { findCToolchain } from '../../runtime/packaging/toolchains/c.ts';
import { findRustToolchain } from '../../runtime/packaging/toolchains/rust.ts';
import { compileAssemblyScript, REPO_ROOT } from '../../scripts/build-guests.ts';

// Each probe: no VM label "q" -> a panic; q not a quantity -> deny "invalid"; else log
// formatBytes(value) and deny with the value's decimal digits.
const AS_PROBE = `
import { Decision, Request, deny, log, LogLevel, policy, queryVmIdentity, parseQuantity, formatBytes } from "../../../host-api/assemblyscript/index";
export * from "../../../host-api/assemblyscript/abi";
function decide(req: Request): Decision {
  const vm = queryVmIdentity(req.targetPid);
  if (vm === null) return deny("no-vm");
  const q = vm.label("q");
  if (q === null) throw new Error("no label q");
  const v = parseQuantity(q);
  if (v === null) return deny("invalid");
  log(LogLevel.Info, formatBytes(v.bytes));
  return deny(v.bytes.toString());
}
policy(decide);
`;

const RUST_PROBE = `use capgate_policy::{deny, export_policy, format_bytes, log, parse_quantity, query_vm_identity, Decision, LogLevel, Request};
fn evaluate(req: &Request) -> Decision {
    let vm = match query_vm_identity(req.target_pid) { Some(vm) => vm, None => return deny("no-vm") };
    let q = vm.label("q").expect("no label q");
    match parse_quantity(q) {
        None => deny("invalid"),
        Some(v) => {
            log(LogLevel::Info, &format_bytes(v));
            Decision::Deny(format!("{}", v))
        }
    }
}
export_policy!(evaluate);
`;

const C_PROBE = `#include "capgate_policy.h"
capgate_decision capgate_evaluate(const capgate_request *req) {
  capgate_vm_identity vm;
  if (!capgate_query_vm_identity(req->target_pid, &vm)) return capgate_deny("no-vm");
  capgate_string q;
  CAPGATE_ASSERT(capgate_vm_identity_label(&vm, "q", &q));
  uint64_t value;
  if (!capgate_parse_quantity(q, &value)) return capgate_deny("invalid");
  char text[24];
  capgate_buf b = CAPGATE_BUF(text);
  capgate_buf_bytes(&b, value);
  capgate_log_buf(CAPGATE_LOG_INFO, &b);
  char digits[21];
  return capgate_deny_string((capgate_string){digits, capgate_format_u64(digits, sizeof digits, value)});
}
`;

const INPUTS = [
  '0',
  '1',
  '65536',
  '16Gi',
  '16G',
  '1Ki',
  '1k',
  '64Mi',
  '512M',
  '1Ti',
  '1T',
  '3Pi',
  '2P',
  '15Ei',
  '18E',
  '16Ei',
  '19E',
  '1.5Gi',
  '0.5k',
  '0.25Ki',
  '0.001k',
  '0.0001k',
  '1.50000Gi',
  '2.5',
  '0.5',
  '1.',
  '.5Gi',
  'unlimited',
  'UNLIMITED',
  'max',
  'infinity',
  ' 8Gi ',
  '18446744073709551615',
  '18446744073709551616',
  '99999999999999999999',
  '1536Mi',
  '16000000000',
  '1024000Ki',
  '17592186044416Ki',
  '4GB',
  '64K',
  '512m',
  '8GiB',
  '16g',
  '1ki',
  '8X',
  '',
  '-1',
  '1e9',
  '8 Gi',
  'Gi',
  '0x10',
  '1.5.5Gi',
  '0.00000095367431640625Ei',
  '0.0000009536743164062Ei',
];

interface Probe {
  lang: string;
  skip: string | null;
  build: () => Promise<Uint8Array>;
}

let dir: string;
let engine: Engine;

function missing(find: () => unknown): string | null {
  try {
    find();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

function project(name: string, files: Record<string, string>, sdk: string): string {
  const root = join(dir, name);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  cpSync(join(REPO_ROOT, 'host-api', sdk), join(root, 'capgate-sdk'), {
    recursive: true,
    filter: (s) => !s.includes('/target'),
  });
  return root;
}

const PROBES: Probe[] = [
  {
    lang: 'assemblyscript',
    skip: null,
    build: async () => {
      const entry = join(REPO_ROOT, 'guest-examples/assemblyscript/__probe__/index.ts');
      // Names kept (asc --debug), as `capgate build` does by default.
      return componentize(
        await compileAssemblyScript(entry, { virtualFiles: { [entry]: AS_PROBE }, extraFlags: ['--debug'] }),
      );
    },
  },
  {
    lang: 'rust',
    skip: missing(findRustToolchain),
    build: async () => {
      const cargo = `[package]\nname = "probe"\nversion = "0.1.0"\nedition = "2021"\n[lib]\ncrate-type = ["cdylib"]\npath = "src/lib.rs"\n[dependencies]\ncapgate-policy = { path = "capgate-sdk" }\n[profile.release]\nopt-level = "s"\nlto = true\npanic = "abort"\n[workspace]\n`;
      return componentize(
        compileRustProject(project('rust-probe', { 'Cargo.toml': cargo, 'src/lib.rs': RUST_PROBE }, 'rust')).core,
      );
    },
  },
  {
    lang: 'c',
    skip: missing(findCToolchain),
    build: async () => componentize(compileCProject(project('c-probe', { 'src/policy.c': C_PROBE }, 'c')).core),
  },
];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'capgate-sdk-helpers-'));
  engine = new Engine({ workers: 1, linuxCapabilities: false, limits: { deadlineMs: 5_000 } });
});
afterAll(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

function world(label: string | null) {
  return {
    kind: 'simulated' as const,
    world: {
      requesterPid: 10,
      vms: [
        {
          identity: {
            uuid: 'u',
            name: 'v',
            id: 1,
            labels: label === null ? [] : ([['q', label]] as Array<[string, string]>),
          },
          pids: [10, 11],
        },
      ],
      processes: [],
      canRaiseHardLimit: true,
    },
  };
}

const request = { operation: 'set-memlock' as const, requesterPid: 10, requesterUid: 0, targetPid: 11, bytes: 1n };

describe.each(PROBES)('the $lang SDK', (probe) => {
  if (probe.skip) console.warn(`SKIP the ${probe.lang} SDK helper tests: ${probe.skip}`);
  let sha: string;
  beforeAll(async () => {
    if (probe.skip) return;
    const compiled = await engine.compile(await probe.build());
    if (!compiled.ok) throw new Error(compiled.message);
    sha = compiled.policy.sha256;
  }, 300_000);

  it.skipIf(probe.skip !== null)('parses and formats quantities exactly as capgate does', async () => {
    for (const input of INPUTS) {
      const o = await engine.evaluate(sha, request, world(input));
      const expected = parseByteSize(input);
      if (expected.ok) {
        expect([input, o.reason, o.logs]).toEqual([
          input,
          String(expected.bytes),
          [{ level: 'info', message: formatByteSize(expected.bytes) }],
        ]);
      } else {
        expect([input, o.reason]).toEqual([input, 'invalid']);
      }
    }
  });

  it.skipIf(probe.skip !== null)(
    'says why it crashed: the SDK logs message and location, the engine names the function',
    async () => {
      const o = await engine.evaluate(sha, request, world(null));
      expect(o.errorKind).toBe('trap');
      const [line] = o.logs;
      expect(line?.level).toBe('error');
      const location = {
        assemblyscript: /^panic: no label q at .*__probe__\/index\.ts:8:\d+$/,
        rust: /^panic: no label q at src\/lib\.rs:4:\d+$/,
        c: /^panic: assertion failed: capgate_vm_identity_label\(&vm, "q", &q\) at src\/policy\.c:6 \(in capgate_evaluate\)$/,
      }[probe.lang]!;
      expect(line!.message).toMatch(location);
      const site = {
        assemblyscript:
          /^evaluate: unreachable, in .*capgateAbort \(wasm function \d+\), called from .*__probe__\/index\/decide \(wasm function \d+\)$/,
        rust: /^evaluate: unreachable, in rust_panic \(wasm function \d+\), called from evaluate \(wasm function \d+\)$/,
        c: /^evaluate: unreachable, in capgate_fail \(wasm function \d+\), called from capgate_evaluate \(wasm function \d+\)$/,
      }[probe.lang]!;
      expect(o.errorDetail).toMatch(site);
    },
  );
});
