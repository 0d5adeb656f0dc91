// pushgate demo page: connect as a user over STOMP (SockJS or raw WebSocket)
// through the gateway, watch greetings and broadcasts arrive, and call the
// push API the way a backend service would.
//
// The page is served by the gateway at `/`, so every URL here is same-origin:
// the edges under /web-socket/ (DESIGN.md's gateway example) and pushsvc's
// REST API under /api/.
import { Client } from '@stomp/stompjs';
import SockJS from 'sockjs-client';

const WS_BASE = '/web-socket';
const API_BASE = '/api';

// Where the edge answers /app/hello and where SendToUser pushes land: a push
// to the user's /topic/greetings reaches their /user/topic/greetings.
const GREETINGS_SUBSCRIPTION = '/user/topic/greetings';
const PUSH_DESTINATION = '/topic/greetings';

const MAX_LOG_ENTRIES = 200;

const $ = (id) => document.getElementById(id);

const ui = {
  connectForm: $('connect-form'),
  user: $('user'),
  getToken: $('get-token'),
  token: $('token'),
  tokenHint: $('token-hint'),
  transport: $('transport'),
  connect: $('connect'),
  disconnect: $('disconnect'),
  state: $('state'),
  sessionUser: $('session-user'),
  stompVersion: $('stomp-version'),
  transportUsed: $('transport-used'),
  edge: $('edge'),
  connError: $('conn-error'),
  topicForm: $('topic-form'),
  topic: $('topic'),
  subscriptions: $('subscriptions'),
  sendHello: $('send-hello'),
  messages: $('messages'),
  messagesEmpty: $('messages-empty'),
  clearMessages: $('clear-messages'),
  pushForm: $('push-form'),
  pushUser: $('push-user'),
  pushText: $('push-text'),
  broadcastForm: $('broadcast-form'),
  broadcastTopic: $('broadcast-topic'),
  broadcastText: $('broadcast-text'),
  apiToken: $('api-token'),
  apiResult: $('api-result'),
  log: $('log'),
};

// The current connection attempt, or null. Each Connect makes a new one, and
// callbacks check that they still belong to it, so that late events from a
// closed client never touch the page of the next one.
let session = null;

// The token last fetched from the dev endpoint, and for whom: it is dropped
// when the user name changes, so that Connect never logs in as the old name.
let devToken = null;

let receiptSeq = 0;

// ---------------------------------------------------------------- helpers

function log(text) {
  const li = document.createElement('li');
  li.textContent = `${clock(new Date())}  ${text}`;
  ui.log.prepend(li);
  while (ui.log.childElementCount > MAX_LOG_ENTRIES) ui.log.lastElementChild.remove();
}

function clock(date) {
  return date.toLocaleTimeString([], { hour12: false });
}

function setState(state) {
  ui.state.textContent = state;
  ui.state.dataset.state = state;
  const open = state === 'connecting' || state === 'connected';
  ui.connect.disabled = open || state === 'disconnecting';
  ui.disconnect.disabled = !open;
  ui.sendHello.disabled = state !== 'connected';
  for (const el of [ui.user, ui.token, ui.getToken, ui.transport]) el.disabled = open;
  log(`state: ${state}`);
}

function showError(text) {
  ui.connError.textContent = text;
  ui.connError.hidden = false;
  log(text);
}

function clearError() {
  ui.connError.textContent = '';
  ui.connError.hidden = true;
}

function setHint(el, text, kind = 'info') {
  el.textContent = text;
  el.dataset.kind = kind;
}

function resetStatus() {
  ui.sessionUser.textContent = '–';
  ui.stompVersion.textContent = '–';
  ui.transportUsed.textContent = '–';
  ui.edge.textContent = '–';
}

// Reads a response body as JSON when it is JSON, else as text, so that error
// pages from a proxy are still shown rather than a parse error.
async function readBody(res) {
  const text = await res.text();
  try {
    return { json: JSON.parse(text), text };
  } catch {
    return { json: null, text };
  }
}

