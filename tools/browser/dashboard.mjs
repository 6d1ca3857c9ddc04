// Drives Debian's headless Chromium (through playwright-core, never a downloaded browser)
// against a running `internet-monitor serve` and prints ONE JSON document on stdout: what it
// saw. It asserts nothing itself; tests/dashboard_browser.rs and bench/dashboard.sh judge.
//
//   node dashboard.mjs test URL OUTDIR [--empty URL] [--xss URL] [--new-run TEXT]
//       The page at URL (a store with a year of runs), at 1280 and 375 px wide, light and
//       dark: console messages, page errors, failed requests and answers >= 400 per page;
//       the speed chart's series and failure markers, the heat map's cells, range switches
//       and the series requests they made, a reload, the server ceasing to answer while
//       the page is open (and coming back), the run-now flow (until a row of
//       #runs holds TEXT), keyboard focus order, horizontal overflow, a rule set chosen in
//       Compliance (its verdict panel, rules= through a reload, 375 px, dark), and screenshots
//       (OUTDIR/dashboard-1280.png, dashboard-375.png, dashboard-dark-1280.png). --empty:
//       a server over an empty store; --xss: a server whose stored text is hostile. The
//       connection section with /api/v1/latency and /api/v1/outages answered by contract-shaped
//       fixtures (band, loss colours, outages on the speed chart, keyboard, 375 px, dark), by
//       404 and by "probing off, nothing stored" (hidden).
//   node dashboard.mjs bench URL OUTDIR --path P [--path P…] [--loads N] [--warmup N]
//       For each path (e.g. `/`, `/?range=1y`), N loads, each in a fresh context (no
//       browser cache): ms from navigation start to document.body.dataset.drawn being set,
//       and the bytes transferred (Performance API).
//
// Diagnostics go to stderr. Exit status 0 when it could report (whatever it saw), 2 on bad
// arguments, 1 when the browser could not start.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// Headless as root on a machine without network: no sandbox, no GPU, and none of the
// background traffic (component updates, sync, QUIC probes) Chromium starts by itself.
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const WAIT_MS = 20_000; // the longest wait for the page to draw or a run to appear
const ACTION_MS = 5_000; // the longest wait for an element to click or read

function usage(message) {
  process.stderr.write(`${message}\nusage: node dashboard.mjs test URL OUTDIR [--empty URL] [--xss URL] [--new-run TEXT]\n` +
    '       node dashboard.mjs bench URL OUTDIR --path P [--path P…] [--loads N] [--warmup N]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const [mode, url, out, ...rest] = argv;
  if (!['test', 'bench'].includes(mode) || !url || !out) usage('missing mode, URL or OUTDIR');
  const options = { mode, url: url.replace(/\/+$/, ''), out, paths: [], loads: 5, warmup: 0 };
  for (let i = 0; i < rest.length; i += 2) {
    const [flag, value] = [rest[i], rest[i + 1]];
    if (value === undefined) usage(`${flag} needs a value`);
    switch (flag) {
      case '--empty': options.empty = value.replace(/\/+$/, ''); break;
      case '--xss': options.xss = value.replace(/\/+$/, ''); break;
      case '--new-run': options.newRun = value; break;
      case '--path': options.paths.push(value); break;
      case '--loads': options.loads = Number(value); break;
      case '--warmup': options.warmup = Number(value); break;
      default: usage(`unknown option ${flag}`);
    }
  }
  return options;
}

// Everything a page says or fails at, kept per page label.
function watch(page, label, log) {
  const seen = { console: [], pageerrors: [], failed: [], statuses: [], csp: [] };
  log[label] = seen;
  page.on('console', (message) => {
    const entry = { type: message.type(), text: message.text().slice(0, 500) };
    if (['error', 'warning'].includes(entry.type)) seen.console.push(entry);
    if (/Content[- ]Security[- ]Policy/i.test(entry.text)) seen.csp.push(entry.text);
  });
  page.on('pageerror', (error) => seen.pageerrors.push(String(error).slice(0, 500)));
  page.on('requestfailed', (request) => seen.failed.push({
    url: request.url(), method: request.method(), error: request.failure()?.errorText ?? null,
  }));
  page.on('response', (response) => {
    if (response.status() >= 400) {
      seen.statuses.push({ url: response.url(), status: response.status(), method: response.request().method() });
    }
  });
  return seen;
}

// Installed before any of the page's scripts: records CSP violations and the moment (ms since
// navigation start) `data-drawn` is first set to each value, without polling.
function initScript() {
  window.__cspViolations = [];
  document.addEventListener('securitypolicyviolation', (event) => {
    window.__cspViolations.push({ directive: event.violatedDirective, blocked: event.blockedURI });
  });
  window.__drawnAt = {};
  new MutationObserver(() => {
    const drawn = document.body && document.body.dataset.drawn;
    if (drawn && !(drawn in window.__drawnAt)) window.__drawnAt[drawn] = performance.now();
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-drawn'] });
}

async function newPage(browser, log, label, contextOptions = {}) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 900 },
    locale: 'en-US',
    timezoneId: 'UTC',
    colorScheme: 'light',
    ...contextOptions,
  });
  await context.addInitScript(initScript);
  const page = await context.newPage();
  page.setDefaultTimeout(ACTION_MS);
  const seen = watch(page, label, log);
  return { context, page, seen };
}

async function waitDrawn(page, key) {
  await page.waitForFunction(
    (want) => want === null ? Boolean(document.body && document.body.dataset.drawn)
      : document.body && document.body.dataset.drawn === want,
    key, { timeout: WAIT_MS, polling: 50 });
}

// Runs `step`, keeping its result, or its error, under `name`: one broken part of the page
// does not hide what the others do.
async function step(result, name, fn) {
  const started = Date.now();
  try {
    result[name] = await fn();
  } catch (error) {
    result[name] = { error: String(error && error.message || error).slice(0, 2000) };
  }
  process.stderr.write(`[dashboard.mjs] ${name}: ${Date.now() - started} ms${result[name]?.error ? ` (error: ${result[name].error.split('\n')[0]})` : ''}\n`);
}

