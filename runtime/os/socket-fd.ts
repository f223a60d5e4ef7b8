// The one place that reaches into Node's private socket handle for the kernel fd.
// Node exposes no public accessor; `_handle.fd` on a Pipe/TCP wrap is the known way (Linux/macOS).
import type { Socket } from 'node:net';

interface HandleWithFd {
  fd?: unknown;
}

/** The socket's file descriptor, or null when it is closed or not backed by a kernel fd. */
export function socketFd(socket: Socket): number | null {
  const handle = (socket as unknown as { _handle?: HandleWithFd | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : null;
}
