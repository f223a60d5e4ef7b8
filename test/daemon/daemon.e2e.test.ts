// Against a real daemon process: push the AssemblyScript memlock-cap policy, register a VM
// for a spawned process tree, request from inside it, and see the real limit in /proc and the
// audit record. Plus identity denials, bindings, bad input and the admin allow-list.
import fs from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapgateApiError, CapgateRequestClient } from '../../runtime/client/index.ts';
import { daemonConfig, spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { asPolicy, memlockOf, MiB, sha256, vmFor } from './helpers/fixtures.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { VmAgent } from './helpers/vm-agent-handle.ts';
import { runChild } from '../support/processes/children.ts';

let daemon: DaemonProcess;
let agent: VmAgent;
let target: number;
let vmUuid: string;

beforeAll(async () => {
  const dir = tempDir();
  fs.chmodSync(dir, 0o755); // the uid-65534 client below must reach the sockets
  daemon = await spawnDaemon(
    daemonConfig(dir, {
      // World-connectable admin socket, so that the allow-list (not the file mode) is what refuses.
      admin: { socketMode: 0o666 },
      http: { headersTimeoutMs: 500, requestTimeoutMs: 2000, keepAliveTimeoutMs: 500, maxJsonBytes: 1024 },
    }),
  );
  agent = await VmAgent.start();
  target = await agent.spawnTarget();
});

afterAll(async () => {
  await agent?.stop();
  await daemon?.stop();
  removeTempDirs();
});

const ask = (bytes: bigint | 'unlimited', pid = target) => agent.requestOnce(daemon.requestSocket, pid, bytes);

describe('the request path end to end', () => {
  it('pushes, inspects and binds a real AS policy', async () => {
    const wasm = asPolicy('memlock-cap');
    const pushed = await daemon.admin.pushPolicy('memlock-cap', wasm, { description: 'guest RAM plus overhead' });
    expect(pushed.created).toBe(true);
    expect(pushed.revision).toMatchObject({
      policy: 'memlock-cap',
      revision: 1,
      sha256: sha256(wasm),
      size: wasm.byteLength,
      description: 'guest RAM plus overhead',
    });
    expect((await daemon.admin.pushPolicy('memlock-cap', wasm)).created).toBe(false);
    const info = await daemon.admin.getRevision('memlock-cap', 1);
    expect(info.imports).toContain('capgate:policy/host@1.0.0');
    expect(info.exports).toContain('evaluate');
    expect(info.wit).toContain('evaluate');
    expect(info.limits.fuel).toBeGreaterThan(0);
    expect(Buffer.from(await daemon.admin.getRevisionWasm('memlock-cap', 1)).equals(Buffer.from(wasm))).toBe(true);
    const bound = await daemon.admin.bind('set-memlock', { policy: 'memlock-cap' });
    expect(bound.binding).toMatchObject({ policy: 'memlock-cap', revision: 1, sha256: sha256(wasm) });
    const reg = vmFor(agent.pid, 'vm-a', [['memory-bytes', String(1n * MiB)]]);
    vmUuid = reg.identity.uuid;
    const vm = await daemon.admin.registerVm(reg);
    expect(vm.vm.anchor.rootPid).toBe(agent.pid);
    expect((await daemon.admin.listVms()).vms.map((v) => v.identity.uuid)).toEqual([vmUuid]);
  }, 240_000);

  // The body is copied into place as it arrives when its length is declared (readBody); without
  // one (chunked), it is gathered and joined at the end: both store the same bytes and hash.
  it.each([
    ['with a content-length, in pieces', false],
    ['chunked, without a content-length', true],
  ])('an upload sent %s is stored byte for byte under its sha256', async (_how, chunked) => {
    const wasm = Buffer.from(asPolicy('memlock-cap'));
    const name = chunked ? 'upload-chunked' : 'upload-declared';
    const head = `POST /v1/policies?name=${name} HTTP/1.1\r\nhost: x\r\ncontent-type: application/wasm\r\n${
      chunked ? 'transfer-encoding: chunked' : `content-length: ${wasm.length}`
    }\r\n\r\n`;
    const pieces = [wasm.subarray(0, 1000), wasm.subarray(1000, 5000), wasm.subarray(5000)];
    const sent = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const s = net.connect(daemon.adminSocket);
      let data = '';
      s.on('data', (c) => {
        data += c.toString();
        const len = Number(/content-length: (\d+)/i.exec(data)?.[1] ?? -1);
        if (len >= 0 && data.length - data.indexOf('\r\n\r\n') - 4 >= len) {
          s.destroy();
          resolve({
            status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1]),
            body: data.slice(data.indexOf('\r\n\r\n') + 4),
          });
        }
      });
      s.on('error', reject);
      s.write(head);
      for (const p of pieces)
        s.write(chunked ? Buffer.concat([Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')]) : p);
      if (chunked) s.write('0\r\n\r\n');
    });
    expect(sent.status, sent.body).toBe(201);
    expect(JSON.parse(sent.body).revision).toMatchObject({ policy: name, sha256: sha256(wasm), size: wasm.length });
    expect(Buffer.from(await daemon.admin.getRevisionWasm(name, 1)).equals(wasm)).toBe(true);
  });

  it('a request from inside the VM changes the real limit and is audited before the answer', async () => {
    const { reason, id } = await ask(4n * MiB);
    expect(reason).toBe('allow:');
    expect(memlockOf(target)).toEqual({ soft: String(4n * MiB), hard: String(4n * MiB) });
    const { record } = await daemon.admin.getAuditRecord(id);
    expect(record).toMatchObject({
      decisionId: id,
      requester: { pid: agent.pid, uid: 0, gid: 0 },
      vm: { uuid: vmUuid, name: 'vm-a' },
      operation: 'set-memlock',
      targetPid: target,
      bytes: String(4n * MiB),
      policy: { name: 'memlock-cap', revision: 1 },
      decision: 'allow',
      reason: '',
    });
    expect(record.capabilityCalls).toEqual([
      { op: 'query-vm-identity', pid: target, result: 'some', vmUuid },
      {
        op: 'set-memlock',
        pid: target,
        bytes: String(4n * MiB),
        result: 'ok',
        before: { soft: String(8n * MiB), hard: String(8n * MiB) },
      },
    ]);
    expect(record.logs).toEqual([{ level: 'info', message: 'memlock raised' }]);
    expect(record.fuelUsed).toBeGreaterThan(0);
  });

  it('the policy denies over its cap, and the kernel refuses raising a hard limit (no CAP_SYS_RESOURCE)', async () => {
    // cap = memory-bytes (1 MiB) + 256 MiB of VMM overhead
    expect((await ask(258n * MiB)).reason).toBe('deny:over-cap');
    expect((await ask(5n * MiB)).reason).toBe('deny:set-memlock-failed: not-permitted');
    expect(memlockOf(target)).toEqual({ soft: String(4n * MiB), hard: String(4n * MiB) });
  });

  it('a target outside the requester VM is out of reach, whatever the policy', async () => {
    const before = memlockOf(daemon.pid);
    expect((await ask(1n * MiB, daemon.pid)).reason).toBe('deny:target-not-in-requester-vm');
    expect(memlockOf(daemon.pid)).toEqual(before);
  });

  it('a requester in no registered VM is denied unknown-requester, audited, and no policy runs', async () => {
    const client = new CapgateRequestClient({ socketPath: daemon.requestSocket });
    const d = await client.setMemlock(process.pid, 1n * MiB);
    client.close();
    expect(d).toMatchObject({ decision: 'deny', reason: 'unknown-requester', errorKind: 'unknown-requester' });
    const { record } = await daemon.admin.getAuditRecord(d.decisionId);
    expect(record).toMatchObject({ requester: { pid: process.pid }, vm: null, policy: null, capabilityCalls: [] });
  });

  it('switches bindings atomically, rolls back, refuses deleting a bound revision, denies no-policy when unbound', async () => {
    await daemon.admin.pushPolicy('memlock-cap', asPolicy('vfio-only'));
    await daemon.admin.bind('set-memlock', { policy: 'memlock-cap', revision: 2 });
    const r2 = await ask(4n * MiB);
    expect(r2.reason).toBe('deny:vm-not-vfio');
    expect((await daemon.admin.getAuditRecord(r2.id)).record.policy).toMatchObject({ revision: 2 });
    await expect(daemon.admin.deleteRevision('memlock-cap', 2)).rejects.toMatchObject({
      status: 409,
      code: 'conflict',
    });
    const rolled = await daemon.admin.rollback('set-memlock');
    expect(rolled).toMatchObject({ binding: { revision: 1 }, previous: { revision: 2 } });
    expect((await ask(4n * MiB)).reason).toBe('allow:');
    expect(await daemon.admin.deleteRevision('memlock-cap', 2)).toEqual({
      deleted: { policy: 'memlock-cap', revision: 2 },
    });
    await daemon.admin.unbind('set-memlock');
    const np = await ask(4n * MiB);
    expect(np.reason).toBe('deny:no-policy');
    expect((await daemon.admin.getAuditRecord(np.id)).record).toMatchObject({
      errorKind: 'no-policy',
      policy: null,
      vm: { uuid: vmUuid },
    });
    await daemon.admin.rollback('set-memlock');
    expect((await daemon.admin.getBinding('set-memlock')).binding).toMatchObject({ revision: 1 });
  });

  it('queries the audit log by VM, decision and policy with a cursor', async () => {
    const all = await daemon.admin.queryAudit({ vm: 'vm-a', limit: 1000 });
    expect(all.records).toHaveLength(7); // every decision of vm-a above
    expect(all.records.every((r) => r.vm?.name === 'vm-a')).toBe(true);
    const denies = await daemon.admin.queryAudit({ decision: 'deny', policy: 'memlock-cap', limit: 1000 });
    expect(denies.records.length).toBeGreaterThan(0);
    expect(denies.records.every((r) => r.decision === 'deny' && r.policy?.name === 'memlock-cap')).toBe(true);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await daemon.admin.queryAudit({ vm: vmUuid, limit: 3, ...(cursor ? { cursor } : {}) });
      seen.push(...page.records.map((r) => r.decisionId));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(all.records.map((r) => r.decisionId));
    await expect(daemon.admin.queryAudit({ since: 'yesterday' })).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining('since'),
    });
  });

  it('exports Prometheus metrics', async () => {
    const text = await daemon.admin.metrics();
    expect(text).toMatch(/capgate_decisions_total\{policy="memlock-cap",decision="allow",error_kind=""\} [1-9]/);
    expect(text).toMatch(/capgate_decisions_total\{policy="",decision="deny",error_kind="unknown-requester"\} 1/);
    expect(text).toMatch(/capgate_evaluation_duration_seconds_count\{policy="memlock-cap"\} [1-9]/);
    expect(text).toMatch(/capgate_vms_registered 1/);
    expect(text).toMatch(/capgate_policies_loaded [1-9]/);
    // The WAL is checkpointed by the worker, never inside a commit; nothing failed.
    expect(text).toMatch(/capgate_wal_checkpoints_total\{result="failed"\} 0/);
    expect(text).toMatch(/capgate_wal_frames_waiting \d+/);
    expect(text).toMatch(/capgate_audit_backlog_records \d+/);
  });
});

