// The connection hog (plain JavaScript: it runs as uid 65534 with no loader). Keeps up to
// `wanted` connections open to a request socket, each with a keep-alive health request answered
// and a new one every second, and reconnects whenever the daemon closes one, as an attacker
// would. Prints its counters as one JSON line every 100 ms until killed.
//   node hog-connections.mjs <socket> <wanted>
import net from 'node:net';

const [socketPath, wantedArg] = process.argv.slice(2);
const wanted = Number(wantedArg);
const HEALTH = 'GET /v1/health HTTP/1.1\r\nhost: capgate\r\n\r\n';
const stats = { open: 0, connects: 0, answers: 0, reusedConnections: 0, closedByDaemon: 0, errors: 0 };

function connect() {
  stats.connects++;
  const socket = net.connect(socketPath);
  let connected = false;
  let answersHere = 0;
  let buffered = '';
  let timer;
  socket.on('connect', () => {
    connected = true;
    stats.open++;
    socket.write(HEALTH);
  });
  socket.on('data', (chunk) => {
    buffered += chunk.toString('latin1');
    // Count whole answers (the health body is small JSON with a content-length).
    for (;;) {
      const head = buffered.indexOf('\r\n\r\n');
      if (head < 0) return;
      const m = /content-length: (\d+)/i.exec(buffered.slice(0, head));
      const length = m ? Number(m[1]) : 0;
      if (buffered.length < head + 4 + length) return;
      buffered = buffered.slice(head + 4 + length);
      stats.answers++;
      if (++answersHere === 2) stats.reusedConnections++;
      clearTimeout(timer);
      timer = setTimeout(() => socket.writable && socket.write(HEALTH), 1000);
    }
  });
  socket.on('error', () => stats.errors++);
  socket.on('close', () => {
    clearTimeout(timer);
    if (connected) {
      stats.open--;
      stats.closedByDaemon++;
    }
    setTimeout(connect, 10);
  });
}

for (let i = 0; i < wanted; i++) connect();
setInterval(() => process.stdout.write(`${JSON.stringify(stats)}\n`), 100);
