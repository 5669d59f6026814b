// Bulkhead's web UI: one page over the HTTP API, no framework, no build step.
// Views by URL hash (#/, #/runs, #/runs/ID, #/runs/ID/task/T, #/trigger/W, #/plugins), so every
// view has a permanent link. Live updates come from the server's event stream (/api/events),
// read with fetch so the API token stays in a header; each event patches what it changes, and a
// view reloads its data at most a few times a second. Everything the server sends is shown
// with textContent: outputs, logs and error messages are untrusted.
'use strict';

// ---- small helpers ------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = String(v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  for (const c of children.flat()) if (c) e.append(c);
  return e;
}
const enc = encodeURIComponent;
const short = (id) => id.slice(0, 8) + '…' + id.slice(-4);
function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}
// An RFC 3339 time with its offset, shown as the wall-clock time of that offset (the
// schedule's own time zone), not converted to the browser's.
function zoned(iso) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::\d{2})?(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$/.exec(iso || '');
  return m ? m[1] + ' ' + m[2] + ' (' + (m[3] === 'Z' ? 'UTC' : m[3]) + ')' : (iso || '');
}
function duration(us) {
  if (us === undefined || us === null) return '';
  if (us < 1000) return us + ' µs';
  if (us < 1e6) return (us / 1000).toFixed(1) + ' ms';
  if (us < 6e7) return (us / 1e6).toFixed(2) + ' s';
  return Math.floor(us / 6e7) + ' min ' + Math.round((us % 6e7) / 1e6) + ' s';
}
function bytes(n) {
  if (!n) return '0 B';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + units[i];
}
// A region that scrolls: reachable by keyboard (it takes the focus, so arrow keys scroll it)
// and named for screen readers.
function scrollable(e, label) {
  e.setAttribute('tabindex', '0');
  e.setAttribute('role', 'region');
  e.setAttribute('aria-label', label);
  return e;
}
function badge(status) {
  return el('span', { class: 'badge st-' + status, text: status });
}
function say(text, kind) {
  const s = $('status');
  s.className = 'status' + (kind ? ' ' + kind : '');
  s.textContent = text;
}
// Runs `render`, then puts the focus back on the element with the same id if `render`
// replaced it: live updates never throw the keyboard user back to the top.
function keepFocus(render) {
  const active = document.activeElement;
  const id = active && active !== document.body ? active.id : '';
  render();
  if (id && document.activeElement !== $(id) && $(id)) $(id).focus({ preventScroll: true });
}
// Calls `fn` at most once per `ms`, the last call always honoured.
function throttle(fn, ms) {
  let timer = null, again = false;
  return function () {
    if (timer) { again = true; return; }
    fn();
    timer = setTimeout(function tick() {
      if (again) { again = false; fn(); timer = setTimeout(tick, ms); } else timer = null;
    }, ms);
  };
}

// ---- the API ------------------------------------------------------------------------------

const token = {
  get: () => sessionStorage.getItem('bulkhead.token') || '',
  set: (t) => t ? sessionStorage.setItem('bulkhead.token', t) : sessionStorage.removeItem('bulkhead.token'),
};
function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (token.get()) h.Authorization = 'Bearer ' + token.get();
  return h;
}
class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}
async function api(path, opts) {
  opts = opts || {};
  const r = await fetch(path, Object.assign({}, opts, { headers: headers(opts.headers) }));
  const body = await r.json().catch(() => ({}));
  if (r.status === 401) { askToken(body.error || 'this server needs an API token'); }
  if (!r.ok) throw new ApiError(r.status, body.error || r.statusText);
  return body;
}
const post = (path, body) => api(path, {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body || {}),
});
function askToken(why) {
  const f = $('token-form');
  if (f.hidden) { f.hidden = false; say(why + ': enter the API token', 'error'); $('token-input').focus(); }
}

// ---- live events --------------------------------------------------------------------------

// Listeners of live events; each gets (kind, event). `lagged` (and a reconnect) means events
// were missed: reload.
const listeners = new Set();
let liveStarted = false;
let wakeLive = null; // ends the wait before the next connection (a token was just given)
const nap = (ms) => new Promise((r) => { wakeLive = r; setTimeout(r, ms); });
function startLive() {
  if (liveStarted) return;
  liveStarted = true;
  (async () => {
    for (;;) {
      try {
        const r = await fetch('/api/events', { headers: headers({ Accept: 'text/event-stream' }) });
        if (r.status === 401) { setLive('off', 'live updates need the token'); askToken('live updates need the API token'); await nap(5000); continue; }
        if (!r.ok || !r.body) throw new Error('HTTP ' + r.status);
        setLive('on', 'live');
        // Whatever happened while not connected was missed: views reload what they show.
        emit('lagged', {});
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let cut;
          while ((cut = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            let name = 'message', data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) name = line.slice(6).trim();
              else if (line.startsWith('data:')) data += line.slice(5).trim();
            }
            if (data) { try { emit(name, JSON.parse(data)); } catch (e) { /* not ours */ } }
          }
        }
      } catch (e) { /* reconnect below */ }
      setLive('off', 'reconnecting…');
      await nap(2000);
    }
  })();
}
function emit(kind, e) { for (const l of listeners) l(kind, e); }
function setLive(state, text) { const l = $('live'); l.className = 'live ' + state; l.textContent = text; }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- routing ------------------------------------------------------------------------------

