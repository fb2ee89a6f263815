// A Node.js function that gets stuck (timeout forensics, test_forensics.py), with a minimal
// Runtime API (2018-06-01) loop so it runs under the emulator; Node's standard library only.
// Node waits for a socket in epoll_wait on its event loop, never in a blocking read: the
// sockets' send/receive times, not the system call, say which peer it waits on.
//
//   {"action": "fast"}                                   respond at once
//   {"action": "read", "host": H, "port": P,             a pooled connection to POOL_HOST:Q
//    "pool_host": H2, "pool_port": Q}                    (one request answered, then idle),
//                                                        then a request to H:P and a wait for
//                                                        its answer (respond if it comes)
'use strict';
const http = require('http');
const net = require('net');

const BASE = '/2018-06-01/runtime';
const [host, port] = (process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001').split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const pool = []; // connections kept across invocations, like a client's pool

function call(method, p, body) {
  return new Promise((resolve, reject) => {
    const r = http.request({ host, port, method, path: p, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    r.on('error', reject);
    if (body) r.write(body);
    r.end();
  });
}

function log(msg) {
  process.stdout.write(`${new Date().toISOString()}\t-\tINFO\t${msg}\n`);
}

// Connects to h:p, sends line, resolves with the first data (never, from a silent peer).
function ask(h, p, line) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: h, port: p }, () => s.write(line));
    s.once('data', (d) => resolve({ s, d }));
    s.once('error', reject);
  });
}

async function handler(event) {
  if (event.action === 'read') {
    const pooled = await ask(event.pool_host || event.host, event.pool_port, 'ping\n');
    pool.push(pooled.s); // answered: from now on an idle pooled connection
    log('read: request sent, waiting for the answer');
    const got = await ask(event.host, event.port, 'GET / HTTP/1.1\r\nHost: local\r\n\r\n');
    return { ok: true, action: 'read', got: got.d.length };
  }
  log('fast');
  return { ok: true, action: 'fast' };
}

(async () => {
  log(`node bootstrap init (pid ${process.pid})`);
  for (;;) {
    const next = await call('GET', BASE + '/invocation/next');
    const id = next.headers['lambda-runtime-aws-request-id'];
    let event = {};
    try {
      event = JSON.parse(next.body.toString() || '{}') || {};
    } catch (e) {
      event = {};
    }
    let out;
    try {
      out = await handler(event);
    } catch (e) {
      out = { error: String(e) };
    }
    await call('POST', `${BASE}/invocation/${id}/response`, JSON.stringify(out));
  }
})().catch((e) => {
  process.stderr.write(`bootstrap: ${e}\n`);
  process.exit(1);
});
