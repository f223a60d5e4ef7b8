// Where in the policy a trap happened, from the wasm frames of V8's stack trace: the trapping
// function's name (from the module's name section, kept by instrument/names.ts) or its index.
// When that function belongs to a language runtime or SDK (a Rust panic, an AssemblyScript
// abort, the C SDK's capgate_fail), the first frame of the policy's own code is named too.
// Names are the guest's: sanitized and bounded before they reach an audit record.
import { sanitizeName } from './instrument/sanitize-name.ts';

interface WasmFrame {
  name: string | undefined;
  index: number;
}

// A wasm frame as V8 prints it: "NAME (wasm://wasm/1a2b3c4d:wasm-function[12]:0x1f4)" or
// "wasm://wasm/...:wasm-function[12]:0x1f4"; a line of the stack's text has "    at " before it.
const FRAME_TEXT = String.raw`(?:(.*) \()?wasm:\/\/wasm\/[0-9a-f]+:wasm-function\[(\d+)\]:0x[0-9a-f]+\)?$`;
const FRAME = new RegExp(`^${FRAME_TEXT}`);
const FRAME_LINE = new RegExp(`^\\s*at ${FRAME_TEXT}`);

function frameOf(m: RegExpExecArray | null): WasmFrame | undefined {
  return m ? { name: m[1], index: Number(m[2]) } : undefined;
}

/**
 * The error's wasm frames, top first. Read from V8's call sites, each wasm one printed alone (the
 * text of that frame in the stack), while the stack has not been printed yet: the whole stack as
 * text, its JavaScript frames with their file URLs, cost ~5 KB of garbage per trap on the daemon's
 * thread, and trapping is a hostile VM's cheapest flood. The stack then holds the call sites.
 */
function wasmFrames(err: Error): WasmFrame[] {
  const out: WasmFrame[] = [];
  const saved = Error.prepareStackTrace;
  let stack: unknown;
  Error.prepareStackTrace = (_err, sites) => sites;
  try {
    stack = err.stack;
  } finally {
    Error.prepareStackTrace = saved;
  }
  if (Array.isArray(stack)) {
    for (const site of stack as Array<NodeJS.CallSite | undefined>) {
      // (An array some other prepareStackTrace made, before: not call sites, no frames from it.)
      if (typeof site?.getFileName !== 'function' || site.getFileName()?.startsWith('wasm://') !== true) continue;
      const frame = frameOf(FRAME.exec(String(site)));
      if (frame) out.push(frame);
    }
  } else if (typeof stack === 'string') {
    for (const line of stack.split('\n')) {
      const frame = frameOf(FRAME_LINE.exec(line));
      if (frame) out.push(frame);
    }
  }
  return out;
}

/** Rust's legacy mangling: _ZN4core9panicking5panic17h0123456789abcdefE -> core::panicking::panic. */
export function demangle(name: string): string {
  const m = /^_ZN(.+)E(\.\d+)?$/.exec(name);
  if (!m) return name;
  const parts: string[] = [];
  let rest = m[1]!;
  while (rest.length > 0) {
    const len = /^(\d+)/.exec(rest);
    if (!len) return name;
    const n = Number(len[1]);
    const part = rest.slice(len[1]!.length, len[1]!.length + n);
    if (part.length !== n) return name;
    parts.push(part);
    rest = rest.slice(len[1]!.length + n);
  }
  if (/^h[0-9a-f]{16}$/.test(parts.at(-1) ?? '')) parts.pop();
  const unmangle = (p: string): string =>
    p
      .replace(/^_\$/, '$')
      .replace(/\$LT\$/g, '<')
      .replace(/\$GT\$/g, '>')
      .replace(/\$RF\$/g, '&')
      .replace(/\$BP\$/g, '*')
      .replace(/\$LP\$/g, '(')
      .replace(/\$RP\$/g, ')')
      .replace(/\$C\$/g, ',')
      .replace(/\$SP\$/g, '@')
      .replace(/\$u([0-9a-f]{2})\$/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
      .replace(/\.\./g, '::');
  return parts.map(unmangle).join('::');
}

const RUNTIME = [
  /^(core|std|alloc|compiler_builtins|dlmalloc)::/,
  /^<(core|std|alloc)::/,
  /^(__rust|rust_panic|rust_begin_unwind|__rdl_|__rg_)/,
  /^capgate_policy::/, // the Rust SDK
  /^capgate_(fail|alloc|realloc)$/, // the C SDK
  /^~lib\//, // AssemblyScript's standard library
  /capgateAbort$/, // the AssemblyScript SDK's abort handler
  /^capgate_(memory_grow|bulk_)/, // the engine's own instrumentation helpers
];

const isRuntime = (name: string | undefined): boolean => name !== undefined && RUNTIME.some((r) => r.test(name));

function show(f: WasmFrame): string {
  return f.name === undefined
    ? `wasm function ${f.index}`
    : `${sanitizeName(demangle(f.name))} (wasm function ${f.index})`;
}

/** ", in NAME (wasm function N)[, called from ...]", or "" when the error has no wasm frame. */
export function trapSite(err: unknown): string {
  if (!(err instanceof Error)) return '';
  const frames = wasmFrames(err).map((f) => (f.name === undefined ? f : { ...f, name: demangle(f.name) }));
  const top = frames[0];
  if (top === undefined) return '';
  let where = `, in ${show(top)}`;
  if (isRuntime(top.name)) {
    const own = frames.find((f) => f.name !== undefined && !isRuntime(f.name));
    if (own) where += `, called from ${show(own)}`;
  }
  return where;
}
