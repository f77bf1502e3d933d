// The dashboard end to end, in headless Chromium (Debian's `chromium`,
// driven by playwright-core): sign in (a wrong token first), the empty
// state's curl command run as shown, events sent with Segment's Python
// client, then the rendered chart data, top lists, funnel numbers,
// retention grid, dead letters and live tail checked against what was
// sent; errors shown to the person (query error, server unreachable); a
// phone viewport without horizontal scrolling. Any console error or page
// error that a step does not expect fails the run. Screenshots go to the
// artifacts directory.
//
// usage: node dashboard.mjs BASE_URL [ARTIFACTS_DIR]
// (CHROMIUM overrides the browser path, default /usr/bin/chromium)

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const [base, artifactsArg] = process.argv.slice(2);
if (!base) {
  console.error('usage: node dashboard.mjs BASE_URL [ARTIFACTS_DIR]');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const artifacts = resolve(artifactsArg || join(here, '../../target/e2e'));
mkdirSync(artifacts, { recursive: true });
const TOKEN = 'dev-read-token';
const started = Date.now();
// The whole run is bounded: a hang fails instead of blocking the suite.
const deadline = setTimeout(() => {
  console.error('dashboard e2e: over 150 s, giving up');
  process.exit(1);
}, 150_000);

function step(text) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${text}`);
}

/** Sends a batch with Segment's Python client (tests/e2e/send_events.py). */
function send(what) {
  execFileSync('python3', [join(here, 'send_events.py'), base, 'dev-write-key', what], {
    stdio: 'inherit',
    timeout: 30_000,
  });
}

/** Console and page errors of a page; `expect(re, fn)` allows matching ones during fn. */
function watchErrors(page, label) {
  const errors = [];
  let allowed = null;
  const seen = (text) => {
    if (allowed && allowed.re.test(text)) allowed.count += 1;
    else errors.push(`${label}: ${text}`);
  };
  page.on('console', (m) => {
    if (m.type() === 'error') seen(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => seen(`page error: ${e.message}`));
  return {
    errors,
    async expect(re, fn) {
      allowed = { re, count: 0 };
      try {
        await fn();
      } finally {
        allowed = null;
      }
    },
    check() {
      assert.deepEqual(errors, [], 'console or page errors');
    },
  };
}

async function text(page, selector) {
  return (await page.locator(selector).first().textContent()).trim();
}

/** Waits until the page function returns truthy (with `arg`), or fails with `what`. */
async function until(page, what, fn, arg, timeout = 30_000) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 100 });
  } catch (e) {
    throw new Error(`timed out waiting for ${what}: ${e.message.split('\n')[0]}`);
  }
}

/** The API's counts over the last `range` ms, as the dashboard asks for them. */
async function apiCounts(page, bucket, range = 86400000) {
  return page.evaluate(
    async ([token, bucket, range]) => {
      const width = { minute: 60000, hour: 3600000 }[bucket];
      const to = Date.now() + 1;
      const from = Math.floor((to - range) / width) * width;
      const r = await fetch(`/api/v1/counts?bucket=${bucket}&from=${from}&to=${to}`, { headers: { Authorization: `Bearer ${token}` } });
      return (await r.json()).buckets;
    },
    [TOKEN, bucket, range],
  );
}

async function signIn(page, token) {
  await page.getByLabel('Read token', { exact: true }).fill(token);
  await page.getByRole('button', { name: 'Open dashboard' }).click();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // Root (CI containers) cannot use Chromium's sandbox.
  chromiumSandbox: false,
  headless: true,
});
try {
  const desktop = await browser.newContext({
    viewport: { width: 1280, height: 900 },
    permissions: ['clipboard-read', 'clipboard-write'],
  });
  const page = await desktop.newPage();
  const watch = watchErrors(page, 'desktop');

  step('open the dashboard');
  const resp = await page.goto(`${base}/dashboard/`);
  assert.equal(resp.status(), 200);
  assert.match(resp.headers()['content-type'], /^text\/html/);
  await page.getByLabel('Read token', { exact: true }).waitFor();
  // Keyboard: the token field has the focus, and Tab reaches the button.
  assert.equal(await page.evaluate(() => document.activeElement.id), 'token');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Open dashboard');

  step('a wrong token is refused and said so');
  await watch.expect(/status of 403/, async () => {
    await signIn(page, 'wrong-token');
    await until(page, 'the refused-token message', () => /refused/.test(document.getElementById('login-error').textContent));
  });
  assert.equal(await page.locator('#app').isHidden(), true);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);

  step('the right token: an empty source shows how to send events');
  await signIn(page, TOKEN);
  await page.locator('#empty').waitFor({ state: 'visible' });
  assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), 'tributary.readToken'), TOKEN);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.ok(!page.url().includes(TOKEN), 'the token is in the URL');
  const curl = await text(page, '#curl-snippet');
  assert.ok(curl.includes(`${base}/v1/track`), curl);
  assert.ok((await text(page, '#py-snippet')).includes(`analytics.host = '${base}'`));
  assert.ok((await text(page, '#js-snippet')).includes(`host: '${base}'`));
  // The copy buttons are named for what they copy, and copy it.
  await page.getByRole('button', { name: 'Copy the curl command' }).click();
  await until(page, 'the copy confirmation', () => /Copied/.test(document.getElementById('copy-status').textContent));
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), curl);
  await page.screenshot({ path: join(artifacts, 'dashboard-empty.png'), fullPage: true });

  step('run the empty state curl command as shown; the page notices the event');
  execFileSync('sh', ['-c', `${curl} --fail-with-body --silent --show-error`], { stdio: 'inherit', timeout: 15_000 });
  await page.locator('#empty').waitFor({ state: 'hidden', timeout: 30_000 });
  await until(page, 'the first event in the chart', () => document.getElementById('overview').dataset.total === '1');

  step('send events with Segment Python client; refresh');
  send('all');
  // 1 (curl) + 9 pages + 11 valid tracks; one track is rejected.
  const expectedTotal = 21;
  await page.getByRole('button', { name: 'Refresh' }).click();
  await until(page, `${expectedTotal} events in the chart`, (n) => document.getElementById('overview').dataset.total === String(n), expectedTotal);
  assert.equal(await text(page, '#total-events'), String(expectedTotal));
  const barSum = await page.$$eval('#timeline rect.bar', (rs) => rs.reduce((s, r) => s + Number(r.dataset.count), 0));
  assert.equal(barSum, expectedTotal, 'the bars add up to the events sent');
  const apiHours = await apiCounts(page, 'hour');
  assert.equal(apiHours.reduce((s, b) => s + b.count, 0), expectedTotal);
  const peak = Math.max(...apiHours.map((b) => b.unique_users));
  assert.ok(peak >= 3 && peak <= 5, `unique users in one hour: ${peak}`);
  assert.equal(await text(page, '#peak-users'), String(peak));

  step('the last hour in minutes: one bar per minute the API has');
  await page.getByLabel('Range', { exact: true }).selectOption('3600000');
  await page.getByLabel('Bucket', { exact: true }).selectOption('minute');
  await until(page, 'minute buckets', () => /minute/.test(document.getElementById('peak-users-label').textContent) && document.getElementById('overview').dataset.state === 'ready' && document.querySelectorAll('#timeline rect.bar').length > 2);
  const apiMinutes = (await apiCounts(page, 'minute', 3600000)).filter((b) => b.count > 0).map((b) => [b.start, b.count]);
  const bars = await page.$$eval('#timeline rect.bar', (rs) => rs.map((r) => [Number(r.dataset.start), Number(r.dataset.count)]));
  assert.deepEqual(bars, apiMinutes, 'one bar per non-empty minute, with its count');
  assert.equal(bars.reduce((s, b) => s + b[1], 0), expectedTotal);

  step('top events, pages and referrers');
  const list = (id) => page.$$eval(`#${id} ol li`, (lis) => lis.map((li) => [li.dataset.label, Number(li.dataset.value)]));
  const topEvents = new Map(await list('top-events'));
  for (const [name, n] of [['Product Viewed', 5], ['Added to Cart', 3], ['Order Completed', 2], ['Home', 5], ['Pricing', 3], ['Signed Up', 1]]) {
    assert.equal(topEvents.get(name), n, `top events: ${name}`);
  }
  assert.deepEqual(await list('top-pages'), [['/', 5], ['/pricing', 3], ['/docs', 1]]);
  assert.deepEqual(await list('top-referrers'), [['https://news.example/', 5], ['(none)', 4]]);

  step('a three-step funnel');
  await page.getByRole('button', { name: 'Add a step' }).click();
  await page.getByLabel('Step 1', { exact: true }).selectOption('Product Viewed');
  await page.getByLabel('Step 2', { exact: true }).selectOption('Added to Cart');
  await page.getByLabel('Step 3', { exact: true }).selectOption('Order Completed');
  await page.getByRole('button', { name: 'Run funnel' }).click();
  await until(page, 'funnel 5 > 3 > 2', () => [...document.querySelectorAll('#funnel-result li')].map((li) => li.dataset.users).join() === '5,3,2');
  const funnelText = await text(page, '#funnel-result');
  assert.match(funnelText, /60% of step 1/);
  assert.match(funnelText, /40% of step 1/);
  assert.match(funnelText, /66\.7% of step 2/);

  step('retention grid');
  await page.getByLabel('Cohort event', { exact: true }).selectOption('Product Viewed');
  await page.getByLabel('Return event', { exact: true }).selectOption('Product Viewed');
  await page.getByRole('button', { name: 'Show retention' }).click();
  // Cohorts are days (UTC): 5 users, all returning on their first day
  // (split over two cohorts if the hour before the run spans midnight).
  await until(page, 'cohorts of 5 users', () => [...document.querySelectorAll('#retention-grid tbody tr')].reduce((s, tr) => s + Number(tr.dataset.users), 0) === 5);
  const dayZero = await page.$$eval('#retention-grid tbody tr', (trs) => trs.map((tr) => Number(tr.querySelector('td[data-returning]').dataset.returning)));
  assert.equal(dayZero.reduce((s, n) => s + n, 0), 5, `day 0 returns: ${dayZero}`);

  step('dead letters and the live tail');
  await until(page, 'a dead letter', () => document.querySelectorAll('#dead-table tbody tr').length > 0, undefined, 10_000);
  const dead = await page.$$eval('#dead-table tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  assert.equal(dead.length, 1, JSON.stringify(dead));
  assert.equal(dead[0][3], 'Order Completed');
  assert.match(dead[0][2], /total/, 'the reason names the field');
  await until(page, 'the latest event on top of the live tail', () => {
    const row = document.querySelector('#live-table tbody tr');
    return row && /Newsletter Subscribed/.test(row.textContent) && /user-4/.test(row.textContent);
  });
  await page.screenshot({ path: join(artifacts, 'dashboard-desktop.png'), fullPage: true, animations: 'disabled' });
  send('ping');
  await until(page, 'the new event arriving in the live tail', () => {
    const row = document.querySelector('#live-table tbody tr');
    return row && /Live Ping/.test(row.textContent) && row.classList.contains('new');
  }, undefined, 30_000);

  step('errors are shown: a query error, then an unreachable server');
  await watch.expect(/status of 400/, async () => {
    await page.route('**/api/v1/funnel?**', (route) =>
      route.fulfill({ status: 400, contentType: 'application/json', body: JSON.stringify({ code: 'invalid_parameter', message: 'steps must name events' }) }),
    );
    await page.getByRole('button', { name: 'Run funnel' }).click();
    await until(page, 'the query error', () => /Query error: steps must name events/.test(document.querySelector('#funnel .status').textContent));
    await page.unroute('**/api/v1/funnel?**');
  });
  await page.getByLabel('Bucket', { exact: true }).selectOption('hour');
  await watch.expect(/ERR_CONNECTION_REFUSED|ERR_FAILED/, async () => {
    await page.route('**/api/v1/**', (route) => route.abort('connectionrefused'));
    await page.getByRole('button', { name: 'Refresh' }).click();
    await until(page, 'the unreachable-server alert', () => !document.getElementById('alert').hidden && /Cannot reach the server/.test(document.getElementById('alert').textContent));
    await page.screenshot({ path: join(artifacts, 'dashboard-unreachable.png') });
    await page.unroute('**/api/v1/**');
  });
  await page.getByRole('button', { name: 'Refresh' }).click();
  await until(page, 'the alert cleared', () => document.getElementById('alert').hidden);
  watch.check();

  step('a phone: usable without horizontal scrolling');
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const mobile = await phone.newPage();
  const mobileWatch = watchErrors(mobile, 'phone');
  await mobile.goto(`${base}/dashboard/`);
  await signIn(mobile, TOKEN);
  await until(mobile, 'the chart on a phone', (n) => document.getElementById('overview').dataset.total === String(n), expectedTotal + 1);
  await until(mobile, 'the funnel on a phone', () => document.querySelectorAll('#funnel-result li').length >= 2);
  const widths = await mobile.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  assert.ok(widths[0] <= widths[1], `horizontal scrolling on a phone: ${widths}`);
  await mobile.screenshot({ path: join(artifacts, 'dashboard-phone.png'), fullPage: true, animations: 'disabled' });
  mobileWatch.check();

  step(`passed; screenshots in ${artifacts}`);
} finally {
  clearTimeout(deadline);
  await browser.close();
}
