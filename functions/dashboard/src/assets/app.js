// Tributary dashboard: vanilla JS, hand-drawn SVG, nothing loaded from
// elsewhere. It reads the query API (/api/v1/...) with a read token kept in
// sessionStorage (this tab only; never in a URL) and shows every failure to
// the person: a refused token, a query error, an unreachable server, and a
// report this server does not have ("not available").
'use strict';

const TOKEN_KEY = 'tributary.readToken';
const LIVE_MS = 5000;
const LIVE_ROWS = 20;
const MAX_BUCKETS = 1500;
const BUCKET_MS = { minute: 60000, hour: 3600000, day: 86400000 };
const SVG = 'http://www.w3.org/2000/svg';

const state = {
  token: null,
  names: [],
  empty: null,
  liveTimer: null,
  livePaused: false,
  lastLiveId: null,
  // Bumped by every loadAll: answers to an older one are not drawn.
  generation: 0,
};

const byId = (id) => document.getElementById(id);

/** A failed API call, with what kind of failure it was. */
class ApiError extends Error {
  constructor(kind, status, message) {
    super(message);
    this.kind = kind; // auth | query | missing | server | network
    this.status = status;
  }
}

/** GET /api/v1/PATH with the token; the JSON answer, or an ApiError. */
async function api(path, params = {}) {
  const url = new URL('/api/v1/' + path, location.origin);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  }
  let resp;
  try {
    resp = await fetch(url, {
      headers: { Authorization: 'Bearer ' + state.token, Accept: 'application/json' },
      cache: 'no-store',
    });
  } catch (e) {
    setAlert(`Cannot reach the server at ${location.origin}: is it running? The dashboard retries on the next refresh.`);
    throw new ApiError('network', 0, 'Server unreachable.');
  }
  setAlert('');
  let body = null;
  try {
    body = await resp.json();
  } catch (e) {
    body = null;
  }
  if (resp.ok) {
    if (body === null || typeof body !== 'object') {
      throw new ApiError('server', resp.status, 'The server answered with something that is not JSON.');
    }
    return body;
  }
  const message = body && typeof body.message === 'string' ? body.message : resp.statusText || 'no reason given';
  if (resp.status === 401 || resp.status === 403) {
    throw new ApiError('auth', resp.status, `The read token was refused (${message}).`);
  }
  if (resp.status === 404) throw new ApiError('missing', 404, 'Not available on this server.');
  if (resp.status < 500) throw new ApiError('query', resp.status, `Query error: ${message}`);
  throw new ApiError('server', resp.status, `Server error (${resp.status}): ${message}`);
}

function setAlert(text) {
  const alert = byId('alert');
  if (alert.textContent !== text) alert.textContent = text;
  alert.hidden = !text;
}

/** Shows a section's state: a message, or an error (styled as one). */
function setStatus(section, text, isError = false) {
  const status = section.querySelector('.status');
  status.textContent = text;
  status.classList.toggle('is-error', isError);
}

/** Reports a failure in its section; a refused token signs out. */
function fail(section, err) {
  if (!(err instanceof ApiError)) err = new ApiError('server', 0, `Something went wrong: ${err.message || err}`);
  if (err.kind === 'auth') {
    signOut(err.message);
    return;
  }
  setStatus(section, err.message, true);
  section.dataset.state = err.kind;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const child of children) node.append(child);
  return node;
}

const fmt = new Intl.NumberFormat();
function fmtTime(ms, withDate = true) {
  const d = new Date(ms);
  return withDate ? d.toLocaleString() : d.toLocaleTimeString();
}
function pct(x) {
  return `${Math.round(x * 1000) / 10}%`;
}

/** The chosen window: [from, to) in ms and the bucket name and width. */
function window_() {
  const range = Number(byId('range').value);
  const bucket = byId('bucket').value;
  const width = BUCKET_MS[bucket];
  const to = Date.now() + 1;
  const from = Math.floor((to - range) / width) * width;
  return { from, to, bucket, width };
}

// ---- sign in and out ----

function showLogin(message = '') {
  stopLive();
  byId('app').hidden = true;
  byId('sign-out').hidden = true;
  byId('login').hidden = false;
  byId('login-error').textContent = message;
  byId('token').value = '';
  byId('token').focus();
}

function signOut(message = '') {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.empty = null;
  state.lastLiveId = null;
  setAlert('');
  showLogin(message);
}