// Decodes a JWT's claims, only to tell the person whom a pasted token is for;
// the edge does the verifying.
function jwtClaims(token) {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

function describeToken(token) {
  const claims = jwtClaims(token);
  if (!claims) return 'This does not look like a JWT; the server will probably refuse it.';
  const parts = [`For “${claims.sub ?? '(no sub)'}”`];
  if (typeof claims.exp === 'number') {
    const exp = new Date(claims.exp * 1000);
    parts.push(exp < new Date() ? `expired at ${clock(exp)}` : `valid until ${clock(exp)}`);
  }
  return `${parts.join(', ')}.`;
}

// ---------------------------------------------------------------- token

async function fetchDevToken() {
  const user = ui.user.value.trim();
  if (!user) {
    setHint(ui.tokenHint, 'Enter a user name first.', 'error');
    ui.user.focus();
    return null;
  }
  const url = `${API_BASE}/dev/token?user=${encodeURIComponent(user)}`;
  let res;
  try {
    res = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  } catch (err) {
    setHint(ui.tokenHint, `Could not reach ${url}: ${err.message}`, 'error');
    return null;
  }
  const body = await readBody(res);
  if (res.status === 404) {
    setHint(
      ui.tokenHint,
      'No dev token endpoint here: /api/dev/token exists only in “pushgate dev”. ' +
        'Paste a JWT whose sub is your user name.',
      'error',
    );
    return null;
  }
  if (!res.ok || typeof body.json?.token !== 'string') {
    const why = body.json?.message ?? body.text.slice(0, 200);
    setHint(ui.tokenHint, `Token request failed: HTTP ${res.status} ${why}`.trim(), 'error');
    return null;
  }
  devToken = { user, token: body.json.token };
  ui.token.value = devToken.token;
  setHint(ui.tokenHint, `Dev token. ${describeToken(devToken.token)}`, 'ok');
  log(`fetched a dev token for ${user}`);
  return devToken.token;
}

// ---------------------------------------------------------------- STOMP

function wsUrl(path) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${path}`;
}

// Opens the socket stomp.js talks over. The token travels as the
// access_token query parameter, the first place the edge looks for it.
function openSocket(transport, token) {
  const query = `access_token=${encodeURIComponent(token)}`;
  if (transport === 'raw') {
    // stomp.js's default subprotocols (v12.stomp, v11.stomp, v10.stomp).
    return new WebSocket(wsUrl(`${WS_BASE}/stomp?${query}`), ['v12.stomp', 'v11.stomp', 'v10.stomp']);
  }
  const options = transport === 'auto' ? {} : { transports: [transport] };
  return new SockJS(`${WS_BASE}/ws?${query}`, null, options);
}

async function connect() {
  if (session) return;
  clearError();
  resetStatus();

  const s = {
    client: null, // set once there is a token
    socket: null,
    transport: ui.transport.value,
    token: ui.token.value.trim(),
    connected: false,
    stompError: false,
    userClosed: false,
    subs: new Map(), // destination -> { sub, live }
  };
  // The session exists, and the page says "connecting", from the click on:
  // fetching a dev token first is part of connecting.
  session = s;
  setState('connecting');

  if (!s.token) {
    // First-run convenience: in dev, Connect alone is enough.
    s.token = await fetchDevToken();
    if (session !== s) return; // Disconnect was clicked meanwhile
    if (!s.token) {
      session = null;
      setState('disconnected');
      return;
    }
  }

  s.client = new Client({
    webSocketFactory: () => {
      s.socket = openSocket(s.transport, s.token);
      return s.socket;
    },
    // No automatic reconnect: a refused token would otherwise loop, and the
    // point of the page is to show what happened.
    reconnectDelay: 0,
    heartbeatIncoming: 10000,
    heartbeatOutgoing: 10000,
    // Long enough for SockJS to fall back through its transports.
    connectionTimeout: 30000,
    onConnect: (frame) => session === s && onConnected(s, frame),
    onStompError: (frame) => session === s && onStompError(s, frame),
    onWebSocketClose: (evt) => session === s && onSocketClosed(s, evt),
    onWebSocketError: () => session === s && log('socket error'),
    onUnhandledReceipt: (frame) => log(`receipt ${frame.headers['receipt-id']}`),
  });
  log(`connecting as ${ui.user.value.trim() || '?'} over ${s.transport}`);
  s.client.activate();
}

function onConnected(s, frame) {
  s.connected = true;
  const h = frame.headers;
  // No version header means STOMP 1.0 (the 1.0 CONNECTED frame has none).
  ui.stompVersion.textContent = h.version ?? '1.0';
  ui.edge.textContent = h.server ?? '(no server header)';
  // Spring's CONNECTED names the user; otherwise the token says whom we sent.
  ui.sessionUser.textContent = h['user-name'] ?? jwtClaims(s.token)?.sub ?? '?';
  ui.transportUsed.textContent =
    s.transport === 'raw'
      ? `raw websocket (${s.socket.protocol || 'no subprotocol'})`
      : `SockJS ${s.socket.transport ?? '?'}`;
  setState('connected');
  log(`CONNECTED version=${h.version ?? '1.0'} server=${h.server ?? ''}`);

  subscribe(s, GREETINGS_SUBSCRIPTION);
  subscribe(s, ui.topic.value.trim());
}

// Subscribes with a receipt: the edge sends it only once the subscription is
// live at the broker, so "live" on the page means a push will arrive.
function subscribe(s, destination) {
  if (!destination || s.subs.has(destination)) return;
  const receipt = `sub-${++receiptSeq}`;
  const entry = { sub: null, live: false };
  s.client.watchForReceipt(receipt, () => {
    entry.live = true;
    renderSubscriptions(s);
    log(`subscribed to ${destination}`);
  });
  entry.sub = s.client.subscribe(destination, (msg) => addMessage(destination, msg), { receipt });
  s.subs.set(destination, entry);
  renderSubscriptions(s);
}

function unsubscribe(s, destination) {
  const entry = s.subs.get(destination);
  if (!entry) return;
  entry.sub.unsubscribe();
  s.subs.delete(destination);
  renderSubscriptions(s);
  log(`unsubscribed from ${destination}`);
}

function renderSubscriptions(s) {
  const subs = s ? [...s.subs] : [];
  const live = subs.filter(([, e]) => e.live).length;
  ui.subscriptions.textContent = subs.length
    ? subs.map(([dest, e]) => `${dest} (${e.live ? 'live' : 'pending'})`).join(', ')
    : 'none';
  ui.subscriptions.dataset.live = String(live);
  ui.subscriptions.dataset.allLive = String(subs.length > 0 && live === subs.length);
}

function onStompError(s, frame) {
  s.stompError = true;
  const message = frame.headers.message ?? '(no message header)';
  const body = frame.body?.trim();
  showError(`ERROR: ${message}${body && body !== message ? ` — ${body}` : ''}`);
}

async function onSocketClosed(s, evt) {
  const { connected, stompError, userClosed } = s;
  session = null;
  // Stops stomp.js for good; with reconnectDelay 0 it would otherwise stay
  // "active" with nothing to do.
  void s.client.deactivate();
  renderSubscriptions(null);
  const why = closeReason(evt);
  log(`socket closed (${why})`);

  if (userClosed) {
    setState('disconnected');
    return;
  }
  setState('error');
  if (stompError) return; // the ERROR frame already said why
  if (connected) {
    showError(`Connection lost (${why}).`);
    return;
  }
  showError(`Not connected: the connection closed before CONNECTED (${why}).`);
  // Browsers hide a refused handshake's HTTP status from WebSocket and
  // SockJS alike; ask the same endpoint over plain HTTP to say why.
  const explanation = await explainRefusal(s.token);
  if (explanation && !session) {
    showError(`Not connected: ${explanation}. The connection closed before CONNECTED (${why}).`);
  }
}

function closeReason(evt) {
  if (!evt) return 'no close event';
  return evt.reason ? `code ${evt.code}: ${evt.reason}` : `code ${evt.code}`;
}

// Asks the edge over plain HTTP why a handshake was refused. SockJS's /info
// and the /stomp endpoint check a token in the URL like the transports do;
// whichever answers 401 first tells a refused token from an unreachable edge.
async function explainRefusal(token) {
  const query = `access_token=${encodeURIComponent(token)}`;
  let reached = false;
  for (const path of [`${WS_BASE}/ws/info?${query}`, `${WS_BASE}/stomp?${query}`]) {
    let res;
    try {
      res = await fetch(path, { cache: 'no-store' });
    } catch {
      continue;
    }
    reached = true;
    if (res.status !== 401 && res.status !== 403) continue;
    const body = await readBody(res);
    const detail = (body.json?.message ?? body.text).trim().slice(0, 200);
    return `the server refused the token (HTTP ${res.status}${detail ? `: ${detail}` : ''})`;
  }
  if (!reached) return 'the server could not be reached';
  const claims = jwtClaims(token);
  if (!claims) return 'the token is not a JWT';
  if (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now()) return 'the token has expired';
  return null;
}

async function disconnect() {
  const s = session;
  if (!s) return;
  s.userClosed = true;
  if (!s.client) {
    // Still fetching a dev token: connect() sees this and stops.
    session = null;
    setState('disconnected');
    return;
  }
  setState('disconnecting');
  // A polite DISCONNECT waits for the server's RECEIPT; never wait forever.
  const polite = s.client.deactivate();
  const timedOut = await Promise.race([
    polite.then(() => false),
    new Promise((resolve) => setTimeout(() => resolve(true), 3000)),
  ]);
  if (timedOut) await s.client.deactivate({ force: true });
  // If the socket never opened there is no close event to finish the job.
  if (session === s) {
    session = null;
    renderSubscriptions(null);
    setState('disconnected');
  }
}

function sendHello() {
  if (!session?.connected) return;
  const user = ui.user.value.trim();
  session.client.publish({ destination: '/app/hello', body: `hello from ${user}` });
  log('SEND /app/hello');
}

function addMessage(subscription, msg) {
  const now = new Date();
  const li = document.createElement('li');
  li.dataset.testid = 'message';
  li.dataset.subscription = subscription;

  const time = document.createElement('time');
  time.dateTime = now.toISOString();
  time.textContent = clock(now);

  const dest = document.createElement('code');
  dest.className = 'dest';
  dest.textContent = msg.headers.destination ?? subscription;

  const body = document.createElement('span');
  body.className = 'body';
  body.dataset.testid = 'message-body';
  const type = msg.headers['content-type'] ?? '';
  body.textContent = type.startsWith('application/octet-stream')
    ? `(${msg.binaryBody.length} bytes, ${type})`
    : msg.body;

  li.append(time, dest, body);
  ui.messages.prepend(li);
  ui.messagesEmpty.hidden = true;
}

// ---------------------------------------------------------------- push API

async function callApi(path, payload) {
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
  const apiToken = ui.apiToken.value.trim();
  if (apiToken) headers.Authorization = `Bearer ${apiToken}`;

  showApiResult('…', 'pending');
  let res;
  try {
    res = await fetch(`${API_BASE}${path}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(payload),
    });
  } catch (err) {
    showApiResult(`Request failed: ${err.message}`, 'error');
    return;
  }
  const body = await readBody(res);
  if (res.ok) {
    // grpc-gateway may marshal proto names (message_id) or JSON names (messageId).
    const id = body.json?.message_id ?? body.json?.messageId ?? '(none)';
    showApiResult(`Accepted: message_id ${id}`, 'ok');
    log(`POST ${path} → ${res.status} ${id}`);
    return;
  }
  // grpc-gateway errors are {"code":..,"message":..}; anything else (a proxy's
  // page, say) is shown as text.
  const message = body.json?.message ?? (body.text.trim().slice(0, 300) || res.statusText);
  showApiResult(`HTTP ${res.status}: ${message}`, 'error');
  log(`POST ${path} → ${res.status} ${message}`);
}

