// Opens the daemon clients for one command and always closes them, so the process can exit.
import { CapgateAdminClient, CapgateRequestClient } from '../client/index.ts';

export async function withAdmin<T>(socketPath: string, fn: (c: CapgateAdminClient) => Promise<T>, timeoutMs?: number): Promise<T> {
  const client = new CapgateAdminClient({ socketPath, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

export async function withRequester<T>(socketPath: string, fn: (c: CapgateRequestClient) => Promise<T>): Promise<T> {
  const client = new CapgateRequestClient({ socketPath });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