// The series requests the page makes, with their query, and the bodies of their answers.
function seriesWatcher(page) {
  const requests = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.pathname === '/api/v1/series') {
      requests.push({ from: url.searchParams.get('from'), to: url.searchParams.get('to'), points: url.searchParams.get('points'), url: request.url() });
    }
  });
  const bodies = [];
  page.on('response', async (response) => {
    const url = new URL(response.url());
    if (url.pathname !== '/api/v1/series' || response.status() !== 200) return;
    try {
      const body = await response.json();
      bodies.push({
        url: response.url(), from: body.from, to: body.to, step_seconds: body.step_seconds, runs: body.runs,
        failures: (body.failures || []).length,
        failure_count: (body.failures || []).reduce((sum, entry) => sum + (entry.count || 0), 0),
        failures_grouped: body.failures_grouped, points: (body.time || []).length,
      });
    } catch (error) {
      bodies.push({ url: response.url(), error: String(error) });
    }
  });
  return { requests, bodies };
}

// The speed chart as a person (and a screen reader) sees it.
async function speedChart(page) {
  return page.evaluate(() => {
    const figure = document.querySelector('#speed-chart');
    const text = (element) => (element ? element.textContent.replace(/\s+/g, ' ').trim() : null);
    const legend = figure ? [...figure.querySelectorAll('.u-legend .u-series')].map((row) => ({
      label: text(row.querySelector('.u-label') || row.querySelector('th') || row),
      shown: !row.classList.contains('u-off'),
    })) : [];
    const markers = [...document.querySelectorAll('.failure-marker')].map((marker) => ({
      tag: marker.tagName.toLowerCase(), count: Number(marker.dataset.count), time: Number(marker.dataset.time),
      label: marker.getAttribute('aria-label'), title: marker.getAttribute('title'), in_chart: Boolean(figure && figure.contains(marker)),
    }));
    return {
      present: Boolean(figure), tag: figure && figure.tagName.toLowerCase(),
      canvas: Boolean(figure && figure.querySelector('canvas')),
      caption: text(figure && figure.querySelector('figcaption')), legend,
      series_keys: figure && figure.dataset.series !== undefined ? figure.dataset.series.split(',').filter(Boolean) : null,
      latency_series_keys: (document.querySelector('#latency-chart') || { dataset: {} }).dataset.series?.split(',').filter(Boolean) ?? null,
      latency_caption: text(document.querySelector('#latency-chart figcaption')),
      // The levels (Mbit/s) the plan lines take: more than one where the plan changed.
      download_plan_levels: figure && figure.dataset.downloadPlan ? figure.dataset.downloadPlan.split(',').map(Number) : [],
      upload_plan_levels: figure && figure.dataset.uploadPlan ? figure.dataset.uploadPlan.split(',').map(Number) : [],
      markers: markers.length, marker_count_sum: markers.reduce((sum, marker) => sum + marker.count, 0),
      marker_list: markers.slice(0, 2000),
    };
  });
}

async function heatmap(page) {
  return page.evaluate(() => {
    const table = document.querySelector('#heatmap');
    const rows = table ? [...table.querySelectorAll('tbody tr')] : [];
    return {
      present: Boolean(table), tag: table && table.tagName.toLowerCase(), rows: rows.length,
      cells: rows.map((row) => row.querySelectorAll('td').length),
      headers: rows.map((row) => (row.querySelector('th') || {}).textContent || null),
    };
  });
}

// Focuses the failure marker at `index` (the last if there are fewer) and returns what it
// tells then: its label and title and any tooltip shown.
async function focusMarker(page, index = 0) {
  const markers = page.locator('.failure-marker');
  const count = await markers.count();
  if (count === 0) return { markers: 0 };
  const marker = markers.nth(Math.min(index, count - 1));
  await marker.focus();
  await page.waitForTimeout(0);
  return page.evaluate(() => {
    const active = document.activeElement;
    const tooltips = [...document.querySelectorAll('[role="tooltip"], .tooltip, .failure-tooltip')]
      .filter((element) => element.checkVisibility ? element.checkVisibility() : element.offsetParent !== null)
      .map((element) => element.textContent.replace(/\s+/g, ' ').trim());
    return {
      focused_is_marker: Boolean(active && active.classList.contains('failure-marker')),
      time: active ? Number(active.dataset.time) : null, count: active ? Number(active.dataset.count) : null,
      label: active && active.getAttribute('aria-label'), title: active && active.getAttribute('title'),
      described_by: active && active.getAttribute('aria-describedby')
        ? (document.getElementById(active.getAttribute('aria-describedby')) || {}).textContent || null : null,
      tooltips,
    };
  });
}

async function runsTable(page) {
  return page.evaluate(() => [...document.querySelectorAll('#runs tbody tr')].map((row) => ({
    text: row.textContent.replace(/\s+/g, ' ').trim().slice(0, 400),
    links: [...row.querySelectorAll('a[href]')].map((link) => link.getAttribute('href')),
  })));
}

async function tabOrder(page, limit = 120) {
  const order = [];
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const active = document.activeElement;
      if (!active || active === document.body) return null;
      return { tag: active.tagName.toLowerCase(), id: active.id || null, range: active.dataset.range || null,
        class: active.className || null, visible: active.checkVisibility ? active.checkVisibility() : true };
    });
    order.push(focused);
    const reached = (test) => order.some((entry) => entry && test(entry));
    if (reached((entry) => entry.id === 'run-now') && reached((entry) => entry.range === '1y')
      && reached((entry) => String(entry.class).includes('failure-marker'))) break;
  }
  return order;
}

// Elements wider than the viewport that are not inside something that scrolls sideways.
async function overflow(page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const scrolls = (element) => {
      for (let node = element.parentElement; node && node !== document.body; node = node.parentElement) {
        const style = getComputedStyle(node);
        if (['auto', 'scroll', 'hidden', 'clip'].includes(style.overflowX)) return true;
      }
      return false;
    };
    const offenders = [...document.body.querySelectorAll('*')]
      .filter((element) => { const box = element.getBoundingClientRect(); return box.width > 0 && box.right > width + 0.5 && !scrolls(element); })
      .slice(0, 20)
      .map((element) => ({ tag: element.tagName.toLowerCase(), id: element.id || null, class: String(element.className || '').slice(0, 80),
        right: Math.round(element.getBoundingClientRect().right) }));
    return { inner_width: window.innerWidth, client_width: width, scroll_width: document.documentElement.scrollWidth,
      body_scroll_width: document.body.scrollWidth, offenders };
  });
}

