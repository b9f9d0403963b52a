// The approvals console: one static page, its script and its style, served by approvals-api.ts
// under a CSP that allows only these same-origin files (no inline script or style, nothing
// external). The page holds no data: the script fetches it from /api/* and follows changes
// over server-sent events. Data only ever reaches the DOM as text (textContent, text nodes),
// never as markup: a tool's arguments are the agent's, and the agent is not trusted.

const escapeHtml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

const HEAD = `<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>ThoughtGate approvals</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/approvals/console.css">
<script src="/approvals/console.js" defer></script>`;

/** Shown instead of the console without a valid token: a form that posts it to /approvals/login. */
export function loginPage(message?: string): string {
  return `<!doctype html>
<html lang="en">
<head>
${HEAD}
</head>
<body data-page="login">
<main class="login">
<h1>ThoughtGate approvals</h1>
<p id="unauthorized">Sign in with your approver token, or the admin token (<code>THOUGHTGATE_ADMIN_TOKEN</code>; its decisions count as the one <code>operator</code>).</p>
${message === undefined ? '' : `<p class="error" role="alert">${escapeHtml(message)}</p>\n`}<form method="post" action="/approvals/login">
<label>Token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
`;
}

export const CONSOLE_HTML = `<!doctype html>
<html lang="en">
<head>
${HEAD}
</head>
<body data-page="console">
<header class="top">
<h1>ThoughtGate approvals</h1>
<span class="name">Signed in as <strong id="who">…</strong></span>
<span id="conn" data-state="connecting">connecting…</span>
<button id="logout" type="button">Sign out</button>
</header>
<div id="error" role="alert" hidden><span id="error-text"></span> <button id="error-close" type="button" aria-label="Dismiss">×</button></div>
<noscript><p class="error">The console needs JavaScript; the CLI (<code>thoughtgate approvals</code>) works without it.</p></noscript>
<main>
<section>
<h2>Waiting for a decision <span id="pending-count"></span></h2>
<div id="pending"></div>
<p id="pending-empty" class="empty">Nothing is waiting for a decision.</p>
</section>
<section>
<h2>Standing approvals</h2>
<div id="grants"></div>
<p id="grants-empty" class="empty">None.</p>
</section>
<section>
<h2>Recently decided</h2>
<div id="decided"></div>
<p id="decided-empty" class="empty">None yet.</p>
</section>
</main>
</body>
</html>
`;

