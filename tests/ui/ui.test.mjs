// Browser tests of bulkhead serve's web UI, run by tests/ui/run.sh against a live server with
// `--token --token-for-reads`: Playwright drives Debian's Chromium; axe-core checks every view
// for accessibility violations (light and dark). Screenshots of each step go to $SCREENSHOTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = require.resolve('axe-core/axe.min.js');
const { BASE, TOKEN, CHROMIUM, SCREENSHOTS } = process.env;
let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});
after(async () => { await browser?.close(); });

// A new tab (its own session storage), optionally with the token already given.
async function tab(opts = {}) {
  // axe-core is injected as a script: the UI's CSP (script-src 'self') would refuse it.
  const context = await browser.newContext({ bypassCSP: true, viewport: opts.viewport || { width: 1280, height: 900 }, colorScheme: opts.colorScheme || 'light' });
  const page = await context.newPage();
  page.on('pageerror', (e) => { throw new Error('page error: ' + e.message); });
  if (opts.token) {
    await page.goto(BASE + '/');
    await giveToken(page);
  }
  return page;
}
async function giveToken(page) {
  await page.locator('#token-input').waitFor({ state: 'visible' });
  await page.fill('#token-input', TOKEN);
  await page.click('#token-form button[type=submit]');
  await page.locator('#token-form').waitFor({ state: 'hidden' });
}
async function shot(page, name) {
  await page.screenshot({ path: `${SCREENSHOTS}/${name}.png`, fullPage: true });
}
// axe-core on the page as it is: no violation of any kind.
async function axe(page, what) {
  await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ['violations'] }));
  const found = result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
  assert.deepEqual(found, [], `axe on ${what}`);
}
async function apiPost(path, body) {
  const r = await fetch(BASE + path, { method: 'POST', headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' }, body: JSON.stringify(body || {}) });
  const text = await r.text();
  assert.ok(r.status < 300, `${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}
async function apiGet(path) {
  const r = await fetch(BASE + path, { headers: { Authorization: 'Bearer ' + TOKEN } });
  return r.json();
}
// Waits until `fn` (run in the page) returns true, for at most `ms`.
// On a timeout, the error shows what the page showed.
async function until(page, fn, arg, ms = 30000) {
  try {
    return await page.waitForFunction(fn, arg, { timeout: ms, polling: 50 });
  } catch (e) {
    const seen = await page.evaluate(() => document.querySelector('#status')?.textContent + ' | ' + document.querySelector('main')?.innerText.slice(0, 1500)).catch(() => '?');
    throw new Error(e.message + '\nwaiting for: ' + fn.toString() + '\nthe page showed: ' + seen);
  }
}
const nodeState = (page, task) => page.locator(`[id="node-${task}"]`).getAttribute('class');

test('the token is asked once, then the workflows, schedules and broken files show', async () => {
  const page = await tab();
  await page.goto(BASE + '/');
  // Reads need the token: the UI asks for it.
  await page.locator('#token-form').waitFor({ state: 'visible' });
  assert.match(await page.textContent('#status'), /token/i);
  await giveToken(page);
  await page.locator('table.grid').waitFor();
  const names = await page.locator('table.grid tbody th .name').allTextContents();
  for (const w of ['big', 'history', 'retrying', 'slow', 'ticking', 'typed']) assert.ok(names.includes(w), `${w} in ${names}`);
  // The schedule with its time zone and next fires.
  const slow = page.locator('tr', { has: page.locator('.name', { hasText: /^slow$/ }) });
  assert.match(await slow.textContent(), /0 3 \* \* \*.*Europe\/Berlin/);
  // In the schedule's own zone, whatever the browser's.
  assert.match(await slow.locator('.fires time').first().getAttribute('datetime'), /T03:00:00\+0[12]:00$/);
  assert.match(await slow.locator('.fires summary').textContent(), /next: \d{4}-\d{2}-\d{2} 03:00 \(\+0[12]:00\)/);
  // The broken file is listed with its error, inside the page.
  const broken = page.locator('.broken li');
  await broken.first().waitFor();
  assert.match(await broken.first().textContent(), /broken\.yaml/);
  assert.match(await broken.first().textContent(), /missing_task_with_a_long_name_0/);
  // The token is kept for the tab: a reload does not ask again.
  await page.reload();
  await page.locator('table.grid').waitFor();
  assert.equal(await page.locator('#token-form').isVisible(), false);
  await shot(page, '01-workflows');
  await axe(page, 'the workflows page');
  await page.context().close();
});

test('trigger with typed parameters, then watch the DAG go live to succeeded', async () => {
  const page = await tab({ token: true });
  await page.click('[id="trigger-typed"]');
  await page.locator('#param-day').waitFor();
  assert.equal(await page.locator('label[for="param-day"]').count(), 1, 'labelled');
  // The required one is missing: refused in the form, said, and marked.
  await page.click('#trigger-submit');
  assert.match(await page.textContent('#status'), /day is required/);
  assert.equal(await page.getAttribute('#param-day', 'aria-invalid'), 'true');
  await page.fill('#param-day', '2026-12-01');
  await page.fill('#param-limit', '20');
  await page.selectOption('#param-mode', { label: 'full' });
  await shot(page, '02-trigger-form');
  await axe(page, 'the trigger form');
  await page.click('#trigger-submit');
  await page.waitForURL(/#\/runs\/[0-9a-f-]+$/);
  const runId = page.url().split('/').pop();
  // Live: a task is seen running (the two sleeps take 300 and 500 ms), then all succeed.
  await until(page, () => document.querySelector('.node.st-running') !== null, null, 20000);
  await shot(page, '03-run-live');
  await until(page, () => document.querySelectorAll('.node.st-succeeded').length === 5, null, 30000);
  await until(page, () => document.querySelector('.runhead .badge')?.textContent === 'succeeded');
  // The parameters reached the tasks, typed and with the defaults filled in.
  const report = await apiGet('/api/runs/' + runId);
  assert.deepEqual(report.tasks.extract.output.received.run_params, { day: '2026-12-01', limit: 20, mode: 'full', dry_run: false });
  // The timeline has a bar per attempt.
  assert.equal(await page.locator('.gantt .bar').count(), 5);
  // Click a task: its attempts, output and log.
  await page.click('[id="node-join"]');
  await until(page, () => document.querySelector('#task-title')?.textContent.includes('join'));
  assert.match(await page.textContent('pre.output'), /"received"/);
  await shot(page, '04-run-succeeded');
  await axe(page, 'a succeeded run');
  await page.context().close();
});

test('a failed task with retries: its attempts and log, then retry it from the UI', async () => {
  const page = await tab({ token: true });
  const { run_id } = await apiPost('/api/runs', { workflow: 'retrying' });
  await page.goto(`${BASE}/#/runs/${run_id}/task/flaky`);
  await until(page, () => document.querySelector('.runhead .badge')?.textContent === 'failed', null, 30000);
  assert.match(await nodeState(page, 'flaky'), /st-failed/);
  assert.match(await nodeState(page, 'after'), /st-skipped/);
  assert.match(await nodeState(page, 'other'), /st-succeeded/);
  // Two attempts, each failed transiently, with the backoff gap between them on the timeline.
  await until(page, () => document.querySelectorAll('#task-panel tbody tr').length === 2);
  assert.match(await page.textContent('#task-panel tbody'), /transient/);
  await until(page, () => /not yet \(attempt 2\)/.test(document.querySelector('#task-log')?.textContent || ''));
  const bars = await page.locator('.gantt li', { has: page.locator('.label', { hasText: /^flaky$/ }) }).locator('.bar').evaluateAll(
    (bs) => bs.map((b) => [parseFloat(b.style.left), parseFloat(b.style.width)]));
  assert.equal(bars.length, 2);
  assert.ok(bars[1][0] > bars[0][0] + bars[0][1], `a gap between the attempts: ${JSON.stringify(bars)}`);
  await shot(page, '05-failed-task');
  await axe(page, 'a failed run');
  // Retry: the task runs again under its retry policy (two more attempts, failing again), and
  // the log of the first two stays in place.
  await page.click('#task-retry');
  await until(page, () => document.querySelectorAll('#task-panel tbody tr').length === 4, null, 30000);
  await until(page, () => /not yet \(attempt 4\)/.test(document.querySelector('#task-log')?.textContent || ''), null, 30000);
  assert.match(await page.textContent('#task-log'), /not yet \(attempt 1\)/);
  await shot(page, '06-retried');
  await page.context().close();
});

test('the log of a running task streams into its panel and stays when it ends', async () => {
  const page = await tab({ token: true });
  const { run_id } = await apiPost('/api/runs', { workflow: 'ticking' });
  await page.goto(`${BASE}/#/runs/${run_id}/task/tick`);
  // Seen while the task runs: part of the log, marked running.
  await until(page, () => document.querySelector('[id="node-tick"]')?.classList.contains('st-running')
    && /tick 3\n/.test(document.querySelector('#task-log')?.textContent || ''), null, 20000);
  const partial = await page.textContent('#task-log');
  assert.match(partial, /attempt 1 \(running\)/);
  assert.doesNotMatch(partial, /tick 40/);
  await shot(page, '07-log-streaming');
  // Then the whole of it, in the same place, once the attempt ended.
  await until(page, () => document.querySelector('.runhead .badge')?.textContent === 'succeeded'
    && /tick 40/.test(document.querySelector('#task-log')?.textContent || ''), null, 30000);
  assert.doesNotMatch(await page.textContent('#task-log'), /running/);
  await page.context().close();
});

test('cancel a slow run from the UI; only that run changes', async () => {
  const page = await tab({ token: true });
  const other = await apiPost('/api/runs', { workflow: 'slow' });
  const { run_id } = await apiPost('/api/runs', { workflow: 'slow' });
  await page.goto(`${BASE}/#/runs/${run_id}`);
  await until(page, () => document.querySelector('.node.st-running') !== null, null, 20000);
  page.once('dialog', (d) => d.accept());
  await page.click('#run-cancel');
  await until(page, () => document.querySelector('.runhead .badge')?.textContent === 'cancelled', null, 30000);
  assert.equal((await apiGet('/api/runs/' + other.run_id)).status, 'running', 'the other slow run goes on');
  await shot(page, '07-cancelled-run');
  await apiPost(`/api/runs/${other.run_id}/cancel`);
  await page.context().close();
});

test('keyboard only: trigger, open the run, select a task; focus stays through live updates', async () => {
  const page = await tab({ token: true });
  await page.locator('table.grid').waitFor();
  // Tab to the "Run…" link of `typed`.
  const focusOn = async (id, max = 80) => {
    for (let i = 0; i < max; i++) {
      if (await page.evaluate(() => document.activeElement?.id) === id) return;
      await page.keyboard.press('Tab');
    }
    assert.fail(`Tab never reached #${id} (at ${await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 120))})`);
  };
  await focusOn('trigger-typed');
  await page.keyboard.press('Enter');
  await page.locator('#param-day').waitFor();
  await focusOn('param-day');
  await page.keyboard.type('2026-12-02');
  await focusOn('trigger-submit');
  await page.keyboard.press('Enter');
  await page.waitForURL(/#\/runs\/[0-9a-f-]+$/);
  // The view's heading has the focus after the navigation.
  await until(page, () => document.activeElement?.id === 'view-title');
  // Tab to a graph node while the run goes on; live updates repaint around it.
  await page.locator('[id="node-report"]').waitFor();
  await focusOn('node-report');
  await until(page, () => document.querySelector('.runhead .badge')?.textContent === 'succeeded', null, 30000);
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'node-report', 'focus kept through updates');
  await page.keyboard.press('Enter');
  await until(page, () => document.activeElement?.id === 'task-title' && document.activeElement.textContent.includes('report'));
  // And the skip link, the first stop of a fresh page, leads to the content.
  await page.goto(BASE + '/#/runs');
  await page.reload();
  await page.locator('table.grid').waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.className), 'skip');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');
  await page.context().close();
});