async function screenshot(page, file, tallest = 4500) {
  // The whole page (up to `tallest` px) if its PNG stays under ~580 KB, small enough to
  // commit, else its top part, as tall as fits; no focus ring, no tooltip.
  const height = await page.evaluate(() => {
    if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
    return document.documentElement.scrollHeight;
  });
  const width = page.viewportSize().width;
  await page.mouse.move(0, 0);
  let shot;
  for (const limit of [Math.min(height, tallest), 3600, 3000, 2400, 1800]) {
    if (limit > Math.min(height, tallest)) continue;
    await page.screenshot({ path: file, fullPage: true, clip: { x: 0, y: 0, width, height: limit }, animations: 'disabled' });
    shot = { file, bytes: fs.statSync(file).size, page_height: height, shot_height: limit };
    if (shot.bytes <= 580 * 1024) break;
  }
  return shot;
}

// The Compliance section's rule-set selector and verdict panel as a person sees them.
async function verdictState(page) {
  return page.evaluate(() => {
    const text = (selector) => { const node = document.querySelector(selector); return node ? node.textContent.replace(/\s+/g, ' ').trim() : null; };
    const visible = (selector) => { const node = document.querySelector(selector); return Boolean(node && node.checkVisibility()); };
    const label = document.querySelector('#verdict-label');
    return {
      url: location.href, selected: document.querySelector('#rules-select').value,
      verdict: document.querySelector('#compliance').dataset.verdict ?? null,
      panel_visible: visible('#verdict'), title: text('#verdict-title'),
      label: text('#verdict-label'), label_visible: visible('#verdict-label'),
      label_colour: label ? getComputedStyle(label).color : null,
      label_background: label ? getComputedStyle(label).backgroundColor : null,
      outcome: text('#verdict-outcome'), reason: text('#verdict-reason'),
      criteria: [...document.querySelectorAll('#verdict-criteria li')].map((item) => item.textContent.replace(/\s+/g, ' ').trim().slice(0, 300)),
      facts: text('#verdict-facts'), unverified_visible: visible('#verdict-unverified'), unverified: text('#verdict-unverified ul'),
    };
  });
}

// A verdict as `/api/v1/summary?rules=` gives it, with every criterion status, a note and
// HTML in its text, which must show as text.
const FULL_VERDICT = {
  rules: 'us-fcc', title: 'FCC (United States): performance measures, as an indication', outcome: 'not_met', reason: null,
  criteria: [
    { id: 'speed', direction: 'download', requirement: '80 % of speed tests in the peak hours (18–24 local) reach 80 % of the required speed (80 Mbit/s) <img src=x onerror="window.__xss=7">',
      status: 'not_met', count: 27, of: 40, unit: 'measurements', reason: null },
    { id: 'latency', direction: null, requirement: '95 % of latency tests at or below 100 ms', status: 'met', count: 40, of: 40, unit: 'measurements', reason: null },
    { id: 'upload', direction: 'upload', requirement: '80 % of speed tests reach 80 % of the required upload speed', status: 'not_assessable', count: 0, of: 0,
      unit: 'measurements', reason: 'the contract states no upload speed' },
    { id: 'days', direction: null, requirement: 'Measurement days', status: 'informational', count: 3, of: 3, unit: 'days', reason: null },
  ],
  progress: { measurements: 40, measurements_required: 0, days: 3, days_required: 0, complete: true },
  successful_runs: 40, failed_runs: 2,
  label: "indicative: the FCC's test binds carriers receiving support, not a consumer's line",
  unverified: ['The peak window is taken as 18:00 to 24:00 local time <script>window.__xss=8</script>'],
  sources: ['FCC 19-104, paragraph 23'], campaign: null,
};