async function signIn(event) {
  event.preventDefault();
  const token = byId('token').value.trim();
  if (!token) {
    byId('login-error').textContent = 'Enter a read token.';
    byId('token').focus();
    return;
  }
  state.token = token;
  const button = event.target.querySelector('button');
  button.disabled = true;
  try {
    await api('event-names');
  } catch (err) {
    state.token = null;
    byId('login-error').textContent =
      err.kind === 'auth' ? 'That token was refused: check the read token and try again.' : err.message;
    byId('token').focus();
    return;
  } finally {
    button.disabled = false;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  start();
}

function start() {
  byId('login').hidden = true;
  byId('app').hidden = false;
  byId('sign-out').hidden = false;
  byId('main').focus();
  fillSnippets();
  state.lastLiveId = null;
  byId('live-table').tBodies[0].replaceChildren();
  // The live tail also notices the first events of an empty source.
  refreshLive().then(() => {
    if (state.empty === false) loadAll();
    // Rejects are worth seeing even before any event is stored.
    else if (state.empty === true) loadDeadLetters();
  });
  startLive();
}

// ---- empty state ----

function fillSnippets() {
  const host = location.origin;
  byId('curl-snippet').textContent =
    `curl -X POST ${host}/v1/track \\\n` +
    `  -u 'dev-write-key:' \\\n` +
    `  -H 'Content-Type: application/json' \\\n` +
    `  -d '{"userId": "user-1", "event": "Signed Up", "properties": {"plan": "pro"}}'`;
  byId('js-snippet').textContent =
    `// npm install @segment/analytics-node\n` +
    `import { Analytics } from '@segment/analytics-node'\n\n` +
    `const analytics = new Analytics({ writeKey: 'dev-write-key', host: '${host}' })\n` +
    `analytics.track({ userId: 'user-1', event: 'Signed Up', properties: { plan: 'pro' } })`;
  byId('py-snippet').textContent =
    `# pip install segment-analytics-python\n` +
    `import segment.analytics as analytics\n\n` +
    `analytics.write_key = 'dev-write-key'\n` +
    `analytics.host = '${host}'\n` +
    `analytics.track('user-1', 'Signed Up', {'plan': 'pro'})\n` +
    `analytics.flush()`;
}

async function copySnippet(button) {
  const pre = byId(button.dataset.copy);
  const status = byId('copy-status');
  try {
    await navigator.clipboard.writeText(pre.textContent);
    status.textContent = 'Copied to the clipboard.';
  } catch (e) {
    // No clipboard access: select the text so the person can copy it.
    const range = document.createRange();
    range.selectNodeContents(pre);
    const selection = getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    status.textContent = 'Selected: press Ctrl+C (or Cmd+C) to copy.';
  }
  button.firstChild.textContent = 'Copied ';
  setTimeout(() => {
    button.firstChild.textContent = 'Copy ';
  }, 2000);
}

function setEmpty(empty) {
  if (state.empty === empty) return;
  state.empty = empty;
  byId('empty').hidden = !empty;
  byId('controls').hidden = empty;
  for (const section of document.querySelectorAll('.grid > .card')) {
    if (section.id !== 'live' && section.id !== 'dead-letters') section.hidden = empty;
  }
}

// ---- loading ----

async function loadAll() {
  const generation = ++state.generation;
  const controlsError = byId('controls-error');
  controlsError.textContent = '';
  const w = window_();
  if ((w.to - w.from) / w.width > MAX_BUCKETS) {
    controlsError.textContent = `That is more than ${MAX_BUCKETS} ${w.bucket} buckets: pick a wider bucket or a shorter range.`;
    return;
  }
  try {
    const names = await api('event-names');
    state.names = Array.isArray(names.event_names) ? names.event_names.filter((n) => typeof n === 'string') : [];
  } catch (err) {
    if (err.kind === 'auth') return signOut(err.message);
    state.names = [];
  }
  if (generation !== state.generation) return;
  fillEventPickers();
  w.generation = generation;
  await Promise.allSettled([
    loadTimeline(w),
    loadTopEvents(w),
    loadTop(byId('top-pages'), 'top/pages', w, 'No page views in this range.'),
    loadTop(byId('top-referrers'), 'top/referrers', w, 'No referrers in this range.'),
    runFunnel(),
    runRetention(),
    loadDeadLetters(),
  ]);
}

/** Whether a newer loadAll has started since the one that chose `w`. */
function stale(w) {
  return w.generation !== undefined && w.generation !== state.generation;
}

async function loadTimeline(w) {
  const section = byId('overview');
  setStatus(section, 'Loading…');
  let data;
  try {
    data = await api('counts', { from: w.from, to: w.to, bucket: w.bucket });
  } catch (err) {
    return stale(w) || fail(section, err);
  }
  if (stale(w)) return;
  const counts = new Map();
  for (const b of Array.isArray(data.buckets) ? data.buckets : []) {
    if (Number.isFinite(b.start)) counts.set(b.start, { count: b.count || 0, users: b.unique_users || 0 });
  }
  const buckets = [];
  for (let t = w.from; t < w.to; t += w.width) {
    const c = counts.get(t) || { count: 0, users: 0 };
    buckets.push({ start: t, ...c });
  }
  const total = buckets.reduce((s, b) => s + b.count, 0);
  const peak = buckets.reduce((m, b) => Math.max(m, b.users), 0);
  const active = buckets.filter((b) => b.count > 0).length;
  byId('total-events').textContent = fmt.format(total);
  byId('peak-users').textContent = fmt.format(peak);
  byId('peak-users-label').textContent = `Unique users (busiest ${w.bucket})`;
  byId('active-buckets').textContent = fmt.format(active);
  section.dataset.total = String(total);
  setStatus(section, total === 0 ? 'No events in this range.' : '');
  drawTimeline(buckets, w, total);
  const tbody = byId('timeline-table').tBodies[0];
  tbody.replaceChildren(
    ...buckets
      .filter((b) => b.count > 0)
      .map((b) => el('tr', {}, el('td', {}, fmtTime(b.start)), el('td', {}, fmt.format(b.count)), el('td', {}, fmt.format(b.users)))),
  );
  section.dataset.state = 'ready';
}

function drawTimeline(buckets, w, total) {
  const W = 800, H = 240, left = 40, right = 10, top = 10, bottom = 30;
  const plotW = W - left - right, plotH = H - top - bottom;
  const max = Math.max(1, ...buckets.map((b) => Math.max(b.count, b.users)));
  const step = plotW / buckets.length;
  const y = (v) => top + plotH - (v / max) * plotH;
  const title = svg('title', { id: 'timeline-svg-title' });
  title.textContent = `${fmt.format(total)} events in ${buckets.length} ${w.bucket} buckets from ${fmtTime(w.from)}; the most in one bucket: ${fmt.format(max)}.`;
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'timeline-svg-title' }, title);
  chart.append(svg('line', { class: 'axis', x1: left, y1: top + plotH, x2: W - right, y2: top + plotH }));
  chart.append(svg('line', { class: 'axis', x1: left, y1: top, x2: left, y2: top + plotH }));
  const maxLabel = svg('text', { x: left - 4, y: top + 10, 'text-anchor': 'end' });
  maxLabel.textContent = fmt.format(max);
  const zero = svg('text', { x: left - 4, y: top + plotH, 'text-anchor': 'end' });
  zero.textContent = '0';
  const first = svg('text', { x: left, y: H - 8 });
  first.textContent = fmtTime(w.from);
  const last = svg('text', { x: W - right, y: H - 8, 'text-anchor': 'end' });
  last.textContent = fmtTime(buckets[buckets.length - 1].start);
  chart.append(maxLabel, zero, first, last);
  const bars = svg('g', { class: 'bars' });
  const points = [];
  buckets.forEach((b, i) => {
    const x = left + i * step;
    points.push(`${(x + step / 2).toFixed(1)},${y(b.users).toFixed(1)}`);
    if (b.count === 0) return;
    const h = Math.max(1, (b.count / max) * plotH);
    const rect = svg('rect', {
      class: 'bar',
      x: (x + step * 0.1).toFixed(1),
      y: (top + plotH - h).toFixed(1),
      width: Math.max(0.5, step * 0.8).toFixed(1),
      height: h.toFixed(1),
      'data-start': b.start,
      'data-count': b.count,
      'data-users': b.users,
    });
    const tip = svg('title');
    tip.textContent = `${fmtTime(b.start)}: ${fmt.format(b.count)} events, ${fmt.format(b.users)} users`;
    rect.append(tip);
    bars.append(rect);
  });
  chart.append(bars, svg('polyline', { class: 'users', points: points.join(' ') }));
  byId('timeline').replaceChildren(chart);
}

