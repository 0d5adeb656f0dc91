// The demo page in a real browser: Debian's chromium driven by playwright-core
// (which never downloads a browser), against a running `pushgate dev`.
//
//   PUSHGATE_URL  the gateway (default http://127.0.0.1:7000)
//   CHROMIUM      the browser (default /usr/bin/chromium)
//
// run.sh starts the server and runs this; `make test-browser` runs run.sh.
// Screenshots and logs of every page's final state go to artifacts/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { chromium } from 'playwright-core';

const BASE = (process.env.PUSHGATE_URL ?? 'http://127.0.0.1:7000').replace(/\/$/, '');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = new URL('./artifacts/', import.meta.url);

const GREETINGS = '/user/topic/greetings';
const NEWS = '/topic/news';

// Generous: xhr-polling and a freshly started server are slow on a busy CI box.
const CONNECT_TIMEOUT = 30_000;
const MESSAGE_TIMEOUT = 15_000;

let browser;
const pages = {}; // name -> { page, console: string[] }

async function openPage(name, query) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const entry = { page, console: [] };
  page.on('console', (msg) => entry.console.push(`${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => entry.console.push(`pageerror: ${err.message}`));
  pages[name] = entry;
  const res = await page.goto(`${BASE}/?${new URLSearchParams(query)}`);
  assert.equal(res?.status(), 200, `GET ${BASE}/ for ${name}`);
  await page.locator('#state[data-state="disconnected"]').waitFor();
  return page;
}

const byId = (page, testid) => page.locator(`[data-testid="${testid}"]`);

// Waits until the page has either connected with every subscription live at
// the broker, or failed; a failure or a timeout is reported with what the
// page itself shows.
async function waitConnected(page, name) {
  const seen = async () => ({
    state: await byId(page, 'state').getAttribute('data-state'),
    subscriptions: await byId(page, 'subscriptions').textContent(),
    error: await byId(page, 'conn-error').textContent(),
  });
  try {
    await page.waitForFunction(
      () => {
        const state = document.getElementById('state').dataset.state;
        const live = document.getElementById('subscriptions').dataset.allLive === 'true';
        return state === 'error' || state === 'disconnected' || (state === 'connected' && live);
      },
      null,
      { timeout: CONNECT_TIMEOUT },
    );
  } catch (err) {
    err.message += `\n  ${name}: ${JSON.stringify(await seen())}`;
    throw err;
  }
  const now = await seen();
  assert.equal(now.state, 'connected', `${name} did not connect: ${now.error}`);
}

async function connect(page, name) {
  await byId(page, 'connect').click();
  await waitConnected(page, name);
}

// The bodies of the messages a page received on one subscription.
function bodies(page, subscription) {
  return page
    .locator(`[data-testid="message"][data-subscription="${subscription}"] [data-testid="message-body"]`)
    .allTextContents();
}

function waitMessage(page, subscription, text) {
  return page
    .locator(`[data-testid="message"][data-subscription="${subscription}"] [data-testid="message-body"]`, {
      hasText: new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`),
    })
    .first()
    .waitFor({ timeout: MESSAGE_TIMEOUT });
}

async function apiResult(page) {
  const result = byId(page, 'api-result');
  await page.waitForFunction(
    () => ['ok', 'error'].includes(document.getElementById('api-result').dataset.kind),
    null,
    { timeout: MESSAGE_TIMEOUT },
  );
  return { kind: await result.getAttribute('data-kind'), text: await result.textContent() };
}

before(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
});

after(async () => {
  // The final state of every page, pass or fail: what CI keeps.
  for (const [name, { page, console }] of Object.entries(pages)) {
    try {
      await page.screenshot({ path: new URL(`${name}.png`, ARTIFACTS).pathname, fullPage: true });
      const events = await page.locator('#log li').allTextContents();
      await writeFile(
        new URL(`${name}.log`, ARTIFACTS),
        `# page event log (newest first)\n${events.join('\n')}\n\n# browser console\n${console.join('\n')}\n`,
      );
    } catch (err) {
      process.stderr.write(`saving artifacts of ${name}: ${err.message}\n`);
    }
  }
  await browser?.close();
});