// Compliance's rule-set selector on a page of its own, in Europe/Berlin: chosen by keyboard
// (Tab to it, type the start of an option), through a reload, at 375 px, dark, then none.
async function rulesSteps(browser, options, log) {
  const judged = await newPage(browser, log, 'rules', { timezoneId: 'Europe/Berlin' });
  const page = judged.page;
  const summaries = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.pathname === '/api/v1/summary') summaries.push(Object.fromEntries(url.searchParams));
  });
  const verdictIs = (want) => page.waitForFunction((value) => document.querySelector('#compliance').dataset.verdict === value,
    want, { timeout: WAIT_MS, polling: 50 });
  await page.goto(`${options.url}/?range=30d`, { waitUntil: 'load' });
  await waitDrawn(page, '30d');
  await verdictIs('none');
  const before = await verdictState(page);
  await page.focus('#heatmap-metric');
  const tabs = [];
  for (let i = 0; i < 4; i++) {
    await page.keyboard.press('Tab');
    const id = await page.evaluate(() => document.activeElement && (document.activeElement.id || String(document.activeElement.className) || document.activeElement.tagName));
    tabs.push(id);
    if (id === 'rules-select') break;
  }
  const asked = summaries.length;
  await page.keyboard.type('Germ');
  let typed = true;
  try {
    await verdictIs('de-bnetza');
  } catch {
    // Typing on the closed <select> did not choose: said in the report, chosen as a pointer would.
    typed = false;
    await page.selectOption('#rules-select', 'de-bnetza');
    await verdictIs('de-bnetza');
  }
  const chosen = { ...(await verdictState(page)), typed, tabs, requests: summaries.slice(asked) };
  await page.waitForLoadState('networkidle');
  const reloadAsked = summaries.length;
  await page.reload({ waitUntil: 'load' });
  await waitDrawn(page, '30d');
  await verdictIs('de-bnetza');
  const reloaded = { ...(await verdictState(page)), requests: summaries.slice(reloadAsked) };
  // A verdict with criteria of every status, a note and hostile text (the server's own may
  // have none yet): us-fcc's answer is the server's, its verdict replaced by FULL_VERDICT.
  await page.route('**/api/v1/summary?*', async (route) => {
    if (new URL(route.request().url()).searchParams.get('rules') !== 'us-fcc') return route.continue();
    const response = await route.fetch();
    const body = await response.json();
    body.rules = { ...body.rules, ...FULL_VERDICT };
    return route.fulfill({ response, json: body });
  });
  await page.selectOption('#rules-select', 'us-fcc');
  await verdictIs('us-fcc');
  await page.waitForTimeout(100); // a handler injected by a broken page would have run by now
  const full = { ...(await verdictState(page)), xss: await page.evaluate(() => window.__xss ?? null),
    injected_img: await page.evaluate(() => document.querySelectorAll('#verdict img').length) };
  await page.setViewportSize({ width: 375, height: 812 });
  // The charts follow their box's width a moment later (a debounced ResizeObserver).
  await page.waitForFunction(() => window.innerWidth === 375 && document.documentElement.scrollWidth <= 375,
    null, { timeout: ACTION_MS, polling: 50 }).catch(() => {});
  const narrow = { ...(await overflow(page)), verdict: await verdictState(page) };
  // Pictures of the panel for a person to look at (not compared): target/test-artifacts.
  await page.locator('#compliance').screenshot({ path: path.join(options.out, 'verdict-375.png'), animations: 'disabled' });
  await page.emulateMedia({ colorScheme: 'dark' });
  const dark = { ...(await verdictState(page)), matches: await page.evaluate(() => matchMedia('(prefers-color-scheme: dark)').matches) };
  await page.locator('#compliance').screenshot({ path: path.join(options.out, 'verdict-dark-375.png'), animations: 'disabled' });
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.selectOption('#rules-select', '');
  await verdictIs('none');
  const none = await verdictState(page);
  await page.waitForLoadState('networkidle');
  // Addresses asking for what the page cannot judge: a range over 366 days, a rule set it
  // does not know. Each is said in the section, not sent to the server.
  const odd = {};
  const longFrom = new Date(Date.now() - 400 * 86_400_000).toISOString();
  for (const [name, search, want] of [['too_long', `?from=${encodeURIComponent(longFrom)}&rules=de-bnetza`, 'too-long'],
    ['unknown', '?range=7d&rules=fr-arcep', 'none']]) {
    const asked = summaries.length;
    await page.goto(`${options.url}/${search}`, { waitUntil: 'load' });
    await verdictIs(want);
    odd[name] = { ...(await verdictState(page)), hint: await page.textContent('#rules-hint'), requests: summaries.slice(asked) };
  }
  await page.waitForLoadState('networkidle');
  await judged.context.close();
  return { before, chosen, reloaded, full, narrow, dark, none, ...odd };
}

async function pageState(page) {
  return page.evaluate(() => ({
    state: document.body.dataset.state || null, drawn: document.body.dataset.drawn || null,
    url: location.href, csp_violations: window.__cspViolations || [], xss: window.__xss === undefined ? null : window.__xss,
  }));
}

