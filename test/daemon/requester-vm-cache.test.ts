// The per-connection requester-VM cache on real sockets, real client processes and real /proc
// walks: resolved once per connection, re-resolved when the registry changes or the TTL passes,
// and a peer that exited is never matched, cached or not.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { resolveRequesterVm, type RegisteredVm } from '../../runtime/identity/index.ts';
import {
  peerStillConnected,
  readPeerCredentials,
  releasePeerCredentials,
  type PeerCredentials,
} from '../../runtime/os/peer-credentials.ts';
import { readStartTime } from '../../runtime/os/proc-stat.ts';
import { RequesterVmCache } from '../../runtime/server/request/requester-vm-cache.ts';
import { VmRegistry } from '../../runtime/server/state/vm-registry.ts';
import { removeTempDirs, tempDir } from './helpers/temp-dir.ts';
import { killChildren, spawnChild } from '../support/processes/children.ts';

// Connects, says hello, and stays connected until killed.
const CLIENT =
  "const s=require('net').connect(process.argv[1]);s.on('connect',()=>s.write('hi'));setInterval(()=>{},1e6)";

const servers: net.Server[] = [];
const peers: PeerCredentials[] = [];

afterEach(async () => {
  await killChildren('test'); // first: a server closes only once its clients are gone
  for (const p of peers.splice(0)) releasePeerCredentials(p);
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});
afterAll(removeTempDirs);

/** A client process connected to a fresh socket; the peer credentials the kernel reports for it. */
async function connectedPeer(): Promise<{ peer: PeerCredentials; child: ChildProcess & { pid: number } }> {
  const socketPath = path.join(tempDir(), 'request.sock');
  const server = net.createServer();
  servers.push(server);
  server.listen(socketPath);
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const child = spawnChild(process.execPath, ['-e', CLIENT, socketPath], { stdio: 'ignore' });
  const [socket] = await accepted;
  await once(socket, 'data');
  const peer = readPeerCredentials(socket);
  peers.push(peer);
  return { peer, child: child as ChildProcess & { pid: number } };
}

function vmRootedAt(pid: number, name: string): RegisteredVm {
  const uuid = `3f2b8c1e-9d4a-4b6e-8f10-${String(pid).padStart(12, '0')}`;
  return {
    identity: { uuid, name, id: pid, labels: [] },
    anchor: { rootPid: pid, rootStartTime: readStartTime(pid)! },
  };
}

/** The real identity functions, with the /proc walks counted. */
function countingIdentity(): { deps: ConstructorParameters<typeof RequesterVmCache>[0]; walks: () => number } {
  let walks = 0;
  return {
    deps: {
      peerStillConnected,
      resolveRequesterVm: (pid, vms) => {
        walks++;
        return resolveRequesterVm(pid, vms);
      },
    },
    walks: () => walks,
  };
}

describe('RequesterVmCache', () => {
  it('walks /proc once per connection and again after every registry change', async () => {
    const { peer, child } = await connectedPeer();
    const vm = vmRootedAt(child.pid, 'vm-a');
    const registry = new VmRegistry();
    registry.replace([vm]);
    const { deps, walks } = countingIdentity();
    const cache = new RequesterVmCache(deps, registry, 60_000);

    for (let i = 0; i < 5; i++) expect(cache.resolve(peer)).toEqual({ kind: 'vm', vm: registry.vms[0] });
    expect(walks()).toBe(1);
    expect(cache.stats).toEqual({ hits: 4, misses: 1 });

    registry.replace([]); // the VM was unregistered
    expect(cache.resolve(peer)).toEqual({ kind: 'unknown' });
    expect(cache.resolve(peer)).toEqual({ kind: 'unknown' });
    expect(walks()).toBe(2);

    registry.replace([vm]); // and registered again
    expect(cache.resolve(peer)).toMatchObject({ kind: 'vm', vm: { identity: { name: 'vm-a' } } });
    expect(walks()).toBe(3);
  });

  it('keeps one entry per connection: two peers in two VMs each get their own', async () => {
    const a = await connectedPeer();
    const b = await connectedPeer();
    const registry = new VmRegistry();
    registry.replace([vmRootedAt(a.child.pid, 'vm-a'), vmRootedAt(b.child.pid, 'vm-b')]);
    const cache = new RequesterVmCache(countingIdentity().deps, registry, 60_000);
    for (let i = 0; i < 3; i++) {
      expect(cache.resolve(a.peer)).toMatchObject({ kind: 'vm', vm: { identity: { name: 'vm-a' } } });
      expect(cache.resolve(b.peer)).toMatchObject({ kind: 'vm', vm: { identity: { name: 'vm-b' } } });
    }
  });

  it('re-resolves once the TTL has passed', async () => {
    const { peer, child } = await connectedPeer();
    const registry = new VmRegistry();
    registry.replace([vmRootedAt(child.pid, 'vm-a')]);
    const { deps, walks } = countingIdentity();
    let now = 1_000;
    const cache = new RequesterVmCache(deps, registry, 500, () => now);
    cache.resolve(peer);
    now += 499;
    cache.resolve(peer);
    expect(walks()).toBe(1);
    now += 1;
    expect(cache.resolve(peer)).toMatchObject({ kind: 'vm' });
    expect(walks()).toBe(2);
  });

  it('answers gone for a peer that exited, although its VM is cached', async () => {
    const { peer, child } = await connectedPeer();
    const registry = new VmRegistry();
    registry.replace([vmRootedAt(child.pid, 'vm-a')]);
    const { deps, walks } = countingIdentity();
    const cache = new RequesterVmCache(deps, registry, 60_000);
    expect(cache.resolve(peer)).toMatchObject({ kind: 'vm' });
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(cache.resolve(peer)).toEqual({ kind: 'gone' });
    expect(walks()).toBe(1); // decided by the pidfd, not by the cache or /proc
  });

  it('fails closed on a pid that names no live process when the connection was accepted', async () => {
    const { peer } = await connectedPeer();
    const registry = new VmRegistry();
    const cache = new RequesterVmCache(countingIdentity().deps, registry, 60_000);
    expect(cache.resolve(peer)).toEqual({ kind: 'unknown' }); // alive, in no VM
    // What tryReadPeerCredentials records when the peer had already exited at accept.
    expect(cache.resolve({ ...peer, startTime: null })).toEqual({ kind: 'gone' });
  });
});

describe('VmRegistry', () => {
  it('changes its generation on every replacement', () => {
    const r = new VmRegistry();
    const seen = new Set([r.generation]);
    for (let i = 0; i < 3; i++) {
      r.replace([]);
      seen.add(r.generation);
    }
    expect(seen.size).toBe(4);
  });
});