test('demo page: two users, hello, push, broadcast, reconnect, bad token', { timeout: 180_000 }, async (t) => {
  const run = randomUUID().slice(0, 8); // tells this run's messages from any other's
  let alice;
  let bob;

  await t.test('the gateway serves the page and sockjs-client', async () => {
    // /sockjs.min.js is what the edge's SockJS iframe page loads: never a CDN.
    for (const [path, type] of [
      ['/', /^text\/html/],
      ['/app.js', /javascript/],
      ['/style.css', /^text\/css/],
      ['/sockjs.min.js', /javascript/],
    ]) {
      const res = await fetch(`${BASE}${path}`);
      assert.equal(res.status, 200, `GET ${path}`);
      assert.match(res.headers.get('content-type') ?? '', type, `GET ${path} content-type`);
      const body = await res.text();
      if (path === '/') assert.doesNotMatch(body, /make web/, 'the binary was built without the page bundle');
    }
  });

  await t.test('alice connects over websocket, bob over xhr-polling', async () => {
    alice = await openPage('alice', { user: 'alice' });
    bob = await openPage('bob', { user: 'bob' });

    await byId(alice, 'transport').selectOption('websocket');
    await byId(alice, 'get-token').click();
    await alice.locator('#token-hint[data-kind="ok"]').waitFor();
    assert.match(await byId(alice, 'token').inputValue(), /^[\w-]+\.[\w-]+\.[\w-]+$/, 'dev token is a JWT');

    // Bob leaves the token empty: Connect fetches a dev token by itself.
    await byId(bob, 'transport').selectOption('xhr-polling');

    await Promise.all([connect(alice, 'alice'), connect(bob, 'bob')]);

    assert.match(await byId(alice, 'transport-used').textContent(), /websocket/);
    assert.match(await byId(bob, 'transport-used').textContent(), /xhr-polling/);
    for (const [name, page] of [['alice', alice], ['bob', bob]]) {
      assert.equal(await byId(page, 'stomp-version').textContent(), '1.2', `${name}'s STOMP version`);
      assert.match(await byId(page, 'edge').textContent(), /^pushgate-edge\/\S/, `${name}'s edge (CONNECTED server header)`);
    }
  });

  await t.test('alice sends hello and sees hello', async () => {
    await byId(alice, 'send-hello').click();
    await waitMessage(alice, GREETINGS, 'hello');
  });

  const forBob = `for bob only ${run}`;
  await t.test("a push to bob from alice's page reaches only bob", async () => {
    await byId(alice, 'push-user').fill('bob');
    await byId(alice, 'push-text').fill(forBob);
    await byId(alice, 'push-send').click();
    const result = await apiResult(alice);
    assert.equal(result.kind, 'ok', `push API: ${result.text}`);
    assert.match(result.text, /message_id \S+/);
    await waitMessage(bob, GREETINGS, forBob);
  });

  await t.test('a broadcast reaches both', async () => {
    const news = `news for all ${run}`;
    await byId(bob, 'broadcast-topic').fill(NEWS);
    await byId(bob, 'broadcast-text').fill(news);
    await byId(bob, 'broadcast-send').click();
    const result = await apiResult(bob);
    assert.equal(result.kind, 'ok', `broadcast API: ${result.text}`);
    await Promise.all([waitMessage(alice, NEWS, news), waitMessage(bob, NEWS, news)]);

    // The broadcast left after bob's push was accepted and has reached alice,
    // so had the push been going to alice too it would be there by now.
    assert.ok(!(await bodies(alice, GREETINGS)).includes(forBob), "bob's push reached alice");
    assert.ok(!(await bodies(bob, GREETINGS)).includes('hello'), "alice's hello reached bob");
  });

  await t.test('an API error is shown with its status', async () => {
    await byId(alice, 'broadcast-topic').fill('/not/a/topic');
    await byId(alice, 'broadcast-text').fill('nope');
    await byId(alice, 'broadcast-send').click();
    const result = await apiResult(alice);
    assert.equal(result.kind, 'error');
    assert.match(result.text, /^HTTP 400: \S/);
    await byId(alice, 'broadcast-topic').fill(NEWS);
  });

  await t.test('alice disconnects and connects again', async () => {
    await byId(alice, 'disconnect').click();
    await alice.locator('#state[data-state="disconnected"]').waitFor({ timeout: CONNECT_TIMEOUT });
    assert.equal(await byId(alice, 'conn-error').isVisible(), false, 'no error after Disconnect');

    await connect(alice, 'alice (again)');
    const before = (await bodies(alice, GREETINGS)).filter((b) => b === 'hello').length;
    await byId(alice, 'send-hello').click();
    await alice.waitForFunction(
      ([want]) =>
        [...document.querySelectorAll('[data-testid="message"][data-subscription="/user/topic/greetings"]')]
          .filter((li) => li.querySelector('[data-testid="message-body"]').textContent === 'hello').length >= want,
      [before + 1],
      { timeout: MESSAGE_TIMEOUT },
    );
  });

  await t.test('a bad token shows a clear error', async () => {
    const mallory = await openPage('bad-token', { user: 'mallory' });
    // A real dev token with its signature altered: well-formed, but forged.
    const token = await alice.evaluate(async () => {
      const res = await fetch('/api/dev/token?user=mallory');
      return (await res.json()).token;
    });
    const forged = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    await byId(mallory, 'token').fill(forged);
    await byId(mallory, 'transport').selectOption('websocket');
    await byId(mallory, 'connect').click();

    await mallory.locator('#state[data-state="error"]').waitFor({ timeout: CONNECT_TIMEOUT });
    const error = byId(mallory, 'conn-error');
    assert.ok(await error.isVisible(), 'the error is shown');
    // Either the handshake's 401 (as the page explains it) or the ERROR
    // frame's message; both must say that the token is the problem.
    await mallory.waitForFunction(
      () => /token|401|unauthori[sz]ed|signature/i.test(document.getElementById('conn-error').textContent),
      null,
      { timeout: MESSAGE_TIMEOUT },
    ).catch(() => {});
    const text = await error.textContent();
    assert.match(text, /token|401|unauthori[sz]ed|signature/i, `error shown: ${text}`);
  });
});