let view = null; // { dispose() }
function route() {
  if (view && view.dispose) view.dispose();
  view = null;
  listeners.clear();
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query] = hash.split('?');
  const q = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  for (const id of ['nav-workflows', 'nav-runs', 'nav-plugins']) $(id).removeAttribute('aria-current');
  const main = $('main');
  main.replaceChildren();
  if (parts[0] === 'runs' && parts[1]) {
    $('nav-runs').setAttribute('aria-current', 'page');
    view = runView(main, parts[1], parts[2] === 'task' ? parts[3] : null);
  } else if (parts[0] === 'runs') {
    $('nav-runs').setAttribute('aria-current', 'page');
    view = runsView(main, q);
  } else if (parts[0] === 'plugins') {
    $('nav-plugins').setAttribute('aria-current', 'page');
    view = pluginsView(main);
  } else if (parts[0] === 'trigger' && parts[1]) {
    $('nav-workflows').setAttribute('aria-current', 'page');
    view = triggerView(main, parts[1]);
  } else {
    $('nav-workflows').setAttribute('aria-current', 'page');
    view = workflowsView(main);
  }
}
function heading(main, text) {
  const h = el('h1', { tabindex: '-1', id: 'view-title', text });
  main.append(h);
  return h;
}
// Moves the focus to the view's heading after a navigation (not on the first load).
let navigated = false;
function focusTitle() { if (navigated && $('view-title')) $('view-title').focus(); }

// ---- workflows ----------------------------------------------------------------------------

function workflowsView(main) {
  heading(main, 'Workflows');
  const body = el('div');
  main.append(body);
  let alive = true;
  const load = async () => {
    try {
      const list = await api('/api/workflows');
      if (alive) keepFocus(() => body.replaceChildren(...renderWorkflows(list)));
    } catch (e) { if (alive) say(e.message, 'error'); }
  };
  const reload = throttle(load, 1000);
  listeners.add((kind) => { if (kind === 'run_finished' || kind === 'run_triggered' || kind === 'lagged') reload(); });
  load().then(focusTitle);
  return { dispose() { alive = false; } };
}
function renderWorkflows(list) {
  const out = [];
  if (list.workflows.length === 0) out.push(el('p', { text: 'No workflow is loaded. Put workflow files in the workflow folder.' }));
  else {
    const rows = list.workflows.map((w) => {
      const strip = el('ol', { class: 'strip', 'aria-label': 'latest runs of ' + w.name + ', newest first' },
        ...w.recent.map((r) => el('li', {}, el('a', {
          href: '#/runs/' + enc(r.run_id), class: 'cell st-' + r.status, id: 'cell-' + r.run_id,
          'aria-label': 'run ' + short(r.run_id) + ': ' + r.status + (r.at ? ', ' + when(r.at) : ''),
          title: r.status + (r.at ? ' · ' + when(r.at) : ''),
        }))));
      const rate = w.success_rate === null || w.success_rate === undefined ? '–' : Math.round(w.success_rate * 100) + ' %';
      const schedule = w.schedule.length
        ? el('div', {}, el('code', { text: w.schedule.join(', ') }), ' ', el('span', { class: 'muted', text: w.timezone || 'UTC' }),
          w.next_fires.length ? el('details', { class: 'fires' }, el('summary', { text: 'next: ' + zoned(w.next_fires[0]) }),
            el('ul', { 'aria-label': 'next fires, ' + (w.timezone || 'UTC') + ' time' }, ...w.next_fires.map((f) => el('li', {}, el('time', { datetime: f, text: zoned(f) }))))) : null)
        : el('span', { class: 'muted', text: 'on demand' });
      return el('tr', {},
        el('th', { scope: 'row' }, el('span', { class: 'name', text: w.name }),
          w.description ? el('div', { class: 'muted small', text: w.description }) : null,
          w.error ? el('div', { class: 'error small', text: 'the file changed and does not load; running the last good version' }) : null),
        el('td', { text: w.tasks }),
        el('td', {}, schedule),
        el('td', {}, w.recent.length ? strip : el('span', { class: 'muted', text: 'no runs yet' })),
        el('td', { text: rate }),
        el('td', {}, el('a', { class: 'button', href: '#/trigger/' + enc(w.name), id: 'trigger-' + w.name, text: 'Run…' })));
    });
    out.push(scrollable(el('div', { class: 'scroll' }, el('table', { class: 'grid' },
      el('caption', { class: 'sr-only', text: 'Loaded workflows' }),
      el('thead', {}, el('tr', {}, ...['Workflow', 'Tasks', 'Schedule', 'Latest runs', 'Success'].map((h) => el('th', { scope: 'col', text: h })),
        el('th', { scope: 'col' }, el('span', { class: 'sr-only', text: 'Actions' })))),
      el('tbody', {}, ...rows))), 'Workflows table'));
  }
  if (list.broken_files.length) {
    out.push(el('h2', { class: 'section', text: 'Workflow files with errors' }));
    out.push(el('ul', { class: 'broken' }, ...list.broken_files.map((f) => el('li', {},
      el('code', { class: 'file', text: f.file }), scrollable(el('pre', { class: 'err', text: f.error || '' }), 'errors of ' + f.file)))));
  }
  return out;
}