test('a 390 px wide screen: nothing overflows, the controls stay reachable', async () => {
  const page = await tab({ token: true, viewport: { width: 390, height: 844 } });
  await page.locator('table.grid').waitFor();
  // How far the page is wider than the screen, and the outermost elements that stick out.
  const overflow = () => page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const out = [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > width + 0.5
      && !(e.parentElement && e.parentElement.getBoundingClientRect().right > width + 0.5))
      .map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + String(e.className.baseVal ?? e.className).replace(/ /g, '.') : ''));
    return [document.documentElement.scrollWidth - width, out.slice(0, 5).join(', ')];
  });
  let [over, what] = await overflow();
  assert.ok(over <= 0, `the workflows page is ${over} px too wide: ${what}`);
  const nav = await page.locator('#nav-runs').boundingBox();
  assert.ok(nav && nav.x + nav.width <= 390, 'the navigation is on screen');
  const broken = await page.locator('.broken li').first().boundingBox();
  assert.ok(broken && broken.x + broken.width <= 390, 'a long error stays within the screen');
  await shot(page, '08-narrow-workflows');
  const { run_id } = await apiPost('/api/runs', { workflow: 'retrying' });
  await page.goto(`${BASE}/#/runs/${run_id}/task/flaky`);
  await until(page, () => document.querySelector('.runhead .badge')?.textContent === 'failed', null, 30000);
  [over, what] = await overflow();
  assert.ok(over <= 0, `the run page is ${over} px too wide: ${what}`);
  await shot(page, '09-narrow-run');
  await axe(page, 'a run on a narrow screen');
  await page.context().close();
});

