// The bytes of an answer on the request socket are the wire: a JSON reply without headers of its
// own (every decision's) is made by a shorter path, which must write what the general one does.
import { describe, expect, it } from 'vitest';
import { encodeReply, fail, ok, type Reply } from '../../runtime/server/http/reply.ts';

describe('encodeReply', () => {
  const replies: Reply[] = [
    ok({ decision: 'allow', reason: '', decisionId: '0190c0de-0000-7000-8000-000000000000' }),
    ok({ decision: 'deny', reason: 'quo"te ünï\n', decisionId: 'x', errorKind: 'trap' }),
    fail('bad-request', 'the body is empty', 'send a JSON object'),
    fail('overloaded', 'too many requests are waiting'),
    { kind: 'json', status: 299, body: [1, 'two'] },
  ];
  it.each(
    replies.flatMap((r) =>
      [true, false].flatMap((close) => [5, 0, undefined].map((keep) => [r, close, keep] as const)),
    ),
  )('writes what the general path writes (%j, close %s, keep-alive %s)', (reply, close, keepAliveS) => {
    // headers: {} takes the general path, with nothing added.
    expect(bytes(encodeReply(reply, close, keepAliveS))).toEqual(
      bytes(encodeReply({ ...reply, headers: {} } as Reply, close, keepAliveS)),
    );
  });

  it('is the answer it has always been', () => {
    expect(bytes(encodeReply(ok({ decision: 'allow', reason: '', decisionId: 'd' }), false, 5))).toEqual(
      bytes(
        'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 49\r\nkeep-alive: timeout=5\r\n\r\n{"decision":"allow","reason":"","decisionId":"d"}',
      ),
    );
  });

  it('leaves nothing of one answer in the next, and never changes one already made (its body is written in a reused buffer)', () => {
    const long = ok({ decision: 'deny', reason: `long ${'é'.repeat(3000)}`, decisionId: 'l' });
    const short = ok({ decision: 'allow', reason: '', decisionId: 's' });
    const first = bytes(encodeReply(long, false, 5));
    const kept = Buffer.from(first);
    const second = bytes(encodeReply(short, false, 5));
    expect(second.toString('utf8')).toBe(
      'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 49\r\nkeep-alive: timeout=5\r\n\r\n{"decision":"allow","reason":"","decisionId":"s"}',
    );
    expect(first).toEqual(kept);
    expect(first.toString('utf8').endsWith(`${JSON.stringify(long.kind === 'json' ? long.body : null)}`)).toBe(true);
  });
});

/** The bytes a socket would send of an encoded answer. */
const bytes = (m: string | Buffer): Buffer => (typeof m === 'string' ? Buffer.from(m, 'utf8') : m);