function showApiResult(text, kind) {
  ui.apiResult.textContent = text;
  ui.apiResult.dataset.kind = kind;
  ui.apiResult.hidden = false;
}

// ---------------------------------------------------------------- wiring

function init() {
  // ?user=bob&transport=xhr-polling pre-fills the form: handy for a second tab.
  const params = new URLSearchParams(location.search);
  ui.user.value = params.get('user') ?? 'alice';
  const transport = params.get('transport');
  if (transport && [...ui.transport.options].some((o) => o.value === transport)) {
    ui.transport.value = transport;
  }
  if (params.get('topic')) ui.topic.value = params.get('topic');

  ui.connectForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void connect();
  });
  ui.disconnect.addEventListener('click', () => void disconnect());
  ui.getToken.addEventListener('click', () => void fetchDevToken());
  $('api-token-form').addEventListener('submit', (e) => e.preventDefault());

  ui.user.addEventListener('input', () => {
    if (devToken && ui.token.value.trim() === devToken.token && devToken.user !== ui.user.value.trim()) {
      ui.token.value = '';
      setHint(ui.tokenHint, 'User changed: a new dev token will be fetched on Connect.');
    }
  });
  ui.token.addEventListener('input', () => {
    const token = ui.token.value.trim();
    setHint(ui.tokenHint, token ? describeToken(token) : '');
  });

  ui.topicForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const s = session;
    if (!s?.connected) return; // used on the next Connect
    const wanted = ui.topic.value.trim();
    for (const dest of [...s.subs.keys()]) {
      if (dest !== GREETINGS_SUBSCRIPTION && dest !== wanted) unsubscribe(s, dest);
    }
    subscribe(s, wanted);
  });

  ui.sendHello.addEventListener('click', sendHello);
  ui.clearMessages.addEventListener('click', () => {
    ui.messages.replaceChildren();
    ui.messagesEmpty.hidden = false;
  });

  ui.pushForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const user = ui.pushUser.value.trim();
    void callApi(`/v1/users/${encodeURIComponent(user)}/messages`, {
      destination: PUSH_DESTINATION,
      text: ui.pushText.value,
    });
  });
  ui.broadcastForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void callApi('/v1/broadcasts', {
      destination: ui.broadcastTopic.value.trim(),
      text: ui.broadcastText.value,
    });
  });

  setState('disconnected');
  renderSubscriptions(null);
}

init();