/** A ranked list of `[label, value, detail]` with proportional meters. */
function drawList(section, items, emptyText) {
  const list = section.querySelector('ol');
  const max = Math.max(1, ...items.map((i) => i[1]));
  list.replaceChildren(
    ...items.map(([label, value, detail]) => {
      const meter = el('span');
      meter.style.width = `${(value / max) * 100}%`;
      return el(
        'li',
        { 'data-label': label, 'data-value': value },
        el('div', { class: 'row' }, el('span', { class: 'name' }, label), el('span', {}, detail)),
        el('div', { class: 'meter', 'aria-hidden': 'true' }, meter),
      );
    }),
  );
  setStatus(section, items.length ? '' : emptyText);
  section.dataset.state = 'ready';
}

async function loadTopEvents(w) {
  const section = byId('top-events');
  setStatus(section, 'Loading…');
  try {
    const data = await api('counts', { from: w.from, to: w.to, bucket: 'day', group_by: 'event' });
    if (stale(w)) return;
    const sums = new Map();
    for (const b of Array.isArray(data.buckets) ? data.buckets : []) {
      const name = typeof b.group === 'string' ? b.group : '(unnamed: identify, group, alias…)';
      sums.set(name, (sums.get(name) || 0) + (b.count || 0));
    }
    const items = [...sums.entries()]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, 10)
      .map(([name, n]) => [name, n, `${fmt.format(n)} events`]);
    drawList(section, items, 'No events in this range.');
  } catch (err) {
    if (!stale(w)) fail(section, err);
  }
}

