// Real clients against a running `pushgate dev`: @stomp/stompjs over
// sockjs-client, once per SockJS transport, and over plain WebSocket (ws) on
// /stomp and on SockJS's raw /ws/websocket.
//
//   PUSHGATE_EDGE_URL   an edge, e.g. http://127.0.0.1:8080
//   PUSHGATE_REST_URL   pushsvc's REST API, e.g. http://127.0.0.1:9091
//   PUSHGATE_TOKEN_URL  dev's token endpoint (default $PUSHGATE_REST_URL/dev/token)
//   PUSHGATE_API_TOKEN  bearer token for the REST API, if the server wants one
//
// The server must accept 200 KiB pushes (run.sh starts it with
// --max-payload-bytes 1048576).
//
// run.sh starts a server and runs this.
//
// In Node, sockjs-client has its own drivers: websocket (faye-websocket),
// xhr-streaming and xhr-polling (node's http) and eventsource (the
// eventsource package). The iframe-based and jsonp transports need a DOM
// and are covered by the Go protocol tests (edge/sockjs_test.go) and the
// browser test instead.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import SockJS from 'sockjs-client';
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

const EDGE = (process.env.PUSHGATE_EDGE_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
const REST = (process.env.PUSHGATE_REST_URL ?? 'http://127.0.0.1:9091').replace(/\/$/, '');
const TOKEN_URL = process.env.PUSHGATE_TOKEN_URL ?? `${REST}/dev/token`;
const API_TOKEN = process.env.PUSHGATE_API_TOKEN ?? '';
const EDGE_WS = EDGE.replace(/^http/, 'ws');

const GREETINGS = '/user/topic/greetings';
// Generous: xhr-polling and a freshly started server are slow on a busy box.
const CONNECT_TIMEOUT = 20_000;
const MESSAGE_TIMEOUT = 15_000;

const clients = new Set();
after(async () => {
  await Promise.all([...clients].map((c) => c.deactivate({ force: true })));
});

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function token(user) {
  const res = await fetch(`${TOKEN_URL}?user=${encodeURIComponent(user)}`);
  assert.equal(res.status, 200, `GET ${TOKEN_URL}?user=${user}`);
  const body = await res.json();
  assert.equal(typeof body.token, 'string', 'token answer');
  return body.token;
}

// push sends text to user's /topic/greetings through the REST API; a 2xx
// means the broker took it.
async function push(user, text) {
  const headers = { 'content-type': 'application/json' };
  if (API_TOKEN) headers.authorization = `Bearer ${API_TOKEN}`;
  const res = await fetch(`${REST}/v1/users/${encodeURIComponent(user)}/messages`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ destination: '/topic/greetings', text }),
  });
  const body = await res.text();
  assert.ok(res.ok, `push to ${user}: ${res.status} ${body}`);
}

// connect starts a stompjs client over the socket webSocketFactory makes and
// waits for CONNECTED. It never reconnects: a drop is a failure here.
function connect(webSocketFactory) {
  const client = new Client({
    webSocketFactory,
    reconnectDelay: 0,
    heartbeatIncoming: 10_000,
    heartbeatOutgoing: 10_000,
  });
  clients.add(client);
  const errors = [];
  client.onStompError = (frame) => errors.push(`ERROR ${frame.headers.message ?? ''} ${frame.body}`);
  client.onWebSocketError = (e) => errors.push(`socket error ${e?.message ?? e}`);
  const connected = new Promise((resolve, reject) => {
    client.onConnect = () => resolve(client);
    client.onWebSocketClose = (e) => reject(new Error(`closed before CONNECTED: ${e?.code} ${e?.reason} ${errors.join('; ')}`));
  });
  client.activate();
  return withTimeout(connected, CONNECT_TIMEOUT, 'CONNECTED').then((c) => {
    c.onWebSocketClose = (e) => errors.push(`closed ${e?.code} ${e?.reason}`);
    c.errors = errors;
    return c;
  });
}