// Everything on the main page once it drew, plus the narrow and dark pages; the run-now flow
// last, since the new run changes what Now and the charts show.
async function mainSteps(browser, options, log, result, main, series) {
  // Tab first: focusing a marker would move where sequential focus navigation starts.
  await step(result, 'tab_order', () => tabOrder(main.page));
  await step(result, 'chart', () => speedChart(main.page));
  await step(result, 'heatmap', () => heatmap(main.page));
  await step(result, 'screenshot_1280', () => screenshot(main.page, path.join(options.out, 'dashboard-1280.png')));
  await step(result, 'marker_focus', () => focusMarker(main.page, 0));
  for (const range of ['7d', '1y']) {
    await step(result, `range_${range}`, async () => {
      const before = series.requests.length;
      await main.page.click(`[data-range="${range}"]`);
      await waitDrawn(main.page, range);
      return { ...(await pageState(main.page)), series_requests: series.requests.slice(before),
        pressed: await main.page.getAttribute(`[data-range="${range}"]`, 'aria-pressed') };
    });
  }
  await step(result, 'reload', async () => {
    await main.page.waitForLoadState('networkidle');
    const before = series.requests.length;
    await main.page.reload({ waitUntil: 'load' });
    await waitDrawn(main.page, null);
    await main.page.waitForLoadState('networkidle');
    return { ...(await pageState(main.page)), series_requests: series.requests.slice(before),
      pressed: await main.page.getAttribute('[data-range="1y"]', 'aria-pressed') };
  });
  // Ranges typed into the address: `?from=` alone runs to now; one the page cannot use is
  // named on the range line rather than silently replaced by the default.
  await step(result, 'url_ranges', async () => {
    const typed = await newPage(browser, log, 'url-ranges');
    const seen = {};
    const from = new Date(Date.now() - 3 * 86_400_000).toISOString();
    for (const [name, search] of [['from_only', `?from=${encodeURIComponent(from)}`], ['garbage', '?from=garbage&to=2026-01-01']]) {
      const requests = [];
      const listener = (request) => { if (new URL(request.url()).pathname === '/api/v1/series') requests.push(request.url()); };
      typed.page.on('request', listener);
      await typed.page.goto(`${options.url}/${search}`, { waitUntil: 'load' });
      await waitDrawn(typed.page, null);
      typed.page.off('request', listener);
      seen[name] = { asked_from: from, series: requests.map((url) => Object.fromEntries(new URL(url).searchParams)),
        label: await typed.page.textContent('#range-label'), pressed: await typed.page.getAttribute('[data-range="7d"]', 'aria-pressed') };
    }
    await typed.context.close();
    return seen;
  });
  // 375 px wide: nothing overflows sideways but inside scrollable tables.
  await step(result, 'narrow_375', async () => {
    const narrow = await newPage(browser, log, 'narrow-375', { viewport: { width: 375, height: 812 }, isMobile: false });
    await narrow.page.goto(`${options.url}/?range=30d`, { waitUntil: 'load' });
    await waitDrawn(narrow.page, '30d');
    await narrow.page.waitForLoadState('networkidle');
    const seen = { ...(await overflow(narrow.page)), screenshot: await screenshot(narrow.page, path.join(options.out, 'dashboard-375.png'), 2400) };
    await narrow.context.close();
    return seen;
  });

  // Dark.
  await step(result, 'dark_1280', async () => {
    const dark = await newPage(browser, log, 'dark-1280', { colorScheme: 'dark' });
    await dark.page.goto(`${options.url}/?range=30d`, { waitUntil: 'load' });
    await waitDrawn(dark.page, '30d');
    await dark.page.waitForLoadState('networkidle');
    const colours = await dark.page.evaluate(() => ({
      body: getComputedStyle(document.body).backgroundColor, html: getComputedStyle(document.documentElement).backgroundColor,
      text: getComputedStyle(document.body).color, matches: matchMedia('(prefers-color-scheme: dark)').matches,
    }));
    const seen = { ...colours, screenshot: await screenshot(dark.page, path.join(options.out, 'dashboard-dark-1280.png')) };
    await dark.context.close();
    return seen;
  });

  // A rule set chosen in Compliance, by keyboard: the verdict panel with its label, kept in
  // the address as rules= through a reload, at 375 px and in dark mode; then none again.
  await step(result, 'rules', () => rulesSteps(browser, options, log));

  // The server stops answering while the page is open (its status requests refused): the
  // minute's poll says so on the page, not only in the console, and once the server answers
  // again the page clears that and reloads by itself. Not watched like the other pages: the
  // refused requests are the point here.
  await step(result, 'server_gone', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
    const page = await context.newPage();
    page.setDefaultTimeout(ACTION_MS);
    const pageerrors = [];
    page.on('pageerror', (error) => pageerrors.push(String(error).slice(0, 500)));
    await page.clock.install();
    await page.goto(`${options.url}/?range=7d`, { waitUntil: 'load' });
    await waitDrawn(page, '7d');
    const banner = () => page.evaluate(() => {
      const node = document.querySelector('#error');
      return { visible: Boolean(node && !node.hidden), text: node ? node.textContent : null, state: document.body.dataset.state || null };
    });
    const before = await banner();
    await page.route('**/api/v1/status', (route) => route.abort('connectionrefused'));
    await page.clock.runFor(61_000);
    await page.waitForFunction(() => !document.querySelector('#error').hidden, null, { timeout: 3_000, polling: 50 }).catch(() => {});
    const down = await banner();
    await page.unroute('**/api/v1/status');
    await page.clock.runFor(61_000);
    await page.waitForFunction(() => document.querySelector('#error').hidden && document.body.dataset.drawn === '7d',
      null, { timeout: WAIT_MS, polling: 50 }).catch(() => {});
    const back = await banner();
    await context.close();
    return { before, down, back, pageerrors };
  });

  // Last on the main page: the new run changes what Now and the charts show.
  await step(result, 'run_now', async () => {
    const rows = await runsTable(main.page);
    const button = { disabled: await main.page.isDisabled('#run-now') };
    const posts = [];
    main.page.on('response', (response) => {
      if (new URL(response.url()).pathname === '/api/v1/run') posts.push({ method: response.request().method(), status: response.status() });
    });
    await main.page.click('#run-now');
    const progress = [];
    const running = []; // what Now's "Test running" said meanwhile, each change once
    const poll = setInterval(() => {
      main.page.evaluate(() => (document.querySelector('#run-progress') || {}).textContent || '')
        .then((text) => { if (text && progress[progress.length - 1] !== text) progress.push(text.trim().slice(0, 200)); })
        .catch(() => {});
      main.page.evaluate(() => (document.querySelector('#now-running') || {}).textContent || '')
        .then((text) => { if (text && running[running.length - 1] !== text) running.push(text.trim().slice(0, 200)); })
        .catch(() => {});
    }, 100);
    try {
      await main.page.waitForFunction((want) => [...document.querySelectorAll('#runs tbody tr')].some((row) => row.outerHTML.includes(want)),
        options.newRun || '\u0000', { timeout: WAIT_MS, polling: 100 });
    } finally {
      clearInterval(poll);
    }
    await main.page.waitForLoadState('networkidle');
    return { button, posts, progress, running, rows_before: rows.length, first_before: rows[0] || null,
      rows_after: (await runsTable(main.page)).slice(0, 5), progress_after: await main.page.textContent('#run-progress').catch(() => null) };
  });
  await main.context.close();
}

// ---- the connection between the tests (issue 15) -------------------------------------------

// Contract-shaped answers of /api/v1/latency and /api/v1/outages for the window a request
// asks for: hourly buckets of a gateway and two public targets (198.51.100.7, the faster, with
// loss in some buckets and one bucket lost whole), and three outages overlapping the window.
function probeFixtures(fromIso, toIso) {
  const fromS = Date.parse(fromIso) / 1000;
  const toS = Date.parse(toIso) / 1000;
  const step = 3600;
  const time = [];
  for (let t = Math.ceil(fromS / step) * step; t < toS; t += step) time.push(t);
  const lossAt = (i) => (i === 30 ? 360 : i % 20 === 0 ? 36 : i % 20 === 10 ? 7 : 0);
  const target = (address, kind, base, lost) => {
    const rtt = (i, extra) => (lost(i) === 360 ? null : base + extra);
    return {
      address, kind, method: 'icmp-unprivileged',
      sent: time.map(() => 360), lost: time.map((_, i) => lost(i)),
      loss_ratio: time.map((_, i) => lost(i) / 360),
      rtt_min_ms: time.map((_, i) => rtt(i, i % 5)), rtt_median_ms: time.map((_, i) => rtt(i, 3 + (i % 7))),
      rtt_max_ms: time.map((_, i) => rtt(i, 20 + (i % 11))), under_load: time.map((_, i) => i % 48 === 5),
    };
  };
  const iso = (s) => new Date(s * 1000).toISOString();
  const latency = {
    from: fromIso, to: toIso, step_seconds: step, time,
    targets: [target('192.0.2.1', 'gateway', 1, () => 0), target('198.51.100.7', 'public', 9, lossAt), target('203.0.113.9', 'public', 30, () => 0)],
  };
  const outage = (start, end, kind) => ({
    start: iso(start), end: end === null ? null : iso(end), kind, ongoing: end === null,
    duration_seconds: (end === null ? toS : end) - start, down_seconds: (end === null ? toS : end) - start, unmonitored_seconds: 0, restarts: 0,
  });
  const outages = {
    from: fromIso, to: toIso, monitored_seconds: toS - fromS, unmonitored_seconds: 0, availability: 0.9967,
    outages: [outage(fromS - 600, fromS + 600, 'isp'), outage(toS - 2 * 86400, toS - 2 * 86400 + 1500, 'isp'), outage(toS - 1800, null, 'local')],
    unmonitored: [],
    probing: { interval_seconds: 10, method: 'icmp-unprivileged', method_reason: 'ping_group_range allows it',
      targets: latency.targets.map(({ address, kind, method }) => ({ address, kind, method })) },
  };
  const chosen = time.map((_, i) => lossAt(i) / 360);
  return { latency, outages, expected: {
    buckets: time.length, outages: outages.outages.length, best: '198.51.100.7',
    loss_buckets: chosen.filter((v) => v > 0).length, loss_bad: chosen.filter((v) => v >= 0.05).length,
  } };
}