async function loadTop(section, path, w, emptyText) {
  setStatus(section, 'Loading…');
  try {
    const data = await api(path, { from: w.from, to: w.to, limit: 10 });
    if (stale(w)) return;
    const items = (Array.isArray(data.rows) ? data.rows : []).map((r) => [
      typeof r.value === 'string' ? r.value : '(none)',
      r.events || 0,
      `${fmt.format(r.events || 0)} views · ${fmt.format(r.unique_users || 0)} users`,
    ]);
    drawList(section, items, emptyText);
  } catch (err) {
    if (!stale(w)) fail(section, err);
  }
}

// ---- funnel ----

function nameSelect(id, label, value) {
  const select = el('select', { id });
  for (const name of state.names) select.append(el('option', { value: name }, name));
  if (value && state.names.includes(value)) select.value = value;
  return [el('label', { for: id }, label), select];
}

function addFunnelStep(value) {
  const list = byId('funnel-steps');
  const n = list.children.length + 1;
  if (n > 10) return;
  const id = `funnel-step-${Date.now().toString(36)}-${n}`;
  const remove = el('button', { type: 'button', class: 'secondary' }, 'Remove');
  const li = el('li', {}, el('div', { class: 'step' }, ...nameSelect(id, `Step ${n}`, value), remove));
  remove.addEventListener('click', () => {
    li.remove();
    renumberSteps();
    byId('funnel-add').focus();
  });
  list.append(li);
  renumberSteps();
}

function renumberSteps() {
  const items = [...byId('funnel-steps').children];
  items.forEach((li, i) => {
    li.querySelector('label').textContent = `Step ${i + 1}`;
    li.querySelector('button').setAttribute('aria-label', `Remove step ${i + 1}`);
    li.querySelector('button').disabled = items.length <= 2;
  });
  byId('funnel-add').disabled = items.length >= 10;
}

function fillEventPickers() {
  const steps = byId('funnel-steps');
  const chosen = [...steps.querySelectorAll('select')].map((s) => s.value);
  steps.replaceChildren();
  const defaults = chosen.length >= 2 ? chosen : state.names.slice(0, 2);
  for (const v of defaults) addFunnelStep(v);
  while (steps.children.length < 2) addFunnelStep();
  for (const id of ['retention-start', 'retention-return']) {
    const select = byId(id);
    const keep = select.value;
    select.replaceChildren(...state.names.map((n) => el('option', { value: n }, n)));
    if (state.names.includes(keep)) select.value = keep;
  }
}

