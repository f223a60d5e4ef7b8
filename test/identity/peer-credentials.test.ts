// SO_PEERCRED / SO_PEERPIDFD on a real Unix socket, with a client running as another uid/gid.
import { afterEach, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  peerStillConnected,
  readPeerCredentials,
  releasePeerCredentials,
  tryReadPeerCredentials,
} from '../../runtime/os/peer-credentials.ts';
import { readStartTime } from '../../runtime/os/proc-stat.ts';
import { killChildren, spawnChild } from '../support/processes/children.ts';

const NOBODY = 65534;
// Connects, says hello, and stays connected until killed.
const CLIENT =
  "const s=require('net').connect(process.argv[1]);s.on('connect',()=>s.write('hi'));setInterval(()=>{},1e6)";

let server: Server | undefined;
let client: ChildProcess | undefined;
let dir: string | undefined;

afterEach(async () => {
  await killChildren('test'); // first: a server closes only once its clients are gone
  if (server) await new Promise((r) => server!.close(r));
  if (dir) rmSync(dir, { recursive: true, force: true });
  client = server = dir = undefined;
});

async function connectFrom(options: {
  uid?: number;
  gid?: number;
}): Promise<{ socket: Socket; child: ChildProcess & { pid: number } }> {
  dir = mkdtempSync(join(tmpdir(), 'capgate-peer-'));
  chmodSync(dir, 0o777); // the client may run as nobody
  const path = join(dir, 'request.sock');
  server = createServer();
  server.listen(path);
  await once(server, 'listening');
  chmodSync(path, 0o777);
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  client = spawnChild(process.execPath, ['-e', CLIENT, path], { stdio: 'ignore', ...options });
  const [socket] = await accepted;
  await once(socket, 'data'); // connected and running
  return { socket, child: client as ChildProcess & { pid: number } };
}

const fdTarget = (fd: number): string | null => {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
};

describe('readPeerCredentials', () => {
  it('reports the pid, uid and gid of a client running as nobody, with its pidfd', async () => {
    const { socket, child } = await connectFrom({ uid: NOBODY, gid: NOBODY });
    const creds = readPeerCredentials(socket);
    try {
      expect(creds).toMatchObject({ pid: child.pid, uid: NOBODY, gid: NOBODY, startTime: readStartTime(child.pid) });
      expect(creds.pidfd).toBeTypeOf('number');
      expect(creds.pidfdSource).toBe('so-peerpidfd'); // this kernel is >= 6.5
      expect(fdTarget(creds.pidfd!)).toBe('anon_inode:[pidfd]');
      expect(peerStillConnected(creds)).toBe(true);

      child.kill('SIGKILL');
      await once(child, 'exit');
      expect(peerStillConnected(creds)).toBe(false);
    } finally {
      const fd = creds.pidfd!;
      releasePeerCredentials(creds);
      expect(creds.pidfd).toBeUndefined();
      expect(fdTarget(fd)).not.toBe('anon_inode:[pidfd]');
      releasePeerCredentials(creds); // idempotent
    }
  });

  it('reports root for a root client', async () => {
    const { socket, child } = await connectFrom({});
    const creds = readPeerCredentials(socket);
    expect(creds).toMatchObject({ pid: child.pid, uid: 0, gid: 0 });
    releasePeerCredentials(creds);
  });

  it('returns a typed error for a socket without a descriptor', async () => {
    const { socket } = await connectFrom({});
    socket.destroy();
    expect(tryReadPeerCredentials(socket)).toMatchObject({ ok: false, reason: 'no-fd' });
    expect(() => readPeerCredentials(socket)).toThrow(/no file descriptor/);
  });

  it('leaves no pidfd open after release across many connections', async () => {
    const { socket } = await connectFrom({});
    const before = countPidfds();
    for (let i = 0; i < 50; i++) releasePeerCredentials(readPeerCredentials(socket));
    expect(countPidfds()).toBe(before);
    expect(existsSync('/proc/self/fd')).toBe(true);
  });
});

function countPidfds(): number {
  return readdirSync('/proc/self/fd').filter((fd) => fdTarget(Number(fd)) === 'anon_inode:[pidfd]').length;
}
