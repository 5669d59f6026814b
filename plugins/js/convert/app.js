// A Bulkhead task in JavaScript, built as a WebAssembly component (ABI v2) with
// componentize-js. It converts the `sum` of its upstream outputs (e.g. the Python summary) into
// other currencies, with rates fetched over HTTP from `params.rates_url`: outgoing HTTP that the
// host allows only to the origins of the task's `http:` grant.
//
// No server answering (or the request refused) is not a failure of the pipeline: the output says
// why nothing was converted. `params.strict: true` makes it a transient failure instead, which
// the task's retry policy retries.
import { log } from 'bulkhead:plugin/log@0.1.0';

function transient(message) {
  // A thrown `task-error` record: `kind` is `transient` or `permanent`.
  return { kind: 'transient', message };
}

export async function run(task) {
  const params = JSON.parse(task.params) ?? {};
  const inputs = JSON.parse(task.inputs) ?? {};
  const sums = Object.values(inputs).filter((o) => typeof o?.sum === 'number');
  if (sums.length === 0) {
    throw { kind: 'permanent', message: 'no upstream output has a numeric `sum`' };
  }
  const total = sums.reduce((a, o) => a + o.sum, 0);
  let rates;
  try {
    const response = await fetch(params.rates_url);
    if (!response.ok) {
      throw new Error(`HTTP ${response.status}`);
    }
    rates = await response.json();
  } catch (e) {
    const reason = `cannot get rates from ${params.rates_url}: ${e?.message ?? e}`;
    log('warn', 'no rates', [['reason', reason]]);
    if (params.strict) {
      throw transient(reason);
    }
    return JSON.stringify({ language: 'javascript', total, converted: null, reason });
  }
  const converted = {};
  for (const [currency, rate] of Object.entries(rates)) {
    if (typeof rate === 'number') {
      converted[currency] = Math.round(total * rate * 100) / 100;
    }
  }
  log('info', 'converted', [['currencies', String(Object.keys(converted).length)]]);
  return JSON.stringify({ language: 'javascript', total, converted });
}