async function runFunnel(event) {
  if (event) event.preventDefault();
  const section = byId('funnel');
  const result = byId('funnel-result');
  const steps = [...byId('funnel-steps').querySelectorAll('select')].map((s) => s.value).filter(Boolean);
  if (steps.length < 2) {
    result.replaceChildren();
    setStatus(section, 'A funnel needs at least two steps with events; send some events first.');
    return;
  }
  setStatus(section, 'Loading…');
  const w = window_();
  try {
    const data = await api('funnel', {
      from: w.from,
      to: w.to,
      steps: JSON.stringify(steps),
      window: byId('funnel-window').value,
    });
    const rows = Array.isArray(data.steps) ? data.steps : [];
    const first = Math.max(1, rows[0] ? rows[0].users : 0);
    result.replaceChildren(
      ...rows.map((s, i) => {
        const meter = el('span');
        meter.style.width = `${(s.users / first) * 100}%`;
        const median = Number.isFinite(s.median_ms_from_previous) ? ` · median ${duration(s.median_ms_from_previous)} after step ${i}` : '';
        return el(
          'li',
          { 'data-event': s.event, 'data-users': s.users },
          el(
            'div',
            { class: 'row' },
            el('strong', {}, `${i + 1}. ${s.event}`),
            el('span', {}, ` ${fmt.format(s.users)} users · ${pct(s.conversion)} of step 1${i ? ` · ${pct(s.step_conversion)} of step ${i}` : ''}${median}`),
          ),
          el('div', { class: 'meter', 'aria-hidden': 'true' }, meter),
        );
      }),
    );
    setStatus(section, rows.length && rows[0].users === 0 ? 'No user did the first step in this range.' : '');
    section.dataset.state = 'ready';
  } catch (err) {
    result.replaceChildren();
    fail(section, err);
  }
}

function duration(ms) {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7200000) return `${Math.round(ms / 60000)} min`;
  if (ms < 172800000) return `${Math.round(ms / 3600000)} h`;
  return `${Math.round(ms / 86400000)} d`;
}

// ---- retention ----

async function runRetention(event) {
  if (event) event.preventDefault();
  const section = byId('retention');
  const grid = byId('retention-grid');
  const start = byId('retention-start').value;
  if (!start) {
    grid.replaceChildren();
    setStatus(section, 'Retention needs an event; send some events first.');
    return;
  }
  const period = byId('retention-period').value;
  const periods = period === 'day' ? 7 : 4;
  const w = window_();
  const span = (periods + 1) * BUCKET_MS.day * (period === 'day' ? 1 : 7);
  setStatus(section, 'Loading…');
  try {
    const data = await api('retention', {
      from: Math.min(w.from, w.to - span),
      to: w.to,
      start_event: start,
      return_event: byId('retention-return').value || start,
      period,
      periods,
    });
    const cohorts = Array.isArray(data.cohorts) ? data.cohorts : [];
    const head = el('tr', {}, el('th', { scope: 'col' }, 'Cohort'), el('th', { scope: 'col' }, 'Users'));
    for (let i = 0; i <= periods; i++) head.append(el('th', { scope: 'col' }, `${period === 'day' ? 'Day' : 'Week'} ${i}`));
    const rows = cohorts.map((c) => {
      const tr = el('tr', { 'data-users': c.users }, el('th', { scope: 'row' }, new Date(c.start).toLocaleDateString()), el('td', {}, fmt.format(c.users)));
      for (let i = 0; i <= periods; i++) {
        const returning = Array.isArray(c.returning) ? c.returning[i] : undefined;
        const share = Array.isArray(c.retention) ? c.retention[i] : undefined;
        if (returning === undefined || share === undefined) {
          tr.append(el('td', {}, ''));
          continue;
        }
        const heat = share >= 0.75 ? 4 : share >= 0.5 ? 3 : share >= 0.25 ? 2 : share > 0 ? 1 : 0;
        tr.append(el('td', { class: `heat-${heat}`, 'data-returning': returning, title: `${returning} of ${c.users} users` }, pct(share)));
      }
      return tr;
    });
    grid.replaceChildren(
      el('caption', { class: 'sr' }, `Share of each cohort doing ${byId('retention-return').value || start} in each ${period} after its first ${start}`),
      el('thead', {}, head),
      el('tbody', {}, ...rows),
    );
    setStatus(section, cohorts.length ? '' : 'No cohorts in this range.');
    section.dataset.state = 'ready';
  } catch (err) {
    grid.replaceChildren();
    fail(section, err);
  }
}

