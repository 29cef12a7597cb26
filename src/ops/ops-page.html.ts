/**
 * The ops page: one self-contained HTML document, no build step and no external assets, so
 * it works from any replica and in an air-gapped cluster. It reads the same JSON endpoints
 * an operator could call with curl, and builds every cell with textContent so that names
 * and reasons coming from participants cannot inject markup.
 */

export function renderOpsPage(traceUiUrl: string): string {
  // JSON.stringify alone would let a "</script>" inside the URL end the script element.
  const traceUi = JSON.stringify(traceUiUrl).replace(/</g, '\\u003c');
  return PAGE.replace('__TRACE_UI_URL__', traceUi);
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Transaction coordinator: operations</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2430; background: #f7f8fa; }
  h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
  h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
  .muted { color: #6b7280; }
  table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.06); }
  th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #e5e7eb; white-space: nowrap; }
  th { background: #eef1f5; font-weight: 600; }
  td.reason { white-space: normal; max-width: 28rem; }
  code { font-size: 12px; }
  .COMMITTED { color: #0a7a3b; font-weight: 600; }
  .ABORTED { color: #b42318; font-weight: 600; }
  .PREPARING { color: #b54708; font-weight: 600; }
  .PRECOMMITTED { color: #b54708; font-weight: 600; }
  button { margin-right: .3rem; cursor: pointer; }
  #status { min-height: 1.2rem; margin-top: .5rem; }
  #status.error { color: #b42318; }
</style>
</head>
<body>
<h1>Transaction coordinator: operations</h1>
<div class="muted">Refreshes every 5 s. Last update: <span id="updated">never</span></div>
<div id="status"></div>

<h2>Outcomes</h2>
<table id="outcomes">
  <thead><tr><th>protocol</th><th>PREPARING</th><th>PRECOMMITTED</th><th>COMMITTED</th><th>ABORTED</th><th>unfinished</th><th>oldest unfinished</th></tr></thead>
  <tbody></tbody>
</table>

<h2>Unfinished transactions</h2>
<table id="unfinished">
  <thead><tr><th>id</th><th>protocol</th><th>state</th><th>age</th><th>votes</th><th>acks</th><th>waiting on</th><th>owner</th><th>trace</th><th>actions</th></tr></thead>
  <tbody></tbody>
</table>

<h2>Recent transactions</h2>
<table id="recent">
  <thead><tr><th>id</th><th>protocol</th><th>state</th><th>reason</th><th>created</th><th>completed</th><th>trace</th></tr></thead>
  <tbody></tbody>
</table>

<script>
const TRACE_UI_URL = __TRACE_UI_URL__;
const STATES = ['PREPARING', 'PRECOMMITTED', 'COMMITTED', 'ABORTED'];

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child == null ? '' : String(child)));
  return node;
}

function age(ms) {
  if (ms < 1000) return Math.round(ms) + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
  if (ms < 3600000) return (ms / 60000).toFixed(1) + ' min';
  return (ms / 3600000).toFixed(1) + ' h';
}

function timelineLink(id) {
  return el('a', { href: '/v1/transactions/' + encodeURIComponent(id) + '/timeline', className: 'timeline', title: 'timeline of ' + id }, el('code', {}, id));
}

function traceLink(traceId) {
  if (!traceId) return el('span', { className: 'muted' }, 'none');
  return el('a', { href: TRACE_UI_URL + '/trace/' + traceId, className: 'trace', target: '_blank', rel: 'noopener' }, traceId.slice(0, 8) + '…');
}

function fill(tableId, rows) {
  const body = document.querySelector('#' + tableId + ' tbody');
  body.replaceChildren(...rows);
  if (rows.length === 0) {
    const columns = document.querySelectorAll('#' + tableId + ' thead th').length;
    body.append(el('tr', { className: 'empty' }, el('td', { colSpan: columns, className: 'muted' }, 'none')));
  }
}

async function getJson(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(path + ': HTTP ' + response.status);
  return response.json();
}

function renderOutcomes(summary) {
  const protocols = new Map();
  const row = (p) => protocols.get(p) || protocols.set(p, { counts: {}, unfinished: 0, oldestAgeMs: 0 }).get(p);
  for (const o of summary.outcomes) row(o.protocol).counts[o.state] = o.count;
  for (const u of summary.unfinished) Object.assign(row(u.protocol), { unfinished: u.count, oldestAgeMs: u.oldestAgeMs });
  fill('outcomes', [...protocols].map(([protocol, r]) => {
    const tr = el('tr', { }, el('td', {}, protocol));
    tr.dataset.protocol = protocol;
    for (const state of STATES) {
      const td = el('td', { className: state }, r.counts[state] || 0);
      td.dataset.state = state;
      tr.append(td);
    }
    tr.append(el('td', { className: 'unfinished-count' }, r.unfinished), el('td', {}, r.unfinished ? age(r.oldestAgeMs) : '-'));
    return tr;
  }));
}

function actionButton(label, action, id) {
  const button = el('button', { type: 'button', className: action }, label);
  button.addEventListener('click', () => act(action, id));
  return button;
}

function renderUnfinished(list) {
  fill('unfinished', list.map((t) => {
    const tr = el('tr', {},
      el('td', {}, timelineLink(t.id)),
      el('td', {}, t.protocol),
      el('td', { className: t.state }, t.state),
      el('td', { className: 'age' }, age(t.ageMs)),
      el('td', {}, t.votes + '/' + t.participants),
      el('td', {}, t.acks + '/' + t.participants),
      el('td', {}, t.waitingOn.join(', ')),
      el('td', {}, t.owner),
      el('td', {}, traceLink(t.traceId)),
      el('td', {}, t.decision ? actionButton('Redrive', 'redrive', t.id) : actionButton('Abort', 'abort', t.id)),
    );
    tr.dataset.txnId = t.id;
    return tr;
  }));
}

function renderRecent(list) {
  fill('recent', list.map((t) => {
    const tr = el('tr', {},
      el('td', {}, timelineLink(t.id)),
      el('td', {}, t.protocol),
      el('td', { className: t.state }, t.state),
      el('td', { className: 'reason' }, t.decisionReason || ''),
      el('td', {}, new Date(t.createdAt).toLocaleString()),
      el('td', {}, t.completedAt ? new Date(t.completedAt).toLocaleTimeString() : '-'),
      el('td', {}, traceLink(t.traceId)),
    );
    tr.dataset.txnId = t.id;
    return tr;
  }));
}

function setStatus(text, isError) {
  const status = document.getElementById('status');
  status.textContent = text;
  status.className = isError ? 'error' : '';
}

async function act(action, id) {
  const reason = window.prompt('Reason to ' + action + ' ' + id + ' (kept in the audit trail):');
  if (!reason || !reason.trim()) return;
  const response = await fetch('/v1/transactions/' + encodeURIComponent(id) + '/' + action, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ by: 'ops-page', reason: reason.trim() }),
  });
  const body = await response.json().catch(() => ({}));
  setStatus(response.ok ? action + ' ' + id + ': ' + body.detail : action + ' ' + id + ' refused: ' + (body.message || response.status), !response.ok);
  await refresh();
}

async function refresh() {
  try {
    const [summary, unfinished, recent] = await Promise.all([
      getJson('/v1/ops/summary'),
      getJson('/v1/ops/unfinished?limit=100'),
      getJson('/v1/transactions?limit=20'),
    ]);
    renderOutcomes(summary);
    renderUnfinished(unfinished);
    renderRecent(recent);
    document.getElementById('updated').textContent = new Date().toLocaleTimeString();
    document.body.dataset.loaded = 'true';
  } catch (error) {
    setStatus('could not load: ' + error.message, true);
  }
}

refresh();
setInterval(refresh, 5000);
</script>
</body>
</html>
`;