export const CONSOLE_CSS = String.raw`:root { color-scheme: light dark; --fg: #1d2125; --muted: #5f6b76; --bg: #f6f7f9; --card: #fff; --line: #d8dde3; --ok: #1f7a3d; --no: #b42318; --warn: #9a6700; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e8eb; --muted: #9aa5b1; --bg: #15181c; --card: #1e2227; --line: #333a42; --ok: #4cc47a; --no: #f07167; --warn: #e3b341; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 1.15rem; margin: 0; }
h2 { font-size: 1rem; margin: 1.4rem 0 .6rem; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
button, input, select { font: inherit; }
button { cursor: pointer; padding: .3rem .8rem; border: 1px solid var(--line); border-radius: 6px; background: var(--card); color: var(--fg); }
button:disabled { opacity: .5; cursor: progress; }
button.approve { background: var(--ok); border-color: var(--ok); color: #fff; }
button.reject { background: var(--no); border-color: var(--no); color: #fff; }
input, select { padding: .25rem .4rem; border: 1px solid var(--line); border-radius: 6px; background: var(--card); color: var(--fg); }
.top { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; padding: .7rem 1.2rem; background: var(--card); border-bottom: 1px solid var(--line); }
.top .name { margin-left: auto; }
#conn { font-size: .85rem; color: var(--warn); }
#conn[data-state="live"] { color: var(--ok); }
main { max-width: 60rem; margin: 0 auto; padding: 0 1.2rem 3rem; }
#error { margin: .8rem 1.2rem; padding: .6rem .8rem; border: 1px solid var(--no); border-radius: 6px; color: var(--no); background: var(--card); }
#error-close { float: right; padding: 0 .4rem; }
.error { color: var(--no); }
.empty { color: var(--muted); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .8rem 1rem; margin-bottom: .8rem; }
.card header { display: flex; flex-wrap: wrap; gap: .6rem; align-items: baseline; }
.card .tool { font-size: 1.05rem; font-weight: 600; }
.card .principal, .card dt, time { color: var(--muted); }
.card dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .8rem; margin: .5rem 0; }
.card dt, .card dd { margin: 0; }
.args { max-height: 18rem; overflow: auto; margin: .4rem 0; padding: .5rem .7rem; background: var(--bg); border-radius: 6px; white-space: pre-wrap; word-break: break-word; }
.actions, .reject-form { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin-top: .5rem; }
.reject-form input { flex: 1 1 16rem; }
.actions input[type=number] { width: 5rem; }
.card-error { color: var(--no); margin: .4rem 0 0; }
.row { display: flex; flex-wrap: wrap; gap: .4rem; align-items: baseline; padding: .35rem 0; border-bottom: 1px solid var(--line); }
.badge { font-size: .8rem; padding: 0 .4rem; border-radius: 4px; border: 1px solid var(--line); }
.state-completed .badge, .state-approved .badge, .state-executing .badge { color: var(--ok); }
.state-rejected .badge, .state-failed .badge { color: var(--no); }
.row q { color: var(--muted); }
.row button { margin-left: auto; }
.login { max-width: 26rem; margin: 4rem auto; }
.login form { display: flex; flex-direction: column; gap: .6rem; }
.login input { width: 100%; }
[hidden] { display: none !important; }
`;

