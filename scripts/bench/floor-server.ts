// The isolation bench's floor: the least any server can do for the victim's request, a Node
// process answering every HTTP request on a Unix socket with the same allow, without reading it
// beyond its length. What the victim loses here when a neighbour only spins is the machine's
// (its scheduler, its cores), so no daemon could lose less. Bench use only: one request at a
// time per connection, no chunked bodies.
import net from 'node:net';

const socketPath = process.argv[2];
if (socketPath === undefined) throw new Error('usage: floor-server <socket path>');
const body = JSON.stringify({ decision: 'allow', reason: 'floor' });
const answer = Buffer.from(
  `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
);

net
  .createServer((socket) => {
    let input: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      input = input.length === 0 ? chunk : Buffer.concat([input, chunk]);
      for (;;) {
        const end = input.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(input.toString('latin1', 0, end))?.[1] ?? 0);
        if (input.length < end + 4 + length) return;
        input = input.subarray(end + 4 + length);
        socket.write(answer);
      }
    });
    socket.on('error', () => socket.destroy());
  })
  .listen(socketPath, () => process.send?.('listening'));
process.on('disconnect', () => process.exit(0));