/** Raw HTTP over the socket: what curl would send. */
function raw(
  socketPath: string,
  request: string,
  waitForClose = false,
): Promise<{ status: number; body: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let data = '';
    let closed = false;
    const done = (): void => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      resolve({ status, body: data.slice(data.indexOf('\r\n\r\n') + 4), closed });
    };
    s.on('data', (c) => {
      data += c.toString();
      if (!waitForClose && /\r\n\r\n/.test(data)) {
        const len = Number(/content-length: (\d+)/i.exec(data)?.[1] ?? -1);
        if (len >= 0 && data.length - data.indexOf('\r\n\r\n') - 4 >= len) s.destroy(), done();
      }
    });
    s.on('close', () => ((closed = true), done()));
    s.on('error', reject);
    s.write(request);
  });
}

describe('bad input gets a clear 4xx JSON error and the daemon keeps serving', () => {
  const post = (path: string, body: string, type = 'application/json') =>
    `POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: ${type}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

  it.each([
    ['malformed JSON', post('/v1/operations/set-memlock', '{"targetPid": 1,'), 400, 'bad-request', 'not valid JSON'],
    [
      'wrong types',
      post('/v1/operations/set-memlock', '{"targetPid": "1", "bytes": 5}'),
      400,
      'bad-request',
      'targetPid',
    ],
    [
      'identity in the body',
      post('/v1/operations/set-memlock', '{"targetPid": 1, "bytes": 5, "uid": 0}'),
      400,
      'bad-request',
      'uid',
    ],
    ['bad bytes', post('/v1/operations/set-memlock', '{"targetPid": 1, "bytes": -5}'), 400, 'bad-request', 'bytes'],
    [
      'oversized body',
      post('/v1/operations/set-memlock', `{"targetPid": 1, "bytes": "${'9'.repeat(2000)}"}`),
      413,
      'payload-too-large',
      '1024 bytes',
    ],
    ['unknown route', 'GET /v2/everything HTTP/1.1\r\nhost: x\r\n\r\n', 404, 'not-found', '/v2/everything'],
    ['wrong method', 'GET /v1/operations/set-memlock HTTP/1.1\r\nhost: x\r\n\r\n', 405, 'method-not-allowed', 'GET'],
    [
      'wrong content type',
      post('/v1/operations/set-memlock', 'x', 'text/xml'),
      415,
      'unsupported-media-type',
      'text/xml',
    ],
  ])('request socket: %s', async (_name, request, status, code, text) => {
    const r = await raw(daemon.requestSocket, request);
    expect(r.status).toBe(status);
    const body = JSON.parse(r.body) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(body.error.message).toContain(text);
  });

  it.each([
    ['non-wasm content type', post('/v1/policies?name=x', 'hello', 'text/plain'), 415, 'unsupported-media-type'],
    ['not a component', post('/v1/policies?name=x', 'hello', 'application/wasm'), 422, 'invalid-policy'],
    ['no name', post('/v1/policies', '\0asm', 'application/wasm'), 400, 'bad-request'],
    ['bad name', post('/v1/policies?name=..%2Fetc', '\0asm', 'application/wasm'), 400, 'bad-request'],
    ['bad VM registration', post('/v1/vms', '{"identity": {"uuid": "nope"}}'), 400, 'bad-request'],
    [
      'unknown operation',
      'PUT /v1/bindings/set-everything HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}',
      404,
      'not-found',
    ],
  ])('admin socket: %s', async (_name, request, status, code) => {
    const r = await raw(daemon.adminSocket, request);
    expect(r.status).toBe(status);
    expect((JSON.parse(r.body) as { error: { code: string } }).error.code).toBe(code);
  });

  it('a slow client that never finishes its headers is cut off with 408', async () => {
    const r = await raw(daemon.requestSocket, 'POST /v1/operations/set-memlock HTTP/1.1\r\nhost: x\r\n', true);
    expect(r.closed).toBe(true);
    expect(r.status).toBe(408);
  });

  it('an idle connection is closed, and malformed HTTP gets 400', async () => {
    const idle = await new Promise<boolean>((resolve) => {
      const s = net.connect(daemon.requestSocket);
      s.on('close', () => resolve(true));
      s.on('error', () => resolve(true));
    });
    expect(idle).toBe(true);
    expect((await raw(daemon.requestSocket, 'NOT HTTP AT ALL\r\n\r\n', true)).status).toBe(400);
  });

  it('still answers after all of that', async () => {
    expect((await daemon.admin.health()).status).toBe('ok');
    expect((await ask(4n * MiB)).reason).toBe('allow:');
  });
});

describe('admin access', () => {
  it('refuses a peer whose uid is not on the allow-list, with 403, even when it can connect', async () => {
    const script = `
      const http = require('node:http');
      const req = http.request({ socketPath: ${JSON.stringify(daemon.adminSocket)}, path: '/v1/policies', method: 'GET' }, (res) => {
        let b = ''; res.on('data', (c) => (b += c)); res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body: b })));
      });
      req.on('error', (e) => console.log(JSON.stringify({ error: e.code })));
      req.end();`;
    const out = await runChild(process.execPath, ['-e', script], { uid: 65534, gid: 65534, cwd: '/' });
    expect(out.stderr).toBe('');
    const r = JSON.parse(out.stdout) as { status: number; body: string };
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body)).toMatchObject({
      error: { code: 'forbidden', message: expect.stringContaining('uid 65534') },
    });
  });

  it('the same uid may still use the request socket (and is unknown there)', async () => {
    const script = `
      const http = require('node:http');
      const req = http.request({ socketPath: ${JSON.stringify(daemon.requestSocket)}, path: '/v1/operations/set-memlock', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        let b = ''; res.on('data', (c) => (b += c)); res.on('end', () => console.log(b));
      });
      req.end(JSON.stringify({ targetPid: 1, bytes: 1 }));`;
    const out = await runChild(process.execPath, ['-e', script], { uid: 65534, gid: 65534, cwd: '/' });
    expect(JSON.parse(out.stdout)).toMatchObject({ decision: 'deny', reason: 'unknown-requester' });
  });

  it('the client library reports a refused admin call as a typed error', async () => {
    await expect(daemon.admin.getPolicy('no-such-policy')).rejects.toBeInstanceOf(CapgateApiError);
    await expect(daemon.admin.getPolicy('no-such-policy')).rejects.toMatchObject({ status: 404, code: 'not-found' });
  });
});
