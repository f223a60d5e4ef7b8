// The OpenAPI 3.1 document: generated from the route table and the wire schemas, committed as
// docs/openapi.json, valid by a maintained validator, listing exactly the routes the routers
// serve, served by both sockets (each its own routes), and describing what a real daemon answers:
// every route is called and every answer (status, content type, body) is checked against it.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CAPGATE_VERSION } from '../../runtime/daemon/daemon.ts';
import { adminRouter, type AdminApiOptions } from '../../runtime/server/admin/admin-api.ts';
import { requestHandler, type RequestApiOptions } from '../../runtime/server/request/request-api.ts';
import { openApiDocument, type ApiSocket } from '../../runtime/wire/openapi.ts';
import type { RouteSpec } from '../../runtime/wire/index.ts';
import { generatedDocs } from '../../scripts/generate-docs.ts';
import { daemonConfig, REPO_ROOT, spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { asPolicy, MiB, vmFor } from './helpers/fixtures.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { VmAgent } from './helpers/vm-agent-handle.ts';

type Doc = {
  paths: Record<string, Record<string, Operation | unknown>>;
  servers: Array<{ url: string }>;
  components: { schemas: Record<string, unknown> };
};
interface Operation {
  operationId: string;
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
}
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

const committed = (): Doc => JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'docs/openapi.json'), 'utf8')) as Doc;

/** "METHOD /path/{param}" of every operation in a document. */
function operationsOf(doc: Doc): string[] {
  return Object.entries(doc.paths)
    .flatMap(([p, item]) =>
      Object.keys(item)
        .filter((m) => METHODS.includes(m))
        .map((m) => `${m.toUpperCase()} ${p}`),
    )
    .sort();
}

const routeKeys = (routes: readonly RouteSpec[]): string[] =>
  routes.map((r) => `${r.method} ${r.path.replace(/:([a-zA-Z]+)/g, '{$1}')}`).sort();

describe('the generated document', () => {
  it('is committed as docs/openapi.json exactly as `npm run docs` writes it', () => {
    expect(fs.readFileSync(path.join(REPO_ROOT, 'docs/openapi.json'), 'utf8')).toBe(
      generatedDocs()['docs/openapi.json'],
    );
  });

  it('is a valid OpenAPI 3.1 document for swagger-parser, which does refuse a broken one', async () => {
    await SwaggerParser.validate(structuredClone(committed()) as never);
    for (const socket of ['admin', 'request'] as const)
      await SwaggerParser.validate(openApiDocument(socket, CAPGATE_VERSION) as never);
    const broken = committed();
    const op = broken.paths['/v1/health']!.get as Operation;
    (op as unknown as Record<string, unknown>).responses = {
      200: { content: { 'application/json': { schema: { $ref: '#/components/schemas/NoSuchSchema' } } } },
    };
    await expect(SwaggerParser.validate(broken as never)).rejects.toThrow();
  });

  it('lists exactly the routes each router registers, both ways', () => {
    // The routers as the daemon builds them; building one registers its routes and calls nothing.
    const admin = adminRouter({ maxJsonBytes: 1024, version: 't' } as unknown as AdminApiOptions).routes;
    const request = requestHandler({ version: 't' } as unknown as RequestApiOptions).routes;
    expect(operationsOf(openApiDocument('admin', 't') as unknown as Doc)).toEqual(routeKeys(admin));
    expect(operationsOf(openApiDocument('request', 't') as unknown as Doc)).toEqual(routeKeys(request));
    expect(operationsOf(committed())).toEqual([...new Set([...routeKeys(admin), ...routeKeys(request)])].sort());
  });
});

// ---- a real daemon, every route called, every answer checked against the document ----

let daemon: DaemonProcess;
let agent: VmAgent;
const doc = committed();
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
ajv.addSchema(doc as object, 'openapi');
const validators = new Map<string, ValidateFunction>();
const answered = new Map<ApiSocket, Set<string>>([
  ['admin', new Set()],
  ['request', new Set()],
]);

interface Answer {
  status: number;
  contentType: string;
  body: Buffer;
  json: unknown;
}

