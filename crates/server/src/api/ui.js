// Everything from the server is shown with textContent: outputs and logs are untrusted.
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; };
const row = (cells) => { const tr = el('tr'); for (const c of cells) { const td = el('td'); if (c instanceof Node) td.appendChild(c); else td.textContent = c ?? ''; tr.appendChild(td); } return tr; };
const head = (names) => row(names.map(n => el('b', n)));
const auth = () => { const t = document.getElementById('token').value; return t ? { Authorization: 'Bearer ' + t } : {}; };
async function api(path, opts = {}) {
  const r = await fetch(path, { ...opts, headers: { ...auth(), ...(opts.headers || {}) } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}
async function post(path, body) {
  return api(path, { method: 'POST', headers: { 'Content-Type': 'application/json', ...auth() }, body: JSON.stringify(body || {}) });
}
function say(text, cls) { const s = document.getElementById('status'); s.textContent = text; s.className = cls || ''; }
// `#run=ID` opens a run, so a run can be linked to.
let shown = location.hash.startsWith('#run=') ? decodeURIComponent(location.hash.slice(5)) : null;
async function refresh() {
  try {
    const wf = await api('/api/workflows');
    const t = document.getElementById('workflows'); t.replaceChildren(head(['name', 'tasks', 'schedule', 'next fire', '']));
    for (const w of wf.workflows) {
      const b = el('button', 'run'); b.onclick = () => post('/api/runs', { workflow: w.name }).then(r => { say('triggered ' + r.run_id); refresh(); }, e => say(e.message, 'error'));
      t.appendChild(row([w.name + (w.error ? ' (latest file broken)' : ''), w.tasks, w.schedule.join(', '), w.next_fire_at || '', b]));
    }
    for (const f of wf.broken_files) t.appendChild(row([el('span', f.file, 'error'), '', el('span', f.error, 'error'), '', '']));
    const pl = await api('/api/plugins');
    const p = document.getElementById('plugins'); p.replaceChildren(head(['name', 'size', 'hash / error']));
    for (const x of pl) p.appendChild(row([x.name, x.size, x.error ? el('span', x.error, 'error') : x.hash.slice(0, 12)]));
    const runs = await api('/api/runs?limit=50');
    const r = document.getElementById('runs'); r.replaceChildren(head(['run', 'workflow', 'status', 'started (or due)', 'finished']));
    for (const x of runs.runs) {
      const a = el('a', x.run_id.slice(0, 13) + '…'); a.onclick = () => { shown = x.run_id; location.hash = 'run=' + x.run_id; detail(); };
      r.appendChild(row([a, x.workflow, el('span', x.status, x.status), x.started_at || (x.due_at ? 'due ' + x.due_at : ''), x.finished_at || '']));
    }
    if (shown) await detail();
  } catch (e) { say(e.message, 'error'); }
}
async function detail() {
  const d = document.getElementById('detail'); d.hidden = false;
  const run = await api('/api/runs/' + encodeURIComponent(shown));
  const cancel = el('button', 'cancel'); cancel.onclick = () => post('/api/runs/' + shown + '/cancel').then(() => refresh(), e => say(e.message, 'error'));
  const title = el('h2', 'Run ' + run.run_id + ' of ' + run.workflow + ': '); title.appendChild(el('span', run.status, run.status));
  if (['pending', 'running', 'interrupted'].includes(run.status)) { title.appendChild(el('span', ' ')); title.appendChild(cancel); }
  const t = el('table'); t.appendChild(head(['task', 'status', 'attempts', 'duration', 'fuel', 'peak memory', 'error', '']));
  const out = el('pre');
  for (const [id, task] of Object.entries(run.tasks)) {
    const logs = el('a', 'logs'); logs.onclick = () => api('/api/runs/' + shown + '/tasks/' + encodeURIComponent(id) + '/logs').then(l => {
      out.textContent = 'output: ' + JSON.stringify(l.output, null, 2) + '\n\n' + l.attempts.map(a => '== attempt ' + a.attempt + ' ==\n' + a.log).join('\n');
    }, e => say(e.message, 'error'));
    const cell = el('span'); cell.appendChild(logs);
    if (task.status === 'failed' || task.status === 'cancelled') {
      const retry = el('button', 'retry'); retry.onclick = () => post('/api/runs/' + shown + '/tasks/' + encodeURIComponent(id) + '/retry').then(() => refresh(), e => say(e.message, 'error'));
      cell.appendChild(el('span', ' ')); cell.appendChild(retry);
    }
    t.appendChild(row([id, el('span', task.status, task.status), task.attempts, (task.duration_us / 1000).toFixed(1) + ' ms', task.fuel_used, Math.round(task.peak_memory / 1024) + ' KiB',
      task.error ? el('span', task.error.kind + ': ' + task.error.message, 'error') : '', cell]));
  }
  d.replaceChildren(title, t, out);
}
refresh(); setInterval(refresh, 2000);