// Answers /api/v1/latency and /api/v1/outages on `page` with `answer(url)`: {status, json}.
async function routeProbes(page, answer) {
  const served = [];
  await page.route(/\/api\/v1\/(latency|outages)\?/, (route) => {
    const url = new URL(route.request().url());
    const { status, json } = answer(url);
    served.push({ path: url.pathname, status });
    return route.fulfill({ status, contentType: 'application/json', body: JSON.stringify(json) });
  });
  return served;
}

async function connectivityState(page) {
  return page.evaluate(() => {
    const figure = document.querySelector('#connectivity-chart');
    const speed = document.querySelector('#speed-chart');
    const text = (element) => (element ? element.textContent.replace(/\s+/g, ' ').trim() : null);
    return {
      visible: Boolean(figure && figure.checkVisibility()), state: figure ? figure.dataset.state || null : null,
      canvas: Boolean(figure && figure.querySelector('canvas')), series_keys: figure ? (figure.dataset.series || '').split(',').filter(Boolean) : [],
      target: figure ? figure.dataset.target || null : null,
      loss_buckets: figure ? Number(figure.dataset.lossBuckets) : null, loss_bad: figure ? Number(figure.dataset.lossBad) : null,
      caption: text(figure && figure.querySelector('figcaption')), note: text(document.querySelector('#connectivity-note')),
      options: [...document.querySelectorAll('#connectivity-target option')].map((option) => option.value),
      select_disabled: document.querySelector('#connectivity-target').disabled,
      speed_outages: speed ? Number(speed.dataset.outages || 0) : null,
      outage_list: [...document.querySelectorAll('#connectivity-outages:not([hidden]) li')].map((item) => ({
        kind: item.dataset.kind || null, text: item.textContent, visible: item.checkVisibility(),
      })),
      outage_markers: [...document.querySelectorAll('#speed-chart .outage-marker')].map((marker) => ({
        tag: marker.tagName.toLowerCase(), kind: marker.dataset.kind, hidden: marker.hidden, label: marker.getAttribute('aria-label'),
        tabindex: marker.tabIndex, width: marker.getBoundingClientRect().width,
      })),
      background: figure ? getComputedStyle(figure).backgroundColor : null,
      drawn: document.body.dataset.drawn || null, banner: (() => { const e = document.getElementById('error'); return e.hidden ? null : e.textContent; })(),
    };
  });
}

async function connectivitySteps(browser, options, log, result) {
  // Probe data in the range (the answers a store with probes gives): the band, loss colours,
  // the outages on the speed chart, the keyboard between them, another target, 375 px, dark.
  await step(result, 'connectivity', async () => {
    const seen = {};
    const probe = await newPage(browser, log, 'connectivity');
    let expected = null;
    const served = await routeProbes(probe.page, (url) => {
      const fixtures = probeFixtures(url.searchParams.get('from'), url.searchParams.get('to'));
      expected = fixtures.expected;
      return { status: 200, json: url.pathname.endsWith('latency') ? fixtures.latency : fixtures.outages };
    });
    await probe.page.goto(`${options.url}/?range=7d`, { waitUntil: 'load' });
    await waitDrawn(probe.page, '7d');
    await probe.page.waitForLoadState('networkidle');
    seen.first = await connectivityState(probe.page);
    seen.expected = expected;
    await probe.page.locator('#speed-chart').screenshot({ path: path.join(options.out, 'connectivity-speed-1280.png') });
    await probe.page.locator('#connectivity-chart').screenshot({ path: path.join(options.out, 'connectivity-1280.png') });
    // Keyboard: the first outage marker, then the arrow key to the next; the tooltip says it.
    const markers = probe.page.locator('#speed-chart .outage-marker:not([hidden])');
    if (await markers.count() > 1) {
      await markers.first().focus();
      await probe.page.keyboard.press('ArrowRight');
      seen.keyboard = await probe.page.evaluate(() => {
        const active = document.activeElement;
        const all = [...document.querySelectorAll('#speed-chart .outage-marker:not([hidden])')];
        const tip = document.querySelector('#speed-chart .tooltip');
        return { index: all.indexOf(active), tip: tip && !tip.hidden ? tip.textContent : null };
      });
    }
    await probe.page.keyboard.press('Escape');
    await probe.page.selectOption('#connectivity-target', '203.0.113.9|public|icmp-unprivileged');
    seen.other_target = await connectivityState(probe.page);
    await probe.page.setViewportSize({ width: 375, height: 812 });
    await probe.page.waitForTimeout(300); // the charts follow their box after a 100 ms debounce
    seen.narrow = await overflow(probe.page);
    seen.narrow_state = await connectivityState(probe.page);
    seen.served = served;
    await probe.context.close();

    const dark = await newPage(browser, log, 'connectivity-dark', { colorScheme: 'dark' });
    await routeProbes(dark.page, (url) => {
      const fixtures = probeFixtures(url.searchParams.get('from'), url.searchParams.get('to'));
      return { status: 200, json: url.pathname.endsWith('latency') ? fixtures.latency : fixtures.outages };
    });
    await dark.page.goto(`${options.url}/?range=7d`, { waitUntil: 'load' });
    await waitDrawn(dark.page, '7d');
    await dark.page.waitForLoadState('networkidle');
    seen.dark = await connectivityState(dark.page);
    await dark.page.locator('#connectivity-chart').screenshot({ path: path.join(options.out, 'connectivity-dark-1280.png') });
    await dark.context.close();
    return seen;
  });

  // A server without the probe endpoints (404), and one with probing off and nothing stored:
  // the section stays hidden, nothing is marked, the rest of the page draws. Their own log:
  // the 404s are the point here.
  for (const [name, answer] of [
    ['connectivity_absent', () => ({ status: 404, json: { error: 'not found' } })],
    ['connectivity_off', (url) => ({ status: 200, json: url.pathname.endsWith('latency')
      ? { from: url.searchParams.get('from'), to: url.searchParams.get('to'), step_seconds: 3600, time: [], targets: [] }
      : { from: url.searchParams.get('from'), to: url.searchParams.get('to'), monitored_seconds: 0, unmonitored_seconds: 0,
        availability: null, outages: [], unmonitored: [], probing: null } })],
  ]) {
    await step(result, name, async () => {
      const own = {};
      const other = await newPage(browser, own, name);
      const served = await routeProbes(other.page, answer);
      await other.page.goto(`${options.url}/?range=7d`, { waitUntil: 'load' });
      await waitDrawn(other.page, '7d');
      await other.page.waitForLoadState('networkidle');
      const seen = { ...(await connectivityState(other.page)), chart: await speedChart(other.page), served,
        pageerrors: own[name].pageerrors };
      delete seen.chart.marker_list;
      await other.context.close();
      return seen;
    });
  }
}

