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
    expect(encodeReply(reply, close, keepAliveS)).toBe(
      encodeReply({ ...reply, headers: {} } as Reply, close, keepAliveS),
    );
  });

  it('is the answer it has always been', () => {
    expect(encodeReply(ok({ decision: 'allow', reason: '', decisionId: 'd' }), false, 5)).toBe(
      'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 49\r\nkeep-alive: timeout=5\r\n\r\n{"decision":"allow","reason":"","decisionId":"d"}',
    );
  });
});