function call(
  socketPath: string,
  method: string,
  target: string,
  body?: { type: string; data: Buffer | string },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = body
      ? { 'content-type': body.type, 'content-length': Buffer.byteLength(body.data) }
      : {};
    const req = http.request({ socketPath, method, path: target, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const contentType = String(res.headers['content-type'] ?? '');
        resolve({
          status: res.statusCode ?? 0,
          contentType,
          body: raw,
          json: contentType.startsWith('application/json') ? (JSON.parse(raw.toString('utf8')) as unknown) : undefined,
        });
      });
    });
    req.on('error', reject);
    req.end(body?.data);
  });
}

/** The operation of the document that `method target` on `socket` is, or a failed expectation. */
function operationFor(
  socket: ApiSocket,
  method: string,
  target: string,
): { id: string; op: Operation; pointer: string } {
  const pathname = new URL(target, 'http://x').pathname;
  for (const [template, item] of Object.entries(doc.paths)) {
    const re = new RegExp(`^${template.replace(/\{[a-zA-Z]+\}/g, '[^/]+')}$`);
    if (!re.test(pathname)) continue;
    const op = (item as Record<string, unknown>)[method.toLowerCase()] as Operation | undefined;
    if (op === undefined) continue;
    const servers = ((item as { servers?: Array<{ url: string }> }).servers ?? doc.servers).map((s) => s.url);
    expect(servers, `${method} ${template} is documented on the ${socket} socket`).toContain(`http://${socket}.sock`);
    return {
      id: op.operationId,
      op,
      pointer: `#/paths/${template.replace(/~/g, '~0').replace(/\//g, '~1')}/${method.toLowerCase()}`,
    };
  }
  throw new Error(`${method} ${pathname} is not in docs/openapi.json`);
}

/** Calls the daemon and checks the answer's status, content type and body against the document. */
async function checked(
  socket: ApiSocket,
  method: string,
  target: string,
  body?: { type: string; data: Buffer | string },
): Promise<Answer> {
  const a = await call(socket === 'admin' ? daemon.adminSocket : daemon.requestSocket, method, target, body);
  const { id, op, pointer } = operationFor(socket, method, target);
  const statusKey = String(a.status) in op.responses ? String(a.status) : `${String(a.status)[0]}XX`;
  const response = op.responses[statusKey];
  expect(response, `${method} ${target} answered ${a.status}, which ${id} does not document`).toBeDefined();
  const media = a.contentType.split(';')[0]!.trim();
  const content = response!.content?.[media];
  expect(content, `${method} ${target} answered ${media}, which ${id} ${statusKey} does not document`).toBeDefined();
  if (media === 'application/json') {
    const key = `${pointer}/responses/${statusKey}`;
    let validate = validators.get(key);
    if (validate === undefined) {
      validate = ajv.compile({ $ref: `openapi${pointer}/responses/${statusKey}/content/application~1json/schema` });
      validators.set(key, validate);
    }
    expect(
      validate(a.json),
      `${method} ${target} (${a.status}): ${JSON.stringify(validate.errors)}\n${JSON.stringify(a.json).slice(0, 800)}`,
    ).toBe(true);
  }
  if (a.status < 300) answered.get(socket)!.add(id);
  return a;
}

const json = (value: unknown) => ({ type: 'application/json', data: JSON.stringify(value) });