test('dark mode passes axe (contrast included)', async () => {
  const page = await tab({ token: true, colorScheme: 'dark' });
  await page.locator('table.grid').waitFor();
  await axe(page, 'the workflows page, dark');
  const { run_id } = await apiPost('/api/runs', { workflow: 'retrying' });
  await page.goto(`${BASE}/#/runs/${run_id}/task/flaky`);
  await until(page, () => document.querySelector('.runhead .badge')?.textContent === 'failed', null, 30000);
  await shot(page, '10-dark-run');
  await axe(page, 'a failed run, dark');
  await page.goto(BASE + '/#/plugins');
  await page.locator('table.grid').waitFor();
  await axe(page, 'the plugins page, dark');
  await page.context().close();
});

test('plugins: ABI, size, hash and imports', async () => {
  const page = await tab({ token: true });
  await page.goto(BASE + '/#/plugins');
  await page.locator('table.grid').waitFor();
  const row = page.locator('tr', { has: page.locator('th', { hasText: /^echo$/ }) });
  assert.match(await row.textContent(), /v1 \(command\)/);
  assert.match(await row.textContent(), /imports/);
  await shot(page, '11-plugins');
  await axe(page, 'the plugins page');
  await page.context().close();
});

test('speed: a 1,000-task run renders in under a second; 100,000 runs page in under 300 ms', async () => {
  const page = await tab({ token: true });
  const { run_id } = await apiPost('/api/runs', { workflow: 'big' });
  for (let i = 0; i < 600 && (await apiGet('/api/runs/' + run_id)).status !== 'succeeded'; i++) await new Promise((r) => setTimeout(r, 100));
  // Median of three loads: from navigation to every node painted with its final state.
  const times = [];
  for (let i = 0; i < 3; i++) {
    await page.goto(BASE + '/#/plugins');
    await page.locator('table.grid').waitFor();
    const t0 = Date.now();
    await page.evaluate((id) => { location.hash = '#/runs/' + id; }, run_id);
    await until(page, () => document.querySelectorAll('.node.st-succeeded').length === 1000, null, 10000);
    times.push(Date.now() - t0);
  }
  times.sort((a, b) => a - b);
  console.log(`  1,000-task run page: ${times.join(', ')} ms`);
  assert.ok(times[1] < 1000, `1,000-task run page took ${times[1]} ms`);
  await shot(page, '12-big-run');
  // The runs page over 100,000 finished runs (all, then filtered by workflow and status).
  for (const query of ['', '?workflow=history', '?workflow=history&status=succeeded']) {
    const ts = [];
    for (let i = 0; i < 3; i++) {
      await page.goto(BASE + '/#/plugins');
      await page.locator('table.grid').waitFor();
      const t0 = Date.now();
      await page.evaluate((q) => { location.hash = '#/runs' + q; }, query);
      await until(page, () => document.querySelectorAll('table.grid tbody tr').length === 50, null, 10000);
      ts.push(Date.now() - t0);
    }
    ts.sort((a, b) => a - b);
    console.log(`  runs page${query || ' (all)'} over 100,000 runs: ${ts.join(', ')} ms`);
    assert.ok(ts[1] < 300, `runs page ${query} took ${ts[1]} ms`);
  }
  // Paging goes on with the cursor.
  await page.click('#page-next');
  await until(page, () => document.querySelectorAll('table.grid tbody tr').length === 50 && location.hash.includes('cursor='));
  await shot(page, '13-runs-page-2');
  await axe(page, 'the runs page');
  await page.context().close();
});