// Plain browser JavaScript, no build step. Written without template literals so it can live
// in this String.raw literal.
export const CONSOLE_JS = String.raw`(() => {
'use strict';
const $ = (id) => document.getElementById(id);

// Sign-in page. A SameSite=Strict cookie is not sent on a navigation another site started
// (a link in chat): if our own request carries it, reload once from here, where it is sent.
if (document.body.dataset.page !== 'console') {
  if (sessionStorage.getItem('tg_reloaded')) return;
  fetch('/api/approvals', { credentials: 'same-origin' }).then((r) => {
    if (r.ok) { sessionStorage.setItem('tg_reloaded', '1'); location.replace('/approvals'); }
  }, () => {});
  return;
}
sessionStorage.removeItem('tg_reloaded');

const RANK = { pending: 0, approved: 1, executing: 2 };
const records = new Map(); // id → view, every state
const cards = new Map();   // id → pending card (kept across updates: a half-typed reason survives)
let grants = [];

// Who decides is who signed in (the server knows from the session; nothing typed here counts).
let me = { identity: '', operator: false };

// --- DOM helpers: data goes in as text, never as markup ---
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  if (attrs) for (const k of Object.keys(attrs)) {
    const v = attrs[k];
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = String(v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function rel(iso) {
  const d = Date.parse(iso) - Date.now();
  const a = Math.abs(d);
  if (a < 45000) return d >= 0 ? 'in a few seconds' : 'just now';
  let s;
  if (a < 90 * 60000) s = Math.round(a / 60000) + ' min';
  else if (a < 36 * 3600000) s = Math.round(a / 3600000) + ' h';
  else s = Math.round(a / 86400000) + ' d';
  return d >= 0 ? 'in ' + s : s + ' ago';
}

function timeEl(iso) {
  const t = el('time', { datetime: iso, title: new Date(iso).toLocaleString(), 'data-rel': '' });
  t.textContent = rel(iso);
  return t;
}

function updateTimes() {
  for (const t of document.querySelectorAll('time[data-rel]')) t.textContent = rel(t.getAttribute('datetime'));
}

function pretty(v) {
  try { return JSON.stringify(v === undefined ? {} : v, null, 2); } catch (e) { return String(v); }
}

function showError(msg) {
  $('error-text').textContent = msg;
  $('error').hidden = false;
}
$('error-close').addEventListener('click', () => { $('error').hidden = true; });

const errText = (r) => (r.data && typeof r.data.message === 'string' ? r.data.message : 'HTTP ' + r.status);

// --- API ---
async function api(method, path, payload) {
  const init = { method, credentials: 'same-origin', headers: { 'x-thoughtgate-csrf': '1', accept: 'application/json' } };
  if (payload !== undefined) { init.headers['content-type'] = 'application/json'; init.body = JSON.stringify(payload); }
  let res;
  try { res = await fetch(path, init); } catch (e) { return { ok: false, status: 0, data: { message: 'ThoughtGate is not reachable: ' + e.message } }; }
  let data = null;
  try { data = await res.json(); } catch (e) { /* not JSON */ }
  if (res.status === 401) { showError('Your sign-in is no longer valid.'); setTimeout(() => location.reload(), 1500); }
  return { ok: res.ok, status: res.status, data };
}

/** Newer wins: by update time, then by how far along the life cycle (several steps can share a millisecond). */
function newer(a, b) {
  const ta = Date.parse(a.updated_at), tb = Date.parse(b.updated_at);
  if (ta !== tb) return ta > tb;
  const ra = a.state in RANK ? RANK[a.state] : 3, rb = b.state in RANK ? RANK[b.state] : 3;
  return ra >= rb;
}

function upsert(v) {
  const cur = records.get(v.id);
  if (!cur || newer(v, cur)) records.set(v.id, v);
}

async function refresh() {
  // Standing approvals are the operator's to see and revoke; an approver's token lists only approvals.
  const [a, g] = await Promise.all([api('GET', '/api/approvals?state=all'), me.operator ? api('GET', '/api/grants') : Promise.resolve({ ok: true, data: [] })]);
  if (a.ok && Array.isArray(a.data)) {
    const seen = new Set();
    for (const v of a.data) { seen.add(v.id); upsert(v); }
    for (const [id, v] of records) if (!seen.has(id) && v.state !== 'pending') records.delete(id); // past retention
  } else if (a.status !== 401) showError('Could not load approvals: ' + errText(a));
  if (g.ok && Array.isArray(g.data)) grants = g.data;
  render();
}

let grantsTimer;
function refreshGrantsSoon() {
  clearTimeout(grantsTimer);
  grantsTimer = setTimeout(async () => {
    if (!me.operator) return;
    const g = await api('GET', '/api/grants');
    if (g.ok && Array.isArray(g.data)) { grants = g.data; renderGrants(); }
  }, 250);
}

function who() {
  return me.identity || 'console';
}

async function whoami() {
  const r = await api('GET', '/api/whoami');
  if (r.ok && r.data && typeof r.data.identity === 'string') {
    me = { identity: r.data.identity, operator: r.data.kind === 'operator' };
    $('who').textContent = r.data.identity;
  }
}

// --- pending cards ---
function row(label, value) {
  return [el('dt', { text: label }), el('dd', null, value)];
}

function card(v) {
  const votes = el('span');
  const expires = el('time', { datetime: v.expires_at, 'data-rel': '', title: new Date(v.expires_at).toLocaleString() });
  const scope = el('select', { 'data-field': 'scope', 'aria-label': 'Approve for' },
    el('option', { value: 'once', text: 'this call only' }),
    el('option', { value: 'session', text: 'this session', disabled: v.session === null }),
    el('option', { value: 'hours', text: 'for N hours' }));
  const hours = el('input', { type: 'number', min: 1, max: 720, step: 1, value: 1, 'data-field': 'hours', 'aria-label': 'Hours', hidden: true });
  scope.addEventListener('change', () => { hours.hidden = scope.value !== 'hours'; });
  const approve = el('button', { type: 'button', class: 'approve', 'data-action': 'approve', text: 'Approve' });
  const reject = el('button', { type: 'button', class: 'reject', 'data-action': 'reject', text: 'Reject…' });
  const reason = el('input', { type: 'text', 'data-field': 'reason', maxlength: 4000, placeholder: 'Reason (sent back to the agent)', 'aria-label': 'Reason for rejecting' });
  const confirm = el('button', { type: 'button', class: 'reject', 'data-action': 'confirm-reject', text: 'Reject with this reason' });
  const back = el('button', { type: 'button', 'data-action': 'cancel-reject', text: 'Back' });
  const rejectForm = el('div', { class: 'reject-form', hidden: true }, reason, confirm, back);
  const actions = el('div', { class: 'actions' }, approve, el('label', null, 'for ', scope), hours, reject);
  const err = el('p', { class: 'card-error', role: 'alert', hidden: true });
  const dl = el('dl');
  dl.append(...row('Principal', v.principal), ...row('Session', v.session === null ? '—' : v.session),
    ...row('Workflow', v.workflow + ' (channel ' + v.channel + ')'), ...row('Created', timeEl(v.created_at)),
    ...row('Expires', expires), ...row('Votes', votes));
  const root = el('article', { class: 'card', 'data-approval': v.id },
    el('header', null, el('code', { class: 'tool', text: v.tool }), el('span', { class: 'principal', text: v.method })),
    dl, el('pre', { class: 'args', 'aria-label': 'Arguments', text: pretty(v.arguments) }), actions, rejectForm, err);

  const busy = (on) => { for (const b of root.querySelectorAll('button')) b.disabled = on; };
  const cardError = (msg) => { err.textContent = msg; err.hidden = !msg; };

  async function decide(action, extra) {
    const by = who();
    cardError('');
    busy(true);
    const r = await api('POST', '/api/approvals/' + encodeURIComponent(v.id) + '/' + action, Object.assign({ by, via: 'console' }, extra));
    busy(false);
    if (r.ok && r.data && r.data.approval) { upsert(r.data.approval); render(); refreshGrantsSoon(); return; }
    if (r.status === 409 || r.status === 404) {
      // Someone else was faster: the card goes away, so say it at the top.
      showError(v.tool + ' (' + v.id + '): ' + errText(r));
      refresh();
      return;
    }
    cardError(errText(r));
  }

  approve.addEventListener('click', () => {
    const extra = { scope: scope.value };
    if (scope.value === 'hours') {
      const h = Number(hours.value);
      if (!(h >= 1 && h <= 720)) return cardError('Hours must be from 1 to 720.');
      extra.hours = h;
    }
    decide('approve', extra);
  });
  reject.addEventListener('click', () => { actions.hidden = true; rejectForm.hidden = false; reason.focus(); });
  back.addEventListener('click', () => { rejectForm.hidden = true; actions.hidden = false; cardError(''); });
  const sendReject = () => {
    const text = reason.value.trim();
    if (!text) { reason.focus(); return cardError('Say why: the reason goes back to the agent.'); }
    decide('reject', { reason: text });
  };
  confirm.addEventListener('click', sendReject);
  reason.addEventListener('keydown', (e) => { if (e.key === 'Enter') sendReject(); });

  return {
    el: root,
    update(nv) {
      const yes = nv.votes.filter((x) => x.verdict === 'approve');
      votes.textContent = yes.length + '/' + nv.required_approvals + (yes.length ? ' (' + yes.map((x) => x.by).join(', ') + ')' : '');
      expires.setAttribute('datetime', nv.expires_at);
      expires.textContent = rel(nv.expires_at);
    },
  };
}

// --- rendering ---
const byCreated = (a, b) => Date.parse(b.created_at) - Date.parse(a.created_at);
const byUpdated = (a, b) => Date.parse(b.updated_at) - Date.parse(a.updated_at);

function render() {
  const all = [...records.values()];
  const pending = all.filter((v) => v.state === 'pending').sort(byCreated);
  const list = $('pending');
  const keep = new Set(pending.map((v) => v.id));
  for (const [id, c] of cards) if (!keep.has(id)) { c.el.remove(); cards.delete(id); }
  pending.forEach((v, i) => {
    let c = cards.get(v.id);
    if (!c) { c = card(v); cards.set(v.id, c); }
    c.update(v);
    // Move only what is out of place: moving a node would take the focus from its inputs.
    if (list.children[i] !== c.el) list.insertBefore(c.el, list.children[i] || null);
  });
  $('pending-empty').hidden = pending.length > 0;
  $('pending-count').textContent = pending.length ? '(' + pending.length + ')' : '';
  document.title = (pending.length ? '(' + pending.length + ') ' : '') + 'ThoughtGate approvals';
  renderDecided(all.filter((v) => v.state !== 'pending').sort(byUpdated).slice(0, 10));
  renderGrants();
}

function renderDecided(list) {
  const box = $('decided');
  box.replaceChildren(...list.map((v) => el('div', { class: 'row state-' + v.state, 'data-decided': v.id },
    el('code', { text: v.tool }), el('span', { class: 'badge', text: v.state }),
    el('span', { text: v.decided_by ? 'by ' + v.decided_by : '' }),
    v.reason ? el('q', { text: v.reason }) : null, timeEl(v.updated_at))));
  $('decided-empty').hidden = list.length > 0;
}

function renderGrants() {
  const now = Date.now();
  const live = grants.filter((g) => Date.parse(g.expires_at) > now);
  const box = $('grants');
  box.replaceChildren(...live.map((g) => {
    const revoke = el('button', { type: 'button', 'data-action': 'revoke', text: 'Revoke' });
    revoke.addEventListener('click', async () => {
      const by = who();
      revoke.disabled = true;
      const r = await api('DELETE', '/api/grants/' + encodeURIComponent(g.id), { by, via: 'console' });
      if (!r.ok && r.status !== 404) { revoke.disabled = false; return showError('Could not revoke: ' + errText(r)); }
      grants = grants.filter((x) => x.id !== g.id);
      renderGrants();
    });
    return el('div', { class: 'row', 'data-grant': g.id },
      el('code', { text: g.tool }),
      el('span', { text: 'for ' + g.principal + (g.session ? ' in session ' + g.session : ' in any session') +
        (g.arguments_key !== undefined ? ', same arguments' : ', any arguments'), title: g.arguments_key || '' }),
      el('span', { text: 'granted by ' + g.granted_by + ', expires' }), timeEl(g.expires_at), revoke);
  }));
  $('grants-empty').hidden = live.length > 0;
}

// --- live updates ---
let es;
let retry;
function setConn(live) {
  const c = $('conn');
  c.dataset.state = live ? 'live' : 'reconnecting';
  c.textContent = live ? 'live' : 'reconnecting…';
}

function connect() {
  if (es) es.close();
  es = new EventSource('/api/approvals/events');
  // Each (re)connection reloads the lists: changes while disconnected were not streamed.
  es.addEventListener('open', () => { setConn(true); refresh(); });
  es.addEventListener('approval', (ev) => {
    let v;
    try { v = JSON.parse(ev.data); } catch (e) { return; }
    upsert(v);
    render();
    if (v.state !== 'pending') refreshGrantsSoon();
  });
  es.addEventListener('error', () => {
    setConn(false);
    if (es.readyState !== EventSource.CLOSED) return; // the browser retries by itself
    // Refused outright (signed out, restarted with a new token?): check, then start over.
    clearTimeout(retry);
    retry = setTimeout(async () => {
      const r = await api('GET', '/api/approvals?state=pending');
      if (r.status !== 401) connect();
    }, 3000);
  });
}

$('logout').addEventListener('click', async () => {
  await fetch('/approvals/logout', { method: 'POST', credentials: 'same-origin', headers: { 'x-thoughtgate-csrf': '1' } }).catch(() => {});
  location.replace('/approvals');
});

setInterval(updateTimes, 15000);
whoami().then(() => { refresh(); connect(); });
})();
`;