// ---- live tail and dead letters ----

function startLive() {
  stopLive();
  state.liveTimer = setInterval(() => {
    if (!state.livePaused && !document.hidden && state.token) refreshLive();
  }, LIVE_MS);
}

function stopLive() {
  if (state.liveTimer) clearInterval(state.liveTimer);
  state.liveTimer = null;
}

async function refreshLive() {
  const section = byId('live');
  let data;
  try {
    data = await api('events', { limit: LIVE_ROWS });
  } catch (err) {
    return fail(section, err);
  }
  const rows = (Array.isArray(data.rows) ? data.rows : []).filter((r) => Array.isArray(r) && r.length >= 7);
  const wasEmpty = state.empty;
  setEmpty(rows.length === 0);
  setStatus(section, rows.length ? '' : 'Waiting for events…');
  const tbody = byId('live-table').tBodies[0];
  const fresh = state.lastLiveId === null ? rows : rows.filter((r) => r[0] > state.lastLiveId);
  const mark = state.lastLiveId !== null;
  for (const r of [...fresh].reverse()) {
    const [id, , type, name, userId, anonymousId, ts] = r;
    const tr = el(
      'tr',
      { 'data-id': id, class: mark ? 'new' : '' },
      el('td', {}, fmtTime(ts, false)),
      el('td', {}, String(type)),
      el('td', {}, name === null ? '—' : String(name)),
      el('td', {}, String(userId ?? anonymousId ?? '—')),
    );
    tbody.prepend(tr);
  }
  while (tbody.rows.length > LIVE_ROWS) tbody.deleteRow(-1);
  if (rows.length) state.lastLiveId = Math.max(state.lastLiveId ?? 0, rows[0][0]);
  section.dataset.state = 'ready';
  if (wasEmpty === true && state.empty === false) loadAll();
  else if (fresh.length && mark) loadDeadLetters();
}

async function loadDeadLetters() {
  const section = byId('dead-letters');
  setStatus(section, 'Loading…');
  let data;
  try {
    data = await api('dead-letters', { limit: 20 });
  } catch (err) {
    return fail(section, err);
  }
  const rows = (Array.isArray(data.rows) ? data.rows : []).filter((r) => Array.isArray(r) && r.length >= 5);
  byId('dead-table').tBodies[0].replaceChildren(
    ...rows.map(([id, code, reason, received, raw]) => {
      let what = '—';
      try {
        const msg = typeof raw === 'string' ? JSON.parse(raw) : raw;
        if (msg && typeof msg === 'object') what = msg.event || msg.type || '—';
      } catch (e) {
        what = '—';
      }
      return el('tr', { 'data-id': id }, el('td', {}, fmtTime(received)), el('td', {}, String(code)), el('td', {}, String(reason)), el('td', {}, String(what)));
    }),
  );
  setStatus(section, rows.length ? '' : 'No rejected messages.');
  section.dataset.state = 'ready';
}

// ---- wiring ----

document.addEventListener('DOMContentLoaded', () => {
  byId('login-form').addEventListener('submit', signIn);
  byId('sign-out').addEventListener('click', () => signOut('Signed out: the token is forgotten.'));
  byId('controls').addEventListener('submit', (e) => {
    e.preventDefault();
    loadAll();
  });
  byId('range').addEventListener('change', () => loadAll());
  byId('bucket').addEventListener('change', () => loadAll());
  byId('funnel-form').addEventListener('submit', runFunnel);
  byId('funnel-add').addEventListener('click', () => {
    addFunnelStep();
    const selects = byId('funnel-steps').querySelectorAll('select');
    selects[selects.length - 1].focus();
  });
  byId('retention-form').addEventListener('submit', runRetention);
  for (const button of document.querySelectorAll('.copy')) {
    button.addEventListener('click', () => copySnippet(button));
  }
  byId('live-toggle').addEventListener('click', (e) => {
    state.livePaused = !state.livePaused;
    e.target.setAttribute('aria-pressed', String(state.livePaused));
    e.target.textContent = state.livePaused ? 'Resume' : 'Pause';
    if (!state.livePaused) refreshLive();
  });
  state.token = sessionStorage.getItem(TOKEN_KEY);
  if (state.token) start();
  else showLogin();
});