// ---- trigger ------------------------------------------------------------------------------

function triggerView(main, name) {
  heading(main, 'Run ' + name);
  const body = el('div');
  main.append(body);
  (async () => {
    let list;
    try { list = await api('/api/workflows'); } catch (e) { say(e.message, 'error'); return; }
    const w = list.workflows.find((x) => x.name === name);
    if (!w) { body.append(el('p', { class: 'error', text: 'No workflow named ' + name + ' is loaded.' })); return; }
    const fields = Object.entries(w.params).map(([p, spec]) => paramField(p, spec));
    const at = el('input', { type: 'datetime-local', id: 'run-at', name: 'at', step: '1' });
    const form = el('form', { class: 'trigger', novalidate: true },
      w.description ? el('p', { class: 'muted', text: w.description }) : null,
      fields.length ? el('fieldset', {}, el('legend', { text: 'Parameters' }), ...fields.map((f) => f.row))
        : el('p', { class: 'muted', text: 'This workflow declares no parameters.' }),
      el('div', { class: 'row' }, el('label', { for: 'run-at', text: 'Run at (optional, your local time)' }), at),
      el('div', { class: 'actions' }, el('button', { type: 'submit', id: 'trigger-submit', text: 'Start run' }),
        el('a', { href: '#/', text: 'Cancel' })));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const params = {};
      let bad = null;
      for (const f of fields) {
        const v = f.value();
        f.input.removeAttribute('aria-invalid');
        if (v === undefined) continue;
        if (v instanceof Error) { bad = bad || f; f.input.setAttribute('aria-invalid', 'true'); say(v.message, 'error'); continue; }
        params[f.name] = v;
      }
      if (bad) { bad.input.focus(); return; }
      const req = { workflow: name, params };
      if (at.value) req.at = new Date(at.value).toISOString();
      try {
        const r = await post('/api/runs', req);
        say('Started run ' + short(r.run_id) + (at.value ? ', due ' + when(r.due_at) : ''), 'ok');
        navigated = true;
        location.hash = '#/runs/' + enc(r.run_id);
      } catch (e) { say(e.message, 'error'); }
    });
    body.append(form);
    focusTitle();
  })();
  return {};
}
function paramField(name, spec) {
  const id = 'param-' + name;
  const label = el('label', { for: id }, name, spec.required ? el('span', { class: 'req', text: ' (required)' }) : null,
    el('span', { class: 'muted', text: ' ' + spec.type }));
  const described = spec.description ? id + '-help' : null;
  let input;
  if (spec.enum) {
    input = el('select', { id, name, 'aria-describedby': described, required: spec.required },
      spec.required ? el('option', { value: '', text: 'choose…' }) : el('option', { value: '', text: spec.default !== undefined && spec.default !== null ? 'default (' + spec.default + ')' : '(none)' }),
      ...spec.enum.map((v) => el('option', { value: JSON.stringify(v), text: String(v) })));
  } else if (spec.type === 'boolean') {
    input = el('select', { id, name, 'aria-describedby': described },
      el('option', { value: '', text: spec.default !== undefined && spec.default !== null ? 'default (' + spec.default + ')' : '(none)' }),
      el('option', { value: 'true', text: 'true' }), el('option', { value: 'false', text: 'false' }));
  } else {
    input = el('input', {
      id, name, type: spec.type === 'string' ? 'text' : 'number', step: spec.type === 'integer' ? '1' : 'any',
      inputmode: spec.type === 'integer' ? 'numeric' : null, required: spec.required, 'aria-describedby': described,
      placeholder: spec.default !== undefined && spec.default !== null ? 'default: ' + spec.default : '',
    });
  }
  const row = el('div', { class: 'row' }, label, input, spec.description ? el('div', { class: 'muted small', id: described, text: spec.description }) : null);
  const value = () => {
    const raw = input.value;
    if (raw === '') return spec.required ? new Error(name + ' is required') : undefined;
    if (spec.enum) { try { return JSON.parse(raw); } catch (e) { return raw; } }
    if (spec.type === 'boolean') return raw === 'true';
    if (spec.type === 'integer') return /^-?\d+$/.test(raw.trim()) ? Number(raw) : new Error(name + ' must be a whole number');
    if (spec.type === 'number') return isFinite(Number(raw)) ? Number(raw) : new Error(name + ' must be a number');
    return raw;
  };
  return { name, input, row, value };
}

