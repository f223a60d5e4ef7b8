// Who is on the other end of an accepted Unix socket, according to the kernel:
// SO_PEERCRED (pid, uid, gid at connect time) and SO_PEERPIDFD (kernel >= 6.5), a pidfd for
// exactly the process that connected, which a reused pid cannot redirect.
import type { Socket } from 'node:net';
import { libc, SO_PEERCRED, SO_PEERPIDFD, SOL_SOCKET } from './libc.ts';
import { errnoName } from './errno.ts';
import { closeFd, openPidfd, pidfdIsAlive } from './pidfd.ts';
import { readStartTime } from './proc-stat.ts';
import { socketFd } from './socket-fd.ts';

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
  /** Owned by the caller: release with releasePeerCredentials(). Absent if no pidfd could be had. */
  pidfd?: number;
  /** How pidfd was obtained: exact (SO_PEERPIDFD) or pidfd_open on the pid right after accept. */
  pidfdSource?: 'so-peerpidfd' | 'pidfd-open';
  /** Start time of the peer pid when read (null if it already exited). */
  startTime: number | null;
}

export type PeerCredentialsFailure = 'no-fd' | 'getsockopt-failed' | 'no-peer';

export class PeerCredentialsError extends Error {
  override readonly name = 'PeerCredentialsError';
  constructor(
    readonly reason: PeerCredentialsFailure,
    message: string,
  ) {
    super(message);
  }
}

export type PeerCredentialsResult =
  | { ok: true; credentials: PeerCredentials }
  | { ok: false; reason: PeerCredentialsFailure; error: string };

const UCRED_BYTES = 12; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }

/** Non-throwing form of readPeerCredentials. */
export function tryReadPeerCredentials(socket: Socket): PeerCredentialsResult {
  const fd = socketFd(socket);
  if (fd === null)
    return { ok: false, reason: 'no-fd', error: 'the socket has no file descriptor (closed, or not a Unix socket)' };
  const c = libc();
  const ucred = Buffer.alloc(UCRED_BYTES);
  const got = c.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ucred);
  if (!got.ok)
    return { ok: false, reason: 'getsockopt-failed', error: `getsockopt(SO_PEERCRED) failed: ${errnoName(got.errno)}` };
  const pid = ucred.readInt32LE(0);
  const uid = ucred.readUInt32LE(4);
  const gid = ucred.readUInt32LE(8);
  // pid 0: the peer is in a pid namespace we cannot see, or it is not a connected Unix socket.
  if (got.value < UCRED_BYTES || pid <= 0)
    return { ok: false, reason: 'no-peer', error: 'the kernel reports no peer process for this socket' };

  const credentials: PeerCredentials = { pid, uid, gid, startTime: null };
  const pidfdBuf = Buffer.alloc(4);
  const peerPidfd = c.getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, pidfdBuf);
  if (peerPidfd.ok && peerPidfd.value >= 4) {
    credentials.pidfd = pidfdBuf.readInt32LE(0);
    credentials.pidfdSource = 'so-peerpidfd';
  } else {
    // Older kernels: second best, a pidfd for whoever holds the pid now (checked by start time).
    const opened = openPidfd(pid);
    if (opened.ok) {
      credentials.pidfd = opened.pidfd;
      credentials.pidfdSource = 'pidfd-open';
    }
  }
  credentials.startTime = readStartTime(pid);
  return { ok: true, credentials };
}

/** Kernel-verified peer of an accepted Unix socket. Throws PeerCredentialsError. */
export function readPeerCredentials(socket: Socket): PeerCredentials {
  const r = tryReadPeerCredentials(socket);
  if (!r.ok) throw new PeerCredentialsError(r.reason, r.error);
  return r.credentials;
}

/**
 * At decision time: is the process that connected still alive under its pid? With a pidfd this
 * is one syscall: a pid cannot be reused before its process is reaped, and a pidfd refers to
 * one process forever, so "pidfd alive" means the pid still names the process it named when
 * the credentials were read (exact with SO_PEERPIDFD; for the pidfd_open fallback, the process
 * that held the pid at accept, whose start time we recorded then). Without a pidfd, the start
 * time is re-read from /proc. False means: do not act for this peer.
 */
export function peerStillConnected(credentials: PeerCredentials): boolean {
  if (credentials.startTime === null) return false;
  if (credentials.pidfd !== undefined) return pidfdIsAlive(credentials.pidfd);
  return readStartTime(credentials.pid) === credentials.startTime;
}

/** Closes the peer's pidfd (idempotent). Call once the request is answered. */
export function releasePeerCredentials(credentials: PeerCredentials): void {
  if (credentials.pidfd === undefined) return;
  closeFd(credentials.pidfd);
  delete credentials.pidfd;
}
