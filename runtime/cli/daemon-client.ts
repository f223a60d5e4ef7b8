// Opens the daemon clients for one command and always closes them, so the process can exit.
// A call that reached the other capgate socket (admin command on the request socket, or the
// other way round) ends with a message that says so, and which socket to pass instead.
import { dirname, join } from 'node:path';
import { CapgateAdminClient, CapgateRequestClient, wrongSocket } from '../client/index.ts';
import { CliError } from './cli-error.ts';
import { EXIT } from './exit-codes.ts';

function explainWrongSocket(e: unknown, socketPath: string, wanted: 'admin' | 'request'): unknown {
  const answered = wrongSocket(e);
  if (answered === undefined || answered === `${wanted}-socket`) return e;
  const other = wanted === 'admin' ? 'request' : 'admin';
  const env = wanted === 'admin' ? 'CAPGATE_ADMIN_SOCKET' : 'CAPGATE_REQUEST_SOCKET';
  return new CliError(
    `${socketPath} is capgate's ${other} socket, not its ${wanted} socket`,
    EXIT.usage,
    `pass the ${wanted} socket: --socket ${join(dirname(socketPath), `${wanted}.sock`)} (or set ${env})`,
    { kind: 'wrong-socket', socket: other },
  );
}

export async function withAdmin<T>(socketPath: string, fn: (c: CapgateAdminClient) => Promise<T>, timeoutMs?: number): Promise<T> {
  const client = new CapgateAdminClient({ socketPath, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  try {
    return await fn(client);
  } catch (e) {
    throw explainWrongSocket(e, socketPath, 'admin');
  } finally {
    client.close();
  }
}

export async function withRequester<T>(socketPath: string, fn: (c: CapgateRequestClient) => Promise<T>): Promise<T> {
  const client = new CapgateRequestClient({ socketPath });
  try {
    return await fn(client);
  } catch (e) {
    throw explainWrongSocket(e, socketPath, 'request');
  } finally {
    client.close();
  }
}