// subscribe subscribes with a receipt (pushgate receipts a SUBSCRIBE once it
// is live at the broker) and returns a queue of the messages.
async function subscribe(client, destination) {
  const messages = [];
  const waiters = [];
  const receipt = `sub-${randomUUID()}`;
  const receipted = new Promise((resolve) => client.watchForReceipt(receipt, resolve));
  client.subscribe(
    destination,
    (msg) => {
      const w = waiters.shift();
      if (w) w(msg);
      else messages.push(msg);
    },
    { receipt },
  );
  await withTimeout(receipted, MESSAGE_TIMEOUT, `RECEIPT for SUBSCRIBE ${destination}`);
  return {
    next(what = 'a message') {
      if (messages.length > 0) return Promise.resolve(messages.shift());
      return withTimeout(new Promise((resolve) => waiters.push(resolve)), MESSAGE_TIMEOUT,
        `${what} on ${destination} (client: ${client.errors.join('; ') || 'no errors'})`);
    },
  };
}

// largeText is n characters that are not all alike, with some of the
// characters SockJS must escape, so that a mangled byte shows.
function largeText(n) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789 "\\/<>&\n\u00e9\u2028\u200c\ufff0€';
  let s = '';
  let x = 12345;
  while (s.length < n) {
    x = (x * 1103515245 + 12345) % 2147483648;
    s += alphabet[x % alphabet.length];
  }
  return s.slice(0, n);
}

// The common check: /app/hello answers on the user's greetings, and a REST
// push arrives over the same connection.
async function helloAndPush(client, user) {
  const inbox = await subscribe(client, GREETINGS);
  client.publish({ destination: '/app/hello', body: '' });
  assert.equal((await inbox.next('the answer to /app/hello')).body, 'hello');
  await push(user, 'pushed');
  assert.equal((await inbox.next('the REST push')).body, 'pushed');
  return inbox;
}

for (const transport of ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource']) {
  test(`stompjs over sockjs-client, transport ${transport}`, async () => {
    const user = `node-${transport}-${randomUUID().slice(0, 8)}`;
    const jwt = await token(user);
    let sock;
    const client = await connect(() => {
      sock = new SockJS(`${EDGE}/ws?access_token=${encodeURIComponent(jwt)}`, null, { transports: [transport] });
      return sock;
    });
    assert.equal(sock.transport, transport, 'the transport sockjs-client chose');
    const inbox = await helloAndPush(client, user);

    if (transport === 'xhr-streaming') {
      // 200 KiB crosses the edge's 128 KiB streaming response limit: the
      // response ends after it and sockjs-client opens the next one.
      const big = largeText(200 * 1024);
      await push(user, big);
      const got = (await inbox.next('the 200 KiB push')).body;
      assert.equal(got.length, big.length, 'length of the 200 KiB push');
      assert.ok(got === big, 'the 200 KiB push arrived intact');
      await push(user, 'after');
      assert.equal((await inbox.next('a push after the response limit')).body, 'after');
    }
    await client.deactivate();
    clients.delete(client);
  });
}

for (const path of ['/stomp', '/ws/websocket']) {
  test(`stompjs over ws on ${path}, subprotocol v12.stomp`, async () => {
    const user = `node-raw-${randomUUID().slice(0, 8)}`;
    const jwt = await token(user);
    let ws;
    const client = await connect(() => {
      ws = new WebSocket(`${EDGE_WS}${path}?access_token=${encodeURIComponent(jwt)}`, ['v12.stomp', 'v11.stomp', 'v10.stomp']);
      return ws;
    });
    assert.equal(ws.protocol, 'v12.stomp', 'negotiated subprotocol');
    await helloAndPush(client, user);
    await client.deactivate();
    clients.delete(client);
  });
}

test('a SockJS handshake with an invalid token is refused', async () => {
  const res = await fetch(`${EDGE}/ws/info?access_token=not-a-jwt`);
  assert.equal(res.status, 401);
});