async function runTest(browser, options) {
  const log = {};
  const result = { log };
  fs.mkdirSync(options.out, { recursive: true });

  // 1280 px, light: the chart, the markers, the heat map, keyboard, ranges, reload, run-now.
  const main = await newPage(browser, log, 'main-1280');
  const series = seriesWatcher(main.page);
  await step(result, 'load', async () => {
    await main.page.goto(`${options.url}/?range=30d`, { waitUntil: 'load' });
    await waitDrawn(main.page, '30d');
    await main.page.waitForLoadState('networkidle');
    return { ...(await pageState(main.page)), series_requests: [...series.requests], series_responses: [...series.bodies] };
  });
  const drew = !result.load.error;
  if (!drew) {
    // Nothing else can be judged on a page that never drew: say so at once.
    for (const name of ['chart', 'heatmap', 'marker_focus', 'tab_order', 'range_7d', 'range_1y', 'reload', 'run_now', 'narrow_375', 'dark_1280', 'server_gone', 'url_ranges', 'rules']) {
      result[name] = { error: 'skipped: the page never drew the 30d range' };
    }
    await step(result, 'screenshot_1280', () => screenshot(main.page, path.join(options.out, 'dashboard-1280.png')));
    await main.context.close();
  } else {
    await mainSteps(browser, options, log, result, main, series);
  }

  if (options.empty) {
    await step(result, 'empty', async () => {
      const empty = await newPage(browser, log, 'empty');
      await empty.page.goto(`${options.url === options.empty ? options.url : options.empty}/`, { waitUntil: 'load' });
      await empty.page.waitForFunction(() => document.body && ['empty', 'ready', 'error'].includes(document.body.dataset.state),
        null, { timeout: WAIT_MS, polling: 50 });
      await empty.page.waitForLoadState('networkidle');
      const seen = {
        ...(await pageState(empty.page)),
        empty_visible: await empty.page.isVisible('#empty'),
        empty_text: ((await empty.page.textContent('#empty').catch(() => null)) || '').replace(/\s+/g, ' ').trim(),
        chart: await speedChart(empty.page),
      };
      await empty.context.close();
      return seen;
    });
    // The same empty store with probe results (the connectivity monitor probes from the start,
    // the first speed test may be half an hour away): the connection section draws, the
    // outages listed in it, beside the empty-state message; then 375 px and dark.
    await step(result, 'empty_connectivity', async () => {
      const seen = {};
      for (const [label, contextOptions] of [['light', {}], ['dark', { colorScheme: 'dark' }]]) {
        const probe = await newPage(browser, log, `empty-connectivity-${label}`, contextOptions);
        let expected = null;
        const served = await routeProbes(probe.page, (url) => {
          const fixtures = probeFixtures(url.searchParams.get('from'), url.searchParams.get('to'));
          expected = fixtures.expected;
          return { status: 200, json: url.pathname.endsWith('latency') ? fixtures.latency : fixtures.outages };
        });
        await probe.page.goto(`${options.empty}/`, { waitUntil: 'load' });
        await waitDrawn(probe.page, null);
        await probe.page.waitForLoadState('networkidle');
        const state = {
          ...(await pageState(probe.page)), ...(await connectivityState(probe.page)),
          body_state: await probe.page.evaluate(() => document.body.dataset.state || null),
          empty_visible: await probe.page.isVisible('#empty'),
          speed_visible: await probe.page.isVisible('#speed-chart'),
          served, expected,
        };
        if (label === 'light') {
          // A hidden section has no picture: the checks then say what is missing.
          if (state.visible) await probe.page.locator('#connectivity-chart').screenshot({ path: path.join(options.out, 'connectivity-empty-1280.png') });
          await probe.page.setViewportSize({ width: 375, height: 812 });
          await probe.page.waitForTimeout(300); // the charts follow their box after a 100 ms debounce
          state.narrow = await overflow(probe.page);
          state.narrow_canvas_width = await probe.page.evaluate(() => {
            const canvas = document.querySelector('#connectivity-chart canvas');
            return canvas ? canvas.getBoundingClientRect().width : null;
          });
        }
        seen[label] = state;
        await probe.context.close();
      }
      return seen;
    });
  }

  if (drew) {
    // A browser zone the server's database does not know (Chromium says Asia/Calcutta): the
    // server is made to refuse every zone but UTC, and the page must still draw everything,
    // the heat map in UTC. Its own log: the refusals are the point here, not problems.
    await step(result, 'unknown_zone', async () => {
      const other = await newPage(browser, {}, 'unknown_zone', { timezoneId: 'Asia/Kolkata' });
      const zones = [];
      await other.page.route('**/api/v1/heatmap?*', (route) => {
        const zone = new URL(route.request().url()).searchParams.get('tz');
        zones.push(zone);
        if (zone === 'UTC') return route.continue();
        return route.fulfill({ status: 400, contentType: 'application/json',
          body: JSON.stringify({ error: `invalid tz: "${zone}" is not an IANA time zone such as Europe/Berlin or UTC` }) });
      });
      await other.page.goto(`${options.url}/?range=7d`, { waitUntil: 'load' });
      await other.page.waitForFunction(() => document.body && (document.body.dataset.drawn === '7d' || !document.getElementById('error').hidden),
        null, { timeout: WAIT_MS, polling: 50 });
      const seen = {
        drawn: await other.page.evaluate(() => document.body.dataset.drawn || null),
        banner: await other.page.evaluate(() => { const e = document.getElementById('error'); return e.hidden ? null : e.textContent; }),
        heatmap: await heatmap(other.page),
        note: await other.page.textContent('#heatmap-note').catch(() => null),
        chart: await speedChart(other.page),
        zones,
      };
      await other.context.close();
      return seen;
    });
  }

  if (drew) {
    // The summary, the heat map and the runs answered 503 (a long summary holding the store's
    // readers, as any page on the network can ask for): the charts must still draw, each of
    // the three saying in its own section that it did not load.
    await step(result, 'busy_parts', async () => {
      const other = await newPage(browser, {}, 'busy_parts');
      const refused = [];
      await other.page.route(/\/api\/v1\/(summary|heatmap|samples)\?/, (route) => {
        refused.push(new URL(route.request().url()).pathname);
        return route.fulfill({ status: 503, contentType: 'application/json',
          body: JSON.stringify({ error: 'the store-reader threads are busy; try again shortly' }) });
      });
      await other.page.goto(`${options.url}/?range=7d`, { waitUntil: 'load' });
      await other.page.waitForFunction(() => document.body && (document.body.dataset.drawn === '7d' || !document.getElementById('error').hidden),
        null, { timeout: WAIT_MS, polling: 50 });
      const text = (selector) => other.page.textContent(selector).catch(() => null);
      const seen = {
        drawn: await other.page.evaluate(() => document.body.dataset.drawn || null),
        banner: await other.page.evaluate(() => { const e = document.getElementById('error'); return e.hidden ? null : e.textContent; }),
        chart: await speedChart(other.page),
        compliance: await text('#compliance'),
        heatmap_note: await text('#heatmap-note'),
        runs: await text('#runs tbody'),
        refused: [...new Set(refused)].sort(),
      };
      delete seen.chart.marker_list;
      await other.context.close();
      return seen;
    });
  }

  if (drew) await connectivitySteps(browser, options, log, result);

  if (options.xss) {
    await step(result, 'xss', async () => {
      const hostile = await newPage(browser, log, 'xss');
      await hostile.page.goto(`${options.xss}/?range=7d`, { waitUntil: 'load' });
      await waitDrawn(hostile.page, '7d');
      await hostile.page.waitForLoadState('networkidle');
      const marker = await focusMarker(hostile.page, 0);
      await hostile.page.waitForTimeout(200); // a handler injected by a broken page would have run by now
      const seen = await hostile.page.evaluate(() => {
        const text = (selector) => { const element = document.querySelector(selector); return element ? element.textContent : null; };
        return {
          xss: window.__xss === undefined ? null : window.__xss,
          injected_img: document.querySelectorAll('img[src="x"]').length,
          injected_script: [...document.querySelectorAll('script')].filter((script) => script.textContent.includes('__xss')).length,
          now_server: text('#now-server'), now: text('#now'), now_failure: text('#now-failure'), runs: text('#runs'),
          speed_caption: text('#speed-chart figcaption'), compliance: text('#compliance'),
          csp_violations: window.__cspViolations || [],
        };
      });
      await hostile.context.close();
      return { ...seen, marker };
    });
  }
  return result;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

async function runBench(browser, options) {
  if (options.paths.length === 0) usage('bench needs at least one --path');
  const log = {};
  const paths = {};
  for (const target of options.paths) {
    const loads = [];
    for (let i = 0; i < options.warmup + options.loads; i++) {
      const { context, page } = await newPage(browser, log, `bench ${target} ${i}`);
      let load;
      try {
        await page.goto(`${options.url}${target}`, { waitUntil: 'load' });
        await waitDrawn(page, null);
        await page.waitForLoadState('networkidle');
        load = await page.evaluate(() => {
          const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
          const sum = (key) => entries.reduce((total, entry) => total + (entry[key] || 0), 0);
          const [drawn, at] = Object.entries(window.__drawnAt)[0] || [null, null];
          return {
            drawn, drawn_ms: at === null ? null : Math.round(at * 10) / 10, requests: entries.length,
            transfer_bytes: sum('transferSize'), encoded_bytes: sum('encodedBodySize'), decoded_bytes: sum('decodedBodySize'),
            by_path: entries.map((entry) => ({ path: new URL(entry.name).pathname, encoded: entry.encodedBodySize, decoded: entry.decodedBodySize, ms: Math.round(entry.duration) })),
          };
        });
      } catch (error) {
        load = { error: String(error && error.message || error).slice(0, 500) };
      }
      await context.close();
      if (i >= options.warmup) loads.push(load);
    }
    const times = loads.map((load) => load.drawn_ms).filter((ms) => typeof ms === 'number');
    paths[target] = { loads, drawn_ms: times, median_ms: median(times), encoded_bytes: median(loads.map((load) => load.encoded_bytes || 0)) };
  }
  const problems = Object.entries(log).flatMap(([label, seen]) =>
    [...seen.console.filter((entry) => entry.type === 'error'), ...seen.pageerrors, ...seen.failed, ...seen.statuses].map((entry) => ({ label, entry })));
  return { paths, problems };
}

const options = parseArgs(process.argv.slice(2));
let browser;
try {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
} catch (error) {
  process.stderr.write(`cannot start ${CHROMIUM}: ${error.message}\ninstall Debian's chromium (apt-get install chromium); .ci/run does\n`);
  process.exit(1);
}
try {
  const result = options.mode === 'test' ? await runTest(browser, options) : await runBench(browser, options);
  process.stdout.write(`${JSON.stringify({ browser: browser.version(), ...result }, null, 1)}\n`);
} finally {
  await browser.close();
}
