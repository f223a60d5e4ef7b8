// The Unix socket file both HTTP servers listen on: a stale file left by a dead daemon is
// removed, a live one is refused, and the socket is created with its final mode (umask) so
// there is never a window with a wider one.
import fs from 'node:fs';
import net from 'node:net';

export interface SocketFileOptions {
  socketPath: string;
  /** File mode of the socket, e.g. 0o600. */
  mode: number;
  /** Group owner of the socket (gid); undefined keeps the daemon's. */
  gid?: number;
}

export async function listenOnSocketFile(server: net.Server, o: SocketFileOptions): Promise<void> {
  await removeStaleSocket(o.socketPath);
  const previous = process.umask(0o777 & ~o.mode);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(previous);
  }
  try {
    fs.chmodSync(o.socketPath, o.mode);
    if (o.gid !== undefined) fs.chownSync(o.socketPath, -1, o.gid);
  } catch (err) {
    // Never left listening with the wrong mode or group, nor holding the process open after a
    // failed start: close and remove the socket before reporting.
    await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(o.socketPath, { force: true });
    if (o.gid !== undefined && (err as NodeJS.ErrnoException).code === 'EPERM') {
      throw new Error(
        `cannot give ${o.socketPath} the group ${o.gid} (EPERM): without CAP_CHOWN a process may give its files only a group it is a member of. Fix: add gid ${o.gid} to the daemon's supplementary groups (systemd: SupplementaryGroups=; Kubernetes: securityContext.supplementalGroups)`,
      );
    }
    throw err;
  }
}

/** Removes a socket file left by a dead daemon; refuses if a live daemon still answers on it. */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new Error(`${socketPath} exists and is not a socket: remove it or choose another path`);
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(socketPath);
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });
  if (alive)
    throw new Error(`another process is listening on ${socketPath}: stop it first or choose another socket path`);
  fs.rmSync(socketPath, { force: true });
}