// ---- runs ---------------------------------------------------------------------------------

const STATUSES = ['pending', 'running', 'interrupted', 'succeeded', 'failed', 'cancelled'];
function runsView(main, q) {
  heading(main, 'Runs');
  const wf = el('select', { id: 'filter-workflow', name: 'workflow' }, el('option', { value: '', text: 'all workflows' }));
  const st = el('select', { id: 'filter-status', name: 'status' }, el('option', { value: '', text: 'any status' }),
    ...STATUSES.map((s) => el('option', { value: s, text: s })));
  const until = el('input', { type: 'datetime-local', id: 'filter-until', name: 'until', step: '1' });
  const filters = el('form', { class: 'filters', role: 'search', 'aria-label': 'Filter runs' },
    el('label', { for: 'filter-workflow', text: 'Workflow' }), wf,
    el('label', { for: 'filter-status', text: 'Status' }), st,
    el('label', { for: 'filter-until', text: 'Started before' }), until,
    el('button', { type: 'submit', id: 'filter-apply', text: 'Filter' }));
  st.value = q.get('status') || '';
  if (q.get('until')) { const d = new Date(q.get('until')); if (!isNaN(d)) until.value = localInput(d); }
  const table = scrollable(el('div', { class: 'scroll' }), 'Runs table');
  const pager = el('nav', { class: 'pager', 'aria-label': 'Pages of runs' });
  main.append(filters, table, pager);
  filters.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    if (wf.value) p.set('workflow', wf.value);
    if (st.value) p.set('status', st.value);
    if (until.value) p.set('until', new Date(until.value).toISOString());
    navigated = true;
    location.hash = '#/runs' + (p.toString() ? '?' + p : '');
  });
  api('/api/workflows').then((list) => {
    for (const w of list.workflows) wf.append(el('option', { value: w.name, text: w.name }));
    wf.value = q.get('workflow') || '';
  }, () => {});
  let alive = true;
  const shown = new Set();
  const load = async () => {
    const p = new URLSearchParams();
    for (const k of ['workflow', 'status', 'until', 'cursor']) if (q.get(k)) p.set(k, q.get(k));
    p.set('limit', '50');
    try {
      const page = await api('/api/runs?' + p);
      if (!alive) return;
      shown.clear();
      for (const r of page.runs) shown.add(r.run_id);
      keepFocus(() => {
        table.replaceChildren(renderRuns(page.runs));
        const links = [];
        if (q.get('cursor')) {
          const back = new URLSearchParams(q); back.delete('cursor');
          links.push(el('a', { href: '#/runs' + (back.toString() ? '?' + back : ''), id: 'page-first', text: '« Newest' }));
        }
        if (page.next_cursor) {
          const next = new URLSearchParams(q); next.set('cursor', page.next_cursor);
          links.push(el('a', { href: '#/runs?' + next, id: 'page-next', text: 'Older »' }));
        }
        pager.replaceChildren(...links);
      });
    } catch (e) { if (alive) say(e.message, 'error'); }
  };
  const reload = throttle(load, 700);
  listeners.add((kind, e) => {
    if (kind === 'lagged' || kind === 'run_triggered' && !q.get('cursor')) return reload();
    if (e.run_id && shown.has(e.run_id)) reload();
    else if (kind === 'attempt_started' && !q.get('cursor')) reload(); // a run that started here
  });
  load().then(focusTitle);
  return { dispose() { alive = false; } };
}
function localInput(d) {
  const pad = (n) => String(n).padStart(2, '0');
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
}
function progressBar(p) {
  if (!p) return el('span', { class: 'muted', text: '–' });
  const done = p.succeeded + p.failed + p.skipped + p.cancelled;
  const bar = el('span', { class: 'progress', role: 'img', 'aria-label': done + ' of ' + p.tasks + ' tasks done' + (p.failed ? ', ' + p.failed + ' failed' : '') + (p.running ? ', ' + p.running + ' running' : '') });
  for (const [k, n] of [['succeeded', p.succeeded], ['failed', p.failed], ['skipped', p.skipped + p.cancelled], ['running', p.running]]) {
    if (n) { const s = el('span', { class: 'seg st-' + k }); s.style.width = (100 * n / p.tasks) + '%'; bar.append(s); }
  }
  return el('span', { class: 'prog' }, bar, el('span', { class: 'small', text: done + '/' + p.tasks }));
}
function renderRuns(runs) {
  if (!runs.length) return el('p', { text: 'No runs match.' });
  return el('table', { class: 'grid' },
    el('caption', { class: 'sr-only', text: 'Runs, newest first' }),
    el('thead', {}, el('tr', {}, ...['Run', 'Workflow', 'Status', 'Progress', 'Started (or due)', 'Finished'].map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, ...runs.map((r) => el('tr', {},
      el('th', { scope: 'row' }, el('a', { href: '#/runs/' + enc(r.run_id), id: 'run-' + r.run_id, class: 'mono', text: short(r.run_id) })),
      el('td', { text: r.workflow }),
      el('td', {}, badge(r.status)),
      el('td', {}, progressBar(r.progress)),
      el('td', { text: r.started_at ? when(r.started_at) : (r.due_at ? 'due ' + when(r.due_at) : '') }),
      el('td', { text: when(r.finished_at) })))));
}

// ---- one run ------------------------------------------------------------------------------

// A task's state as the UI shows it: the report's status, refined by its attempts (a pending
// task whose last attempt runs is `running`; one whose last attempt failed waits to retry).
function taskState(t) {
  if (t.status !== 'pending') return t.status;
  const last = t.history && t.history[t.history.length - 1];
  if (last && last.status === 'running') return 'running';
  if (last && last.status === 'failed') return 'retrying';
  return 'pending';
}
function runView(main, runId, selected) {
  const title = heading(main, 'Run ' + short(runId));
  const head = el('div', { class: 'runhead' });
  const graphBox = el('section', { class: 'panel', 'aria-labelledby': 'graph-title' },
    el('h2', { id: 'graph-title', text: 'Graph' }), el('p', { class: 'muted small', text: 'Select a task to see its attempts, output and log.' }));
  const graphScroll = scrollable(el('div', { class: 'graph' }), 'Task graph');
  graphBox.append(graphScroll);
  const timeBox = el('section', { class: 'panel', 'aria-labelledby': 'timeline-title' }, el('h2', { id: 'timeline-title', text: 'Timeline' }));
  const timeline = scrollable(el('div', { class: 'timeline' }), 'Timeline of attempts');
  timeBox.append(timeline);
  const taskBox = el('section', { class: 'panel task', id: 'task-panel', 'aria-labelledby': 'task-title' });
  main.append(head, graphBox, timeBox, taskBox);
  const state = { run: null, graph: null, nodes: new Map(), selected, alive: true, logs: new Map(), logKeys: new Map() };

  const loadRun = async () => {
    try {
      const run = await api('/api/runs/' + enc(runId));
      if (!state.alive) return;
      state.run = run;
      title.textContent = 'Run ' + short(runId) + ' of ' + run.workflow;
      keepFocus(() => {
        renderHead(head, run);
        for (const [id, t] of Object.entries(run.tasks)) paintNode(state, id, taskState(t));
        renderTimeline(timeline, run);
        renderTask(taskBox, state, runId);
      });
    } catch (e) {
      if (state.alive) { say(e.message, 'error'); if (e.status === 404) head.replaceChildren(el('p', { class: 'error', text: e.message })); }
    }
  };
  const reload = throttle(loadRun, 400);
  (async () => {
    try {
      const g = await api('/api/runs/' + enc(runId) + '/graph');
      if (!state.alive) return;
      state.graph = g;
      drawGraph(graphScroll, state, runId);
    } catch (e) { if (state.alive) graphScroll.append(el('p', { class: 'muted', text: 'No graph: ' + e.message })); }
    await loadRun();
    focusTitle();
  })();
  listeners.add((kind, e) => {
    if (kind === 'lagged') return reload();
    if (e.run_id !== runId) return;
    if (kind === 'attempt_started') paintNode(state, e.task, 'running');
    else if (kind === 'attempt_finished') paintNode(state, e.task, e.status);
    else if (kind === 'task_skipped') paintNode(state, e.task, 'skipped');
    if (kind === 'attempt_finished' && e.task === state.selected) state.logs.delete(e.task);
    reload();
  });
  return { dispose() { state.alive = false; clearInterval(state.logTimer); } };
}
function renderHead(head, run) {
  const active = ['pending', 'running', 'interrupted'].includes(run.status);
  const counts = {};
  for (const t of Object.values(run.tasks)) { const s = taskState(t); counts[s] = (counts[s] || 0) + 1; }
  const cancel = active ? el('button', { type: 'button', id: 'run-cancel', class: 'danger', text: 'Cancel run', onclick: async () => {
    if (!confirm('Cancel run ' + short(run.run_id) + '?')) return;
    try { const r = await post('/api/runs/' + enc(run.run_id) + '/cancel'); say('Run ' + short(run.run_id) + ': ' + r.status, 'ok'); } catch (e) { say(e.message, 'error'); }
  } }) : null;
  head.replaceChildren(
    el('dl', { class: 'facts' },
      el('dt', { text: 'Status' }), el('dd', {}, badge(run.status)),
      el('dt', { text: 'Workflow' }), el('dd', {}, el('a', { href: '#/runs?workflow=' + enc(run.workflow), text: run.workflow })),
      el('dt', { text: 'Started' }), el('dd', { text: run.started_at ? when(run.started_at) : (run.due_at ? 'due ' + when(run.due_at) : '–') }),
      el('dt', { text: 'Finished' }), el('dd', { text: run.finished_at ? when(run.finished_at) : '–' }),
      el('dt', { text: 'Duration' }), el('dd', { text: duration(run.duration_ms * 1000) }),
      el('dt', { text: 'Tasks' }), el('dd', { text: Object.entries(counts).map(([k, n]) => n + ' ' + k).join(', ') || '–' }),
      el('dt', { text: 'Link' }), el('dd', {}, el('a', { href: '#/runs/' + enc(run.run_id), class: 'mono', text: run.run_id }))),
    run.error ? el('p', { class: 'error', text: run.error }) : '',
    cancel || '');
}
const NODE_W = 168, NODE_H = 34, COL = 220, ROW = 48, PAD = 12;
function drawGraph(box, state, runId) {
  const g = state.graph;
  const pos = new Map();
  g.layers.forEach((ids, layer) => ids.forEach((id, i) => pos.set(id, { x: PAD + layer * COL, y: PAD + i * ROW })));
  const height = PAD * 2 + Math.max(1, ...g.layers.map((l) => l.length)) * ROW - (ROW - NODE_H);
  const width = PAD * 2 + Math.max(1, g.layers.length) * COL - (COL - NODE_W);
  const root = svg('svg', { width, height, viewBox: '0 0 ' + width + ' ' + height, role: 'group', 'aria-label': 'Task graph: ' + g.tasks.length + ' tasks in ' + g.layers.length + ' layers' });
  const edges = svg('g', { class: 'edges', 'aria-hidden': 'true' });
  for (const e of g.edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2, mx = (x1 + x2) / 2;
    edges.append(svg('path', { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` }));
  }
  root.append(edges);
  const nodes = svg('g', { class: 'nodes' });
  for (const t of g.tasks) {
    const p = pos.get(t.id);
    const label = t.id.length > 22 ? t.id.slice(0, 21) + '…' : t.id;
    const link = svg('a', { href: '#/runs/' + enc(runId) + '/task/' + enc(t.id), id: 'node-' + t.id, class: 'node st-pending', 'aria-label': 'task ' + t.id + ': pending' },
      svg('title', {}, document.createTextNode(t.id + ' (' + t.plugin + ')')),
      svg('rect', { x: p.x, y: p.y, width: NODE_W, height: NODE_H, rx: 6 }),
      svg('text', { x: p.x + 10, y: p.y + NODE_H / 2 + 5 }, document.createTextNode(label)));
    link.addEventListener('click', (ev) => {
      ev.preventDefault();
      state.selected = t.id;
      history.replaceState(null, '', '#/runs/' + enc(runId) + '/task/' + enc(t.id));
      for (const n of state.nodes.values()) n.classList.remove('selected');
      link.classList.add('selected');
      renderTask($('task-panel'), state, runId);
      $('task-title').focus();
    });
    state.nodes.set(t.id, link);
    nodes.append(link);
  }
  root.append(nodes);
  box.replaceChildren(root);
  if (state.selected && state.nodes.get(state.selected)) state.nodes.get(state.selected).classList.add('selected');
}
function paintNode(state, id, s) {
  const n = state.nodes.get(id);
  if (!n || n.dataset.state === s) return;
  n.dataset.state = s;
  n.setAttribute('class', 'node st-' + s + (id === state.selected ? ' selected' : ''));
  n.setAttribute('aria-label', 'task ' + id + ': ' + s);
}
function renderTimeline(box, run) {
  const rows = [];
  let t0 = Infinity, t1 = -Infinity;
  const now = Date.now();
  for (const [id, t] of Object.entries(run.tasks)) {
    for (const a of t.history || []) {
      const s = Date.parse(a.started_at), e = a.finished_at ? Date.parse(a.finished_at) : now;
      if (!isNaN(s)) { t0 = Math.min(t0, s); t1 = Math.max(t1, e); }
    }
    rows.push([id, t]);
  }
  if (!isFinite(t0)) { box.replaceChildren(el('p', { class: 'muted', text: 'No attempt has started yet.' })); return; }
  const span = Math.max(1, t1 - t0);
  const list = el('ol', { class: 'gantt', 'aria-label': 'Attempts over time, ' + duration(span * 1000) + ' in all' });
  for (const [id, t] of rows) {
    const track = el('div', { class: 'track' });
    for (const a of t.history || []) {
      const s = Date.parse(a.started_at), e = a.finished_at ? Date.parse(a.finished_at) : now;
      const bar = el('span', { class: 'bar st-' + a.status, title: id + ' attempt ' + a.attempt + ': ' + a.status + ', ' + duration(a.duration_us) });
      bar.style.left = (100 * (s - t0) / span) + '%';
      bar.style.width = Math.max(0.3, 100 * (e - s) / span) + '%';
      track.append(bar);
    }
    const summary = (t.history || []).map((a) => 'attempt ' + a.attempt + ' ' + a.status + ' at +' + duration((Date.parse(a.started_at) - t0) * 1000) + ' for ' + duration(a.duration_us)).join('; ');
    list.append(el('li', {}, el('span', { class: 'label', text: id }), track, el('span', { class: 'sr-only', text: summary || 'not started' })));
  }
  box.replaceChildren(el('div', { class: 'axis small muted' }, el('span', { text: when(new Date(t0).toISOString()) }), el('span', { text: '+' + duration(span * 1000) })), list);
}
function renderTask(box, state, runId) {
  const id = state.selected;
  const run = state.run;
  if (!id || !run || !run.tasks[id]) {
    box.replaceChildren(el('h2', { id: 'task-title', tabindex: '-1', text: 'Task' }), el('p', { class: 'muted', text: 'Select a task in the graph.' }));
    return;
  }
  const t = run.tasks[id];
  const s = taskState(t);
  const retry = (t.status === 'failed' || t.status === 'cancelled') && !['pending', 'running', 'interrupted'].includes(run.status)
    ? el('button', { type: 'button', id: 'task-retry', text: 'Retry ' + id, onclick: async () => {
      try { await post('/api/runs/' + enc(runId) + '/tasks/' + enc(id) + '/retry'); say('Retrying ' + id, 'ok'); } catch (e) { say(e.message, 'error'); }
    } }) : null;
  const attempts = el('table', { class: 'grid small' },
    el('caption', { text: 'Attempts of ' + id }),
    el('thead', {}, el('tr', {}, ...['#', 'Status', 'Failure', 'Exit code', 'Started', 'Duration', 'Fuel', 'Peak memory'].map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, ...(t.history || []).map((a) => el('tr', {},
      el('th', { scope: 'row', text: a.attempt }), el('td', {}, badge(a.status)),
      el('td', {}, a.error ? el('span', {}, el('strong', { text: a.error.kind }), ': ', el('span', { class: 'msg', text: a.error.message })) : ''),
      el('td', { text: a.error && a.error.exit_code !== null && a.error.exit_code !== undefined ? a.error.exit_code : '' }),
      el('td', { text: when(a.started_at) }), el('td', { text: duration(a.duration_us) }),
      el('td', { text: a.fuel_used.toLocaleString() }), el('td', { text: bytes(a.peak_memory) })))));
  const outText = JSON.stringify(t.output, null, 2);
  const output = outText.length > 4000
    ? el('details', { class: 'output' }, el('summary', { id: 'output-toggle', text: 'Output (' + bytes(outText.length) + ')' }), scrollable(el('pre', { text: outText }), 'output of ' + id))
    : scrollable(el('pre', { class: 'output', text: outText }), 'output of ' + id);
  let logBox = box.querySelector('#task-log');
  if (!logBox || logBox.dataset.task !== id) logBox = scrollable(el('pre', { id: 'task-log', class: 'log', 'data-task': id }), 'log of ' + id);
  box.replaceChildren(
    el('h2', { id: 'task-title', tabindex: '-1' }, 'Task ', el('span', { class: 'mono', text: id }), ' ', badge(s)),
    el('dl', { class: 'facts' },
      el('dt', { text: 'Plugin' }), el('dd', { text: t.plugin }),
      el('dt', { text: 'Attempts' }), el('dd', { text: t.attempts }),
      el('dt', { text: 'Time' }), el('dd', { text: duration(t.duration_us) }),
      el('dt', { text: 'Fuel' }), el('dd', { text: t.fuel_used.toLocaleString() }),
      el('dt', { text: 'Peak memory' }), el('dd', { text: bytes(t.peak_memory) })),
    t.error ? el('p', { class: 'error' }, el('strong', { text: t.error.kind }), ': ', t.error.message) : '',
    retry || '',
    t.history && t.history.length ? scrollable(el('div', { class: 'scroll', id: 'attempts-box' }, attempts), 'attempts of ' + id) : el('p', { class: 'muted', text: 'No attempt yet.' }),
    el('h3', { text: 'Output' }), output,
    el('h3', { text: 'Log' }),
    s === 'running' ? el('p', { class: 'muted small', text: 'Attempt ' + t.attempts + ' is running: its log so far, read again every second.' }) : '',
    logBox);
  // A log read before the run's state moved on (an attempt ended, another began) is read again:
  // the cache follows the attempts the run shows, not only the events this tab happened to get.
  const logKey = t.attempts + ':' + s;
  if (state.logKeys.get(id) !== logKey) { state.logs.delete(id); state.logKeys.set(id, logKey); }
  // While the task runs, its log is read again every second (only the log, only this task).
  clearInterval(state.logTimer);
  state.logTimer = null;
  if (s === 'running') {
    state.logTimer = setInterval(() => {
      if (!state.alive || state.selected !== id) { clearInterval(state.logTimer); return; }
      state.logs.delete(id);
      loadLog(state, runId, id, logBox);
    }, 1000);
  }
  loadLog(state, runId, id, logBox);
}
async function loadLog(state, runId, id, box) {
  if (state.logs.has(id)) { if (box.textContent !== state.logs.get(id)) box.textContent = state.logs.get(id); return; }
  try {
    const l = await api('/api/runs/' + enc(runId) + '/tasks/' + enc(id) + '/logs');
    const text = l.attempts.map((a) => '── attempt ' + a.attempt + (a.running ? ' (running)' : '') + (a.truncated ? ' (the start is cut)' : '') + ' ──\n' + (a.log || '(empty)')).join('\n') || '(no log yet)';
    state.logs.set(id, text);
    if (box.dataset.task === id && box.textContent !== text) {
      const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
      box.textContent = text;
      if (atEnd) box.scrollTop = box.scrollHeight;
    }
  } catch (e) { say(e.message, 'error'); }
}

// ---- plugins ------------------------------------------------------------------------------

function pluginsView(main) {
  heading(main, 'Plugins');
  const body = scrollable(el('div', { class: 'scroll' }), 'Plugins table');
  main.append(body);
  api('/api/plugins').then((list) => {
    body.replaceChildren(list.length ? el('table', { class: 'grid' },
      el('caption', { class: 'sr-only', text: 'Plugins of the plugin folder' }),
      el('thead', {}, el('tr', {}, ...['Plugin', 'ABI', 'Size', 'SHA-256', 'Imports', 'Loads'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, ...list.map((p) => el('tr', {},
        el('th', { scope: 'row', text: p.name }),
        el('td', { text: p.abi === 'v2' ? 'v2 (component)' : p.abi === 'v1' ? 'v1 (command)' : '–' }),
        el('td', { text: bytes(p.size) }),
        el('td', {}, p.hash ? el('code', { title: p.hash, text: p.hash.slice(0, 12) }) : ''),
        el('td', {}, p.imports.length ? el('details', {}, el('summary', { text: p.imports.length + ' imports' }), el('ul', { class: 'imports' }, ...p.imports.map((i) => el('li', {}, el('code', { text: i }))))) : '–'),
        el('td', {}, p.error ? scrollable(el('pre', { class: 'err', text: p.error }), 'why ' + p.name + ' does not load') : el('span', { class: 'badge st-succeeded', text: 'yes' }))))))
      : el('p', { text: 'The plugin folder is empty.' }));
    focusTitle();
  }, (e) => say(e.message, 'error'));
  return {};
}

// ---- start --------------------------------------------------------------------------------

document.querySelector('.skip').addEventListener('click', (ev) => { ev.preventDefault(); $('main').focus(); });
$('token-button').addEventListener('click', () => { const f = $('token-form'); f.hidden = !f.hidden; if (!f.hidden) $('token-input').focus(); });
$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token.set($('token-input').value.trim());
  $('token-input').value = '';
  $('token-form').hidden = true;
  say(token.get() ? 'Token set for this tab' : 'Token cleared', 'ok');
  if (wakeLive) wakeLive();
  route();
});
$('token-forget').addEventListener('click', () => { token.set(''); $('token-form').hidden = true; say('Token forgotten', 'ok'); });
window.addEventListener('hashchange', () => {
  // A task selected inside a run view keeps the view (and its live state).
  navigated = true;
  route();
});
route();
startLive();