describe('a real daemon answers as the document says', () => {
  beforeAll(async () => {
    daemon = await spawnDaemon(daemonConfig(tempDir()));
    agent = await VmAgent.start();
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await daemon?.stop();
    removeTempDirs();
  });

  it('serves each socket its own document at GET /v1/openapi.json', async () => {
    for (const socket of ['admin', 'request'] as const) {
      const a = await checked(socket, 'GET', '/v1/openapi.json');
      expect(a.status).toBe(200);
      expect(a.json).toEqual(openApiDocument(socket, CAPGATE_VERSION));
    }
  });

  it('every admin route, with successes and refusals', async () => {
    const wasm = Buffer.from(asPolicy('memlock-cap'));
    const q = 'name=memlock-cap&description=test';
    expect((await checked('admin', 'GET', '/v1/health')).status).toBe(200);
    expect((await checked('admin', 'GET', '/v1/metrics')).status).toBe(200);
    expect((await checked('admin', 'POST', `/v1/policies?${q}`, { type: 'application/wasm', data: wasm })).status).toBe(
      201,
    );
    expect((await checked('admin', 'POST', `/v1/policies?${q}`, { type: 'application/wasm', data: wasm })).status).toBe(
      200,
    );
    expect(
      (await checked('admin', 'POST', '/v1/policies?name=Bad!', { type: 'application/wasm', data: wasm })).status,
    ).toBe(400);
    expect((await checked('admin', 'POST', `/v1/policies?${q}`, json({}))).status).toBe(415);
    expect((await checked('admin', 'GET', '/v1/policies')).status).toBe(200);
    expect((await checked('admin', 'GET', '/v1/policies/memlock-cap')).status).toBe(200);
    expect((await checked('admin', 'GET', '/v1/policies/no-such')).status).toBe(404);
    expect((await checked('admin', 'GET', '/v1/policies/memlock-cap/revisions/1')).status).toBe(200);
    expect((await checked('admin', 'GET', '/v1/policies/memlock-cap/revisions/x')).status).toBe(400);
    const bytes = await checked('admin', 'GET', '/v1/policies/memlock-cap/revisions/1/wasm');
    expect(bytes.body.equals(wasm)).toBe(true);

    // A body is checked against its schema: the path of the fault and the key that was meant.
    const typo = await checked('admin', 'PUT', '/v1/bindings/set-memlock', json({ polcy: 'memlock-cap' }));
    expect(typo.status).toBe(400);
    expect(typo.json).toMatchObject({
      error: { code: 'bad-request', message: expect.stringContaining('polcy: unknown key; did you mean policy?') },
    });
    const badRevision = await checked(
      'admin',
      'PUT',
      '/v1/bindings/set-memlock',
      json({ policy: 'memlock-cap', revision: 0 }),
    );
    expect(badRevision.json).toMatchObject({
      error: { message: expect.stringContaining('revision: must be a positive integer') },
    });
    expect((await checked('admin', 'PUT', '/v1/bindings/no-such-op', json({ policy: 'memlock-cap' }))).status).toBe(
      404,
    );
    expect((await checked('admin', 'PUT', '/v1/bindings/set-memlock', json({ policy: 'memlock-cap' }))).status).toBe(
      200,
    );
    expect(
      (await checked('admin', 'PUT', '/v1/bindings/set-memlock', json({ policy: 'memlock-cap', revision: 1 }))).status,
    ).toBe(200);
    expect((await checked('admin', 'GET', '/v1/bindings')).status).toBe(200);
    expect((await checked('admin', 'GET', '/v1/bindings/set-memlock')).status).toBe(200);

    // A VM whose requests are allowed, so the audit holds records with a VM and capability calls.
    const target = await agent.spawnTarget();
    const reg = vmFor(agent.pid, 'vm-openapi', [['memory-bytes', String(64n * MiB)]]);
    const typoVm = await checked('admin', 'POST', '/v1/vms', json({ ...reg, anchor: { rootpid: agent.pid } }));
    expect(typoVm.json).toMatchObject({
      error: {
        code: 'bad-request',
        message: expect.stringContaining('anchor.rootpid: unknown key; did you mean rootPid?'),
      },
    });
    expect((await checked('admin', 'POST', '/v1/vms', json(reg))).status).toBe(201);
    expect((await checked('admin', 'POST', '/v1/vms', json(reg))).status).toBe(409);
    const uuid = reg.identity.uuid;
    expect((await checked('admin', 'GET', '/v1/vms')).status).toBe(200);
    expect((await checked('admin', 'GET', `/v1/vms/${uuid}`)).status).toBe(200);
    expect(
      (
        await checked(
          'admin',
          'PUT',
          `/v1/vms/${uuid}`,
          json({ ...reg, identity: { ...reg.identity, labels: { 'memory-bytes': String(64n * MiB) } } }),
        )
      ).status,
    ).toBe(200);
    const report = await agent.requests({
      socketPath: daemon.requestSocket,
      targetPid: target,
      bytes: 4n * MiB,
      total: 2,
      concurrency: 1,
      collectIds: true,
    });
    expect(report.errors).toEqual([]);
    expect(report.reasons).toEqual({ 'allow:': 2 });

    const page = await checked('admin', 'GET', '/v1/audit?limit=1&order=asc');
    expect(page.status).toBe(200);
    expect((page.json as { records: Array<{ schemaVersion: number }> }).records[0]!.schemaVersion).toBe(1);
    const { nextCursor } = page.json as { nextCursor?: string };
    expect(
      (await checked('admin', 'GET', `/v1/audit?limit=5&cursor=${nextCursor}&decision=allow&vm=vm-openapi`)).status,
    ).toBe(200);
    expect((await checked('admin', 'GET', '/v1/audit?limit=0')).status).toBe(400);
    const record = await checked('admin', 'GET', `/v1/audit/${report.ids[0]}`);
    expect(record.json).toMatchObject({
      record: {
        decisionId: report.ids[0],
        vm: { uuid },
        schemaVersion: 1,
        capabilityCalls: expect.arrayContaining([expect.objectContaining({ op: 'set-memlock' })]),
      },
    });
    expect((await checked('admin', 'GET', '/v1/audit/no-such-decision')).status).toBe(404);

    expect((await checked('admin', 'GET', '/v1/bindings/set-memlock/history')).status).toBe(200);
    expect((await checked('admin', 'POST', '/v1/bindings/set-memlock/rollback')).status).toBeLessThan(500);
    expect((await checked('admin', 'DELETE', '/v1/bindings/set-memlock')).status).toBe(200);
    expect((await checked('admin', 'DELETE', '/v1/policies/memlock-cap/revisions/1')).status).toBe(200);
    expect((await checked('admin', 'DELETE', `/v1/vms/${uuid}`)).status).toBe(200);
    expect((await checked('admin', 'DELETE', `/v1/vms/${uuid}`)).status).toBe(404);
  }, 240_000);

  it('every request route, with a decision and refused bodies', async () => {
    expect((await checked('request', 'GET', '/v1/health')).status).toBe(200);
    // From this process, in no VM: a deny the daemon decides, as a 200 decision.
    const denied = await checked(
      'request',
      'POST',
      '/v1/operations/set-memlock',
      json({ targetPid: process.pid, bytes: 'unlimited' }),
    );
    expect(denied.json).toMatchObject({ decision: 'deny', errorKind: 'unknown-requester' });
    const claim = await checked(
      'request',
      'POST',
      '/v1/operations/set-memlock',
      json({ targetPid: process.pid, bytes: 1, requesterPid: 1 }),
    );
    expect(claim.status).toBe(400);
    expect(claim.json).toMatchObject({ error: { message: expect.stringContaining('requesterPid: unknown key') } });
    const pid = await checked('request', 'POST', '/v1/operations/set-memlock', json({ targetPid: 0, bytes: 1 }));
    expect(pid.json).toMatchObject({ error: { message: 'targetPid: must be a positive integer pid' } });
    const huge = await checked(
      'request',
      'POST',
      '/v1/operations/set-memlock',
      json({ targetPid: 5, bytes: '18446744073709551616' }),
    );
    expect(huge.json).toMatchObject({ error: { message: expect.stringContaining('larger than u64') } });
  });

  it('called every documented operation of each socket with success', () => {
    for (const socket of ['admin', 'request'] as const) {
      const ids = operationsOf(openApiDocument(socket, CAPGATE_VERSION) as unknown as Doc).map((key) => {
        const [method, p] = key.split(' ');
        return ((doc.paths[p!] as Record<string, Operation>)[method!.toLowerCase()] as Operation).operationId;
      });
      expect([...answered.get(socket)!].sort(), socket).toEqual([...new Set(ids)].sort());
    }
  });
});
