// internet-monitor's page: reads the JSON API and draws it. No build step, no framework.
// Every string that came from the network is set as text (textContent, createTextNode,
// attributes), never parsed as HTML.
'use strict';

(() => {
  const PRESETS = { '24h': 86400, '7d': 7 * 86400, '30d': 30 * 86400, '1y': 365 * 86400 };
  const DEFAULT_RANGE = '7d';
  /** The heat map needs at least this much history (seconds) to say anything per hour. */
  const HEATMAP_MIN_SECONDS = 7 * 86400;
  const RUNS_PAGE = 50;
  const RUN_POLL_MS = 2000;
  const RUN_POLL_LIMIT_MS = 15 * 60 * 1000;
  const REFRESH_MS = 60 * 1000;
  const FETCH_TIMEOUT_MS = 30 * 1000;
  /** The rule sets `/api/v1/summary?rules=` knows, by name, as the page calls them. */
  const RULE_SETS = ['de-bnetza', 'at-rtr', 'us-fcc', 'uk-ofcom'];
  /** The longest range a rule set judges (the server's MAX_RULES_WINDOW): 366 days. */
  const MAX_RULES_SECONDS = 366 * 86400;
  const OUTCOMES = {
    met: 'Met',
    not_met: 'Not met',
    not_assessable: 'Not assessable',
    no_verdict: 'No verdict: this rule set reports figures, not a pass or fail',
  };
  const STATUSES = { met: 'met', not_met: 'not met', not_assessable: 'not assessable', informational: 'for information' };
  /** Shown when a verdict comes without its own label: a verdict here is never the legal one. */
  const FALLBACK_LABEL = "Indicative only: a complaint needs the regulator's own measurement procedure.";

  const $ = (selector, root = document) => root.querySelector(selector);
  const body = document.body;

  const state = {
    status: null,
    range: null, // {key, preset} or {key, from, to}
    rules: '', // a name of RULE_SETS, or '' for none
    rulesIgnored: null, // what the address asked for as rules= that is not a rule set
    summaryLoad: 0,
    resolved: null, // {from, to: ISO strings; fromS, toS: Unix seconds}
    load: 0,
    data: null, // {series, summary, heatmap}
    charts: {},
    runs: { cursors: [null], index: 0, load: 0 },
    runningNow: false,
    unreachableSince: null, // when the status poll first failed in a row, or null
    probeTarget: null, // the connectivity chart's target (address|kind|method), or null for the best
  };

  // ---- network -------------------------------------------------------------------------

  /** GET (or other) `url`, its JSON; throws an Error carrying the server's `error` text. */
  async function fetchJson(url, options = {}) {
    const signal = AbortSignal.timeout(FETCH_TIMEOUT_MS);
    let response;
    try {
      response = await fetch(url, { signal, ...options });
    } catch (err) {
      throw new Error(`the server did not answer (${err && err.message ? err.message : err})`);
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (!response.ok) {
      const text = payload && typeof payload.error === 'string' ? payload.error : response.statusText;
      const error = new Error(`${response.status}: ${text}`);
      error.status = response.status;
      error.detail = text;
      throw error;
    }
    if (payload === null) {
      // A POST may be answered without a body; a GET must bring its JSON.
      if (options.method === 'POST') return {};
      throw new Error(`${url}: not JSON`);
    }
    return payload;
  }

  function query(params) {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      if (value !== null && value !== undefined) search.set(name, String(value));
    }
    return search.toString();
  }

  // ---- formatting ----------------------------------------------------------------------

  const numberFormats = new Map();
  function number(value, digits) {
    if (!numberFormats.has(digits)) {
      numberFormats.set(digits, new Intl.NumberFormat(undefined, {
        minimumFractionDigits: digits, maximumFractionDigits: digits,
      }));
    }
    return numberFormats.get(digits).format(value);
  }
  /** Three significant figures or so: 0.87, 9.53, 95.3, 953. */
  function sensible(value) {
    const size = Math.abs(value);
    return number(value, size >= 100 ? 0 : size >= 10 ? 1 : 2);
  }
  const toMbit = (bytesPerSecond) => (bytesPerSecond * 8) / 1e6;
  const toMs = (seconds) => seconds * 1000;
  function mbit(bytesPerSecond) {
    return isNum(bytesPerSecond) ? `${sensible(toMbit(bytesPerSecond))} Mbit/s` : '—';
  }
  function ms(seconds) {
    return isNum(seconds) ? `${sensible(toMs(seconds))} ms` : '—';
  }
  const percentFormat = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });
  function percent(ratio) {
    return isNum(ratio) ? percentFormat.format(ratio) : '—';
  }
  /** The contracted speeds, only the directions that have one: `100 Mbit/s down, 20.0 Mbit/s up`. */
  function planText(plan) {
    const parts = [];
    if (isNum(plan.download_bytes_per_second)) parts.push(`${mbit(plan.download_bytes_per_second)} down`);
    if (isNum(plan.upload_bytes_per_second)) parts.push(`${mbit(plan.upload_bytes_per_second)} up`);
    return parts.join(', ');
  }
  /** `1 run`, `2 runs`: a count with its noun in the right number. */
  function plural(count, one, many) {
    return `${count} ${count === 1 ? one : many}`;
  }

  function isNum(value) {
    return typeof value === 'number' && Number.isFinite(value);
  }
  const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  const dateTimeSecondsFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  function dateTime(date, seconds = false) {
    return (seconds ? dateTimeSecondsFormat : dateTimeFormat).format(date);
  }
  const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  function relative(date, now) {
    const seconds = (date.getTime() - now.getTime()) / 1000;
    const size = Math.abs(seconds);
    if (size < 45) return relativeFormat.format(Math.round(seconds), 'second');
    if (size < 45 * 60) return relativeFormat.format(Math.round(seconds / 60), 'minute');
    if (size < 36 * 3600) return relativeFormat.format(Math.round(seconds / 3600), 'hour');
    return relativeFormat.format(Math.round(seconds / 86400), 'day');
  }
  function duration(seconds) {
    if (!isNum(seconds)) return '—';
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return `${minutes} min`;
    const hours = Math.floor(minutes / 60);
    const both = (big, bigUnit, small, smallUnit) => (small ? `${big} ${bigUnit} ${small} ${smallUnit}` : `${big} ${bigUnit}`);
    if (hours < 48) return both(hours, 'h', minutes % 60, 'min');
    return both(Math.floor(hours / 24), 'd', hours % 24, 'h');
  }
  function parseTime(text) {
    if (typeof text !== 'string') return null;
    const ms = Date.parse(text);
    return Number.isFinite(ms) ? new Date(ms) : null;
  }
  function serverNow() {
    return parseTime(state.status && state.status.now) || new Date();
  }

  /** `promise`'s value, or `{ failed: Error }` when it rejects. */
  function optional(promise) {
    return promise.catch((err) => ({ failed: err }));
  }

  /**
   * The heat map for `params`; when the server's time zone database lacks the browser's zone
   * (an older or trimmed tzdata, a legacy name such as Asia/Calcutta), in UTC instead: the
   * answer names its zone, which the caption shows, and the rest of the page still loads.
   */
  async function fetchHeatmap(params) {
    try {
      return await fetchJson(`/api/v1/heatmap?${query(params)}`);
    } catch (err) {
      if (err.status !== 400 || params.tz === 'UTC' || !String(err.detail).startsWith('invalid tz')) throw err;
      return fetchJson(`/api/v1/heatmap?${query({ ...params, tz: 'UTC' })}`);
    }
  }

  /**
   * The summary of `resolved`, with the verdict of the chosen rule set when the range is one a
   * rule set judges, counted in the browser's zone; when the server does not know that zone,
   * in serve's --timezone (the verdict names the zone it used).
   */
  async function fetchSummary(resolved) {
    const params = { from: resolved.from, to: resolved.to };
    const rules = state.rules;
    if (!rules || resolved.toS - resolved.fromS > MAX_RULES_SECONDS) {
      return fetchJson(`/api/v1/summary?${query(params)}`);
    }
    let summary;
    try {
      summary = await fetchJson(`/api/v1/summary?${query({ ...params, rules, tz: browserZone() })}`);
    } catch (err) {
      if (err.status !== 400 || !String(err.detail).startsWith('invalid tz')) throw err;
      summary = await fetchJson(`/api/v1/summary?${query({ ...params, rules })}`);
    }
    return summary;
  }

  // ---- DOM helpers (text only) -----------------------------------------------------------

  /** A new element with text content and attributes; never parses HTML. */
  function el(tag, options = {}, children = []) {
    const node = document.createElement(tag);
    if (options.class) node.className = options.class;
    if (options.text !== undefined && options.text !== null) node.textContent = String(options.text);
    for (const [name, value] of Object.entries(options.attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) {
        node.append(typeof child === 'string' ? document.createTextNode(child) : child);
      }
    }
    return node;
  }
  function setText(id, text) {
    const node = document.getElementById(id);
    node.textContent = text;
    return node;
  }
  function setContent(id, ...children) {
    const node = document.getElementById(id);
    node.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }
  /** `<time>` with the absolute time in the browser's zone, and how long ago or ahead. */
  function timeNode(iso, withRelative = true) {
    const date = parseTime(iso);
    if (!date) return document.createTextNode('—');
    const text = withRelative ? `${dateTime(date)} (${relative(date, serverNow())})` : dateTime(date);
    return el('time', { text, attrs: { datetime: iso } });
  }
  /** A link for an http(s) URL from the network; anything else stays text. */
  function safeLink(url, text) {
    try {
      const parsed = new URL(url);
      if (parsed.protocol === 'http:' || parsed.protocol === 'https:') {
        return el('a', { text, attrs: { href: parsed.href, rel: 'noopener noreferrer', target: '_blank' } });
      }
    } catch {
      // not a URL: shown as text below
    }
    return document.createTextNode(String(url));
  }

  // ---- the range -----------------------------------------------------------------------

  function rangeFromUrl() {
    const params = new URLSearchParams(location.search);
    const preset = params.get('range');
    if (preset && Object.hasOwn(PRESETS, preset)) return { key: preset, preset };
    const from = params.get('from');
    const to = params.get('to');
    const fromDate = parseTime(from);
    const toDate = parseTime(to);
    if (fromDate && toDate && fromDate < toDate) return { key: `${from}…${to}`, from, to };
    // `?from=` alone: from then until now.
    if (fromDate && to === null && fromDate < serverNow()) return { key: `${from}…`, from, to: null };
    // Anything else the address asks for is not dropped silently: the range line says so.
    const asked = [...params].filter(([name]) => ['range', 'from', 'to'].includes(name));
    const ignored = asked.length ? asked.map(([name, value]) => `${name}=${value.slice(0, 40)}`).join('&') : null;
    return { key: DEFAULT_RANGE, preset: DEFAULT_RANGE, ignored };
  }
  /** The address of the page showing `range` judged by `rules` ('' for none). */
  function pageUrl(range, rules) {
    const params = range.preset ? { range: range.preset } : { from: range.from, to: range.to };
    const search = query({ ...params, rules: rules || null });
    return `${location.pathname}?${search}`;
  }
  /** The rule set the address asks for: `{ rules, ignored }`, ignored naming one not known. */
  function rulesFromUrl() {
    const asked = new URLSearchParams(location.search).get('rules');
    if (asked === null || asked === '') return { rules: '', ignored: null };
    if (RULE_SETS.includes(asked)) return { rules: asked, ignored: null };
    return { rules: '', ignored: asked.slice(0, 40) };
  }
  function browserZone() {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  }
  function resolveRange(range) {
    let from;
    let to;
    if (range.preset) {
      to = serverNow();
      from = new Date(to.getTime() - PRESETS[range.preset] * 1000);
    } else {
      from = parseTime(range.from);
      to = range.to ? parseTime(range.to) : serverNow();
    }
    return {
      from: from.toISOString(),
      to: to.toISOString(),
      fromS: from.getTime() / 1000,
      toS: to.getTime() / 1000,
    };
  }
  function localInputValue(date) {
    const pad = (n) => String(n).padStart(2, '0');
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
  }
  function showRange(range, resolved) {
    for (const button of document.querySelectorAll('[data-range]')) {
      button.setAttribute('aria-pressed', String(button.dataset.range === range.preset));
    }
    $('#range-from').value = localInputValue(new Date(resolved.fromS * 1000));
    $('#range-to').value = localInputValue(new Date(resolved.toS * 1000));
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    let label = `${dateTime(new Date(resolved.fromS * 1000))} – ${dateTime(new Date(resolved.toS * 1000))} (${zone})`;
    if (range.ignored) {
      label += `. The address's ${range.ignored} is not a range this page knows (24h, 7d, 30d, 1y, or from before to, `
        + 'as RFC 3339 times), so it shows the last 7 days.';
    }
    setText('range-label', label);
  }
  function chooseRange(range) {
    history.pushState(null, '', pageUrl(range, state.rules));
    state.range = range;
    refresh();
  }

  // ---- loading -------------------------------------------------------------------------

  async function refresh() {
    const load = ++state.load;
    delete body.dataset.drawn;
    const range = state.range;
    let status;
    try {
      status = await fetchJson('/api/v1/status');
    } catch (err) {
      if (load === state.load) fail(`Cannot read the monitor's status: ${err.message}`);
      return;
    }
    if (load !== state.load) return;
    state.status = status;
    state.unreachableSince = null;
    $('#error').hidden = true;
    renderNow(status);
    renderRunNow(status);
    setText('version', `internet-monitor ${status.version || ''} · ${plural(status.samples, 'run', 'runs')} stored.`);
    const resolved = resolveRange(range);
    if (!status.samples) {
      // No run yet, but the connectivity monitor probes from the start: its section draws.
      showEmpty(status);
      body.dataset.state = 'empty';
      state.resolved = resolved;
      const [outages, latency] = await probeAnswers(resolved);
      if (load !== state.load) return;
      state.data = { series: null, outages, latency };
      drawCharts();
      body.dataset.drawn = range.key;
      return;
    }
    $('#empty').hidden = true;
    state.resolved = resolved;
    showRange(range, resolved);
    const heatFromS = Math.min(resolved.fromS, resolved.toS - HEATMAP_MIN_SECONDS);
    const heatFrom = new Date(heatFromS * 1000).toISOString();
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    const width = $('#speed-chart .chart-mount').clientWidth || 600;
    const points = Math.max(60, Math.min(600, Math.round(width)));
    state.runs = { cursors: [null], index: 0, load: state.runs.load + 1 };
    const summaryLoad = ++state.summaryLoad;
    try {
      // Only the series is needed to draw the range; a busy or failed summary, heat map or
      // runs page (a 503 while a long summary holds the store) is said in its own section.
      const [series, summary, heatmap, runs, [outages, latency]] = await Promise.all([
        fetchJson(`/api/v1/series?${query({ from: resolved.from, to: resolved.to, points })}`),
        optional(fetchSummary(resolved)),
        optional(fetchHeatmap({ from: heatFrom, to: resolved.to, tz: zone, metric: $('#heatmap-metric').value })),
        optional(fetchJson(`/api/v1/samples?${query({ from: resolved.from, to: resolved.to, limit: RUNS_PAGE })}`)),
        probeAnswers(resolved),
      ]);
      if (load !== state.load) return;
      state.data = { series, summary, heatmap, outages, latency, widened: heatFromS < resolved.fromS };
      $('#error').hidden = true;
      body.dataset.state = 'ready';
      drawCharts();
      renderHeatmap(heatmap, state.data.widened);
      // A rule set chosen meanwhile loads its own summary, which is shown instead.
      if (summaryLoad === state.summaryLoad) {
        $('#compliance').removeAttribute('aria-busy');
        renderCompliance(summary);
      }
      renderRuns(runs);
      setText('loading-note', '');
      body.dataset.drawn = range.key;
    } catch (err) {
      if (load === state.load) fail(`Cannot load the range: ${err.message}`);
    }
  }

  /** The connection between the tests: `[outages, latency]`, each an answer or `{ failed }`
   * (a server without them answers 404, which hides the section). */
  function probeAnswers(resolved) {
    const probes = query({ from: resolved.from, to: resolved.to });
    return Promise.all([
      optional(fetchJson(`/api/v1/outages?${probes}`)),
      optional(fetchJson(`/api/v1/latency?${probes}`)),
    ]);
  }

  function fail(message) {
    body.dataset.state = 'error';
    const banner = $('#error');
    banner.textContent = message;
    banner.hidden = false;
    setText('loading-note', '');
  }

  function showEmpty(status) {
    $('#empty').hidden = false;
    setText('loading-note', '');
    const next = parseTime(status.next_run);
    if (next) {
      setContent('empty-next', timeNode(status.next_run));
    } else {
      setText('empty-next', 'when a test is started (no scheduled test is due)');
    }
  }

  // ---- Now -----------------------------------------------------------------------------

  function renderNow(status) {
    const sample = status.latest_success;
    const plan = status.plan;
    const share = (value, planned) => (isNum(value) && plan && isNum(planned) && planned > 0
      ? el('span', { class: 'share', text: ` ${percent(value / planned)} of plan` })
      : null);
    if (sample) {
      setContent('now-download', mbit(sample.download_bytes_per_second),
        share(sample.download_bytes_per_second, plan && plan.download_bytes_per_second));
      setContent('now-upload', mbit(sample.upload_bytes_per_second),
        share(sample.upload_bytes_per_second, plan && plan.upload_bytes_per_second));
      setText('now-ping', ms(sample.ping_seconds));
      setContent('now-when', timeNode(sample.time));
      setText('now-server', serverText(sample));
      setText('now-engine', engineText(sample.engine, status.engine));
      setContent('now-result', sample.result_url ? safeLink(sample.result_url, 'Open the result') : 'None (this engine gives no link)');
    } else {
      for (const id of ['now-download', 'now-upload', 'now-ping', 'now-when', 'now-server', 'now-result']) setText(id, '—');
      setText('now-engine', status.engine ? `${status.engine} (no successful run yet)` : '—');
    }
    if (status.running) {
      setContent('now-running', 'Yes, since ', timeNode(status.running_since));
    } else {
      setText('now-running', 'No');
    }
    setContent('now-next', status.next_run ? timeNode(status.next_run) : 'Not scheduled');
    const failure = status.latest_failure;
    if (failure) {
      setContent('now-failure', timeNode(failure.time), ': ',
        el('strong', { text: failure.reason || 'unknown reason' }),
        failure.message ? ` — ${failure.message}` : '');
    } else {
      setText('now-failure', 'None stored');
    }
  }
  function serverText(sample) {
    const server = sample.server || {};
    const place = [server.location, server.country].filter(Boolean).join(', ');
    let text = server.name || server.host || '—';
    if (place) text += ` (${place})`;
    if (sample.isp) text += ` · ISP ${sample.isp}`;
    return text;
  }
  function engineText(engine, current) {
    if (!engine || !engine.name) return current ? `unrecorded (serve runs ${current})` : '—';
    let text = engine.name;
    const details = [];
    if (engine.protocol) details.push(engine.protocol);
    if (isNum(engine.streams)) details.push(`${engine.streams} streams`);
    if (details.length) text += ` (${details.join(', ')})`;
    if (current && current !== engine.name) text += `; serve now runs ${current}`;
    return text;
  }

  // ---- charts ----------------------------------------------------------------------------

  function cssColor(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || 'currentColor';
  }

  /** Time axis from the range's start to its end, whatever the data covers. */
  function padToRange(time, fromS, toS) {
    const x = time.slice();
    let before = 0;
    let after = 0;
    if (!x.length || x[0] > fromS) { x.unshift(fromS); before = 1; }
    if (x[x.length - 1] < toS) { x.push(toS); after = 1; }
    const pad = (values, filler = null) => [
      ...(before ? [filler] : []), ...values, ...(after ? [filler] : []),
    ];
    return { x, pad };
  }

  function chartSize(mount) {
    const width = Math.max(280, mount.clientWidth || 600);
    return { width, height: width < 560 ? 220 : 300 };
  }

  function axes(unit) {
    const stroke = cssColor('--fg');
    const grid = { stroke: cssColor('--grid'), width: 1 };
    return [
      { stroke, grid, ticks: grid },
      { stroke, grid, ticks: grid, label: unit, size: 56, values: (u, splits) => tickLabels(splits) },
    ];
  }

  /** Axis labels with as many decimals as the step between them needs: 0, 20, 40 or 0.5, 1.0. */
  function tickLabels(splits) {
    const step = splits.length > 1 ? Math.abs(splits[1] - splits[0]) : 1;
    const digits = step >= 1 || step === 0 ? 0 : Math.min(3, Math.ceil(-Math.log10(step)));
    return splits.map((v) => number(v, digits));
  }

  /** A series drawn as a line; `key` (stable, not translated) lands in `data-series`. */
  function line(key, label, color, unit, extra = {}) {
    return {
      key,
      label,
      stroke: color,
      width: 2,
      spanGaps: false,
      value: (u, v) => (v === null || v === undefined ? '—' : `${sensible(v)} ${unit}`),
      ...extra,
    };
  }

  function makeChart(key, figure, options, data, hiddenLegendRows = []) {
    const old = state.charts[key];
    if (old) old.destroy();
    const mount = $('.chart-mount', figure);
    mount.replaceChildren();
    const chart = new uPlot({ ...chartSize(mount), ...options }, data, mount);
    const rows = chart.root.querySelectorAll('.u-legend .u-series');
    for (const index of hiddenLegendRows) if (rows[index]) rows[index].hidden = true;
    state.charts[key] = chart;
    // What the chart draws, for tests and tools: the keys of its visible series.
    figure.dataset.series = options.series.slice(1).filter((s) => s.key).map((s) => s.key).join(',');
    return chart;
  }

  function drawCharts() {
    if (!state.data || typeof uPlot !== 'function') return;
    const { series, summary } = state.data;
    // No series before the first run: only the connection section has something to draw.
    if (series) {
      drawSpeed(series, summary);
      drawLatency(series, summary);
    }
    drawConnectivity();
  }

  /**
   * The plan versions of a series as steps `{fromS, toS, download_bytes_per_second,
   * upload_bytes_per_second, threshold}` (Unix seconds, `toS` Infinity while in force at the
   * range's end); from `plans`, or one step of `plan` for the whole range from an older server.
   */
  function planSteps(series, plan) {
    if (Array.isArray(series.plans)) {
      return series.plans.map((step) => ({
        ...step,
        fromS: Date.parse(step.from) / 1000,
        toS: step.to ? Date.parse(step.to) / 1000 : Infinity,
      })).filter((step) => Number.isFinite(step.fromS) && !Number.isNaN(step.toS));
    }
    return plan ? [{ ...plan, fromS: -Infinity, toS: Infinity }] : [];
  }

  function drawSpeed(series, summary) {
    const figure = $('#speed-chart');
    const { fromS, toS } = state.resolved;
    const { x, pad } = padToRange(series.time || [], fromS, toS);
    const toMbits = (values) => pad((values || []).map((v) => (isNum(v) ? toMbit(v) : null)));
    const dl = series.download_bytes_per_second || {};
    const ul = series.upload_bytes_per_second || {};
    const data = [x, toMbits(dl.median), toMbits(ul.median), toMbits(dl.min), toMbits(dl.max), toMbits(ul.min), toMbits(ul.max)];
    const band = { stroke: 'transparent', width: 0, points: { show: false } };
    const seriesOptions = [
      {},
      line('download', 'Download', cssColor('--c-download'), 'Mbit/s'),
      line('upload', 'Upload', cssColor('--c-upload'), 'Mbit/s'),
      line(null, 'Download min', 'transparent', 'Mbit/s', band),
      line(null, 'Download max', 'transparent', 'Mbit/s', band),
      line(null, 'Upload min', 'transparent', 'Mbit/s', band),
      line(null, 'Upload max', 'transparent', 'Mbit/s', band),
    ];
    const plan = series.plan || (state.status && state.status.plan);
    const steps = planSteps(series, plan);
    // The plan version in force at a time (Unix seconds); null before the first or between.
    const stepAt = (t) => steps.find((step) => step.fromS <= t && t < step.toS) || null;
    const stepped = uPlot.paths && uPlot.paths.stepped ? { paths: uPlot.paths.stepped({ align: 1 }) } : {};
    const planLevels = { download: [], upload: [] };
    for (const direction of ['download', 'upload']) {
      const key = `${direction}_bytes_per_second`;
      if (!steps.some((step) => isNum(step[key]))) continue;
      const name = direction === 'download' ? 'Download' : 'Upload';
      const dash = direction === 'download' ? [8, 4] : [3, 3];
      const planned = x.map((t) => { const step = stepAt(t); return step && isNum(step[key]) ? toMbit(step[key]) : null; });
      data.push(planned);
      // The levels the plan line takes, for tests and tools (Mbit/s, oldest first).
      planLevels[direction] = [...new Set(planned.filter((v) => v !== null))];
      seriesOptions.push(line(`${direction}_plan`, `${name} plan`, cssColor('--c-plan'), 'Mbit/s', { width: 1.5, dash, points: { show: false }, ...stepped }));
      const thresholds = [...new Set(steps.filter((step) => isNum(step[key]) && isNum(step.threshold)).map((step) => step.threshold))];
      if (thresholds.length) {
        data.push(x.map((t, i) => { const step = stepAt(t); return planned[i] !== null && step && isNum(step.threshold) ? planned[i] * step.threshold : null; }));
        const label = thresholds.length === 1 ? `${name} threshold (${percent(thresholds[0])})` : `${name} threshold`;
        seriesOptions.push(line(`${direction}_threshold`, label, cssColor('--c-threshold'), 'Mbit/s', { width: 1, dash, points: { show: false }, ...stepped }));
      }
    }
    const options = {
      series: seriesOptions,
      bands: [
        { series: [4, 3], fill: cssColor('--c-download-band') },
        { series: [6, 5], fill: cssColor('--c-upload-band') },
      ],
      scales: {
        x: { time: true, range: () => [fromS, toS] },
        y: { range: (u, min, max) => [0, isNum(max) && max > 0 ? max * 1.08 : 1] },
      },
      axes: axes('Mbit/s'),
      cursor: { focus: { prox: 16 } },
      hooks: { drawClear: [(u) => paintOutages(u)], draw: [(u) => { placeMarkers(u); placeOutageMarkers(u); }] },
    };
    const chart = makeChart('speed', figure, options, data, [3, 4, 5, 6]);
    figure.dataset.downloadPlan = planLevels.download.join(',');
    figure.dataset.uploadPlan = planLevels.upload.join(',');
    buildMarkers(figure, series.failures || [], series.failures_grouped);
    placeMarkers(chart);
    const outages = outageList().filter((outage) => outageSpan(outage, fromS, toS));
    buildOutageMarkers(figure, outages);
    placeOutageMarkers(chart);

    const runs = series.runs || {};
    const parts = [];
    const dlP = summary.download_bytes_per_second;
    const ulP = summary.upload_bytes_per_second;
    if (summary.failed) {
      parts.push(`${plural(runs.success ?? 0, 'successful run', 'successful runs')} in the range (the medians did not load: ${summary.failed.message}).`);
    } else if (dlP && ulP) {
      parts.push(`Median download ${mbit(dlP.p50)}, upload ${mbit(ulP.p50)} over ${plural(runs.success ?? 0, 'successful run', 'successful runs')} in the range.`);
    } else {
      parts.push('No successful runs in this range.');
    }
    const failures = runs.failure ?? (series.failures || []).reduce((sum, f) => sum + (f.count || 0), 0);
    parts.push(`${failures} failed ${failures === 1 ? 'run' : 'runs'}${failures ? ', marked below the chart' : ''}.`);
    if (runs.skipped) parts.push(`${runs.skipped} skipped (data budget).`);
    const judged = steps.filter((step) => isNum(step.download_bytes_per_second) || isNum(step.upload_bytes_per_second));
    if (judged.length > 1) {
      const changes = judged.slice(1).map((step) => `from ${dateTime(new Date(step.fromS * 1000))} ${planText(step)}, threshold ${percent(step.threshold)}`);
      parts.push(`The plan changed in this range: ${planText(judged[0])}, threshold ${percent(judged[0].threshold)}; ${changes.join('; ')}.`);
    } else if (judged.length === 1) {
      parts.push(`Plan: ${planText(judged[0])}; threshold ${percent(judged[0].threshold)}.`);
    }
    if (series.plans_omitted > 0) parts.push(`${plural(series.plans_omitted, 'older plan version', 'older plan versions')} in this range not drawn.`);
    if (series.step_seconds) parts.push(`Each point is the median of ${duration(series.step_seconds)}; the band spans min to max.`);
    $('figcaption', figure).textContent = parts.join(' ');
  }

  function failureText(failure) {
    const when = new Date(failure.time * 1000);
    const lines = [];
    if (failure.count > 1) {
      lines.push(`${failure.count} failed runs from ${dateTime(when, true)}`);
      const reasons = Object.entries(failure.reasons || {}).map(([reason, count]) => `${reason} ×${count}`);
      lines.push(`Reasons: ${reasons.length ? reasons.join(', ') : failure.reason}`);
    } else {
      lines.push(`Failed run at ${dateTime(when, true)}`);
      lines.push(`Reason: ${failure.reason || 'unknown'}`);
    }
    if (failure.message) lines.push(failure.count > 1 ? `Newest message: ${failure.message}` : failure.message);
    return lines;
  }

  function buildMarkers(figure, failures, grouped) {
    const layer = $('.markers', figure);
    layer.replaceChildren();
    layer.setAttribute('aria-label', `${grouped ? 'Failed runs, grouped per point' : 'Failed runs'}: arrow keys move between them`);
    let first = true;
    for (const failure of failures) {
      if (!isNum(failure.time)) continue;
      const text = failureText(failure);
      // One marker in the tab order (roving tabindex): hundreds would bury the rest of the page.
      layer.append(el('button', {
        class: 'failure-marker',
        attrs: {
          type: 'button',
          tabindex: first ? 0 : -1,
          'data-count': failure.count ?? 1,
          'data-time': failure.time,
          'aria-label': text.join('. '),
          'data-tip': text.join('\n'),
        },
      }));
      first = false;
    }
  }

  function placeMarkers(chart) {
    const figure = $('#speed-chart');
    const layer = $('.markers', figure);
    if (!layer.childElementCount) return;
    const box = $('.chart-box', figure).getBoundingClientRect();
    const over = chart.over.getBoundingClientRect();
    const left = over.left - box.left;
    const top = over.top - box.top + over.height - 9;
    const [min, max] = [chart.scales.x.min, chart.scales.x.max];
    for (const marker of layer.children) {
      const time = Number(marker.dataset.time);
      const inside = time >= min && time <= max;
      marker.hidden = !inside;
      if (inside) {
        marker.style.left = `${left + chart.valToPos(time, 'x')}px`;
        marker.style.top = `${top}px`;
      }
    }
  }

  function showTip(marker) {
    const figure = $('#speed-chart');
    const tip = $('.tooltip', figure);
    tip.textContent = marker.dataset.tip || '';
    tip.hidden = false;
    const box = $('.chart-box', figure).getBoundingClientRect();
    const rect = marker.getBoundingClientRect();
    const width = tip.offsetWidth;
    let left = rect.left - box.left + rect.width / 2 - width / 2;
    left = Math.max(0, Math.min(left, box.width - width));
    tip.style.left = `${left}px`;
    tip.style.top = `${Math.max(0, rect.top - box.top - tip.offsetHeight - 8)}px`;
  }
  function hideTip() {
    $('#speed-chart .tooltip').hidden = true;
  }

  function drawLatency(series, summary) {
    const figure = $('#latency-chart');
    const { fromS, toS } = state.resolved;
    const { x, pad } = padToRange(series.time || [], fromS, toS);
    const inMs = (figures) => pad(((figures && figures.median) || []).map((v) => (isNum(v) ? toMs(v) : null)));
    const data = [
      x,
      inMs(series.ping_seconds),
      inMs(series.jitter_seconds),
      inMs(series.download_latency_seconds),
      inMs(series.upload_latency_seconds),
    ];
    const options = {
      series: [
        {},
        line('ping', 'Idle ping', cssColor('--c-ping'), 'ms'),
        line('jitter', 'Jitter', cssColor('--c-jitter'), 'ms', { width: 1.5 }),
        line('download_latency', 'Loaded latency, download', cssColor('--c-dl-latency'), 'ms', { width: 1.5, dash: [6, 3] }),
        line('upload_latency', 'Loaded latency, upload', cssColor('--c-ul-latency'), 'ms', { width: 1.5, dash: [6, 3] }),
      ],
      scales: {
        x: { time: true, range: () => [fromS, toS] },
        y: { range: (u, min, max) => [0, isNum(max) && max > 0 ? max * 1.08 : 1] },
      },
      axes: axes('ms'),
    };
    makeChart('latency', figure, options, data);
    const median = (values) => {
      const list = (values || []).filter(isNum).sort((a, b) => a - b);
      return list.length ? list[Math.floor((list.length - 1) / 2)] : null;
    };
    const parts = [];
    if (summary.ping_seconds) {
      parts.push(`Median idle ping ${ms(summary.ping_seconds.p50)} (95th percentile ${ms(summary.ping_seconds.p95)}).`);
    } else {
      parts.push('No latency figures in this range.');
    }
    const jitter = median(series.jitter_seconds && series.jitter_seconds.median);
    const dlLat = median(series.download_latency_seconds && series.download_latency_seconds.median);
    const ulLat = median(series.upload_latency_seconds && series.upload_latency_seconds.median);
    if (jitter !== null) parts.push(`Typical jitter ${ms(jitter)}.`);
    if (dlLat !== null || ulLat !== null) parts.push(`Typical loaded latency ${ms(dlLat)} while downloading, ${ms(ulLat)} while uploading.`);
    $('figcaption', figure).textContent = parts.join(' ');
  }

  // ---- connectivity: the probes between the tests ----------------------------------------

  /** Loss at or above this share of a bucket's probes is drawn as bad, below it as some. */
  const LOSS_BAD = 0.05;

  /** An answer that is a failure: `optional()`'s `{ failed }`, or nothing at all. */
  const failedAnswer = (answer) => !answer || Boolean(answer.failed);
  /** A server without the probe endpoints (an older one) answers 404: nothing to show. */
  const notFound = (answer) => Boolean(answer && answer.failed && answer.failed.status === 404);

  /** The outages of `/api/v1/outages` with their times in Unix seconds (`endS` null: ongoing). */
  function outageList() {
    const answer = state.data && state.data.outages;
    if (failedAnswer(answer) || !Array.isArray(answer.outages)) return [];
    return answer.outages
      .filter((outage) => outage && (outage.kind === 'isp' || outage.kind === 'local'))
      .map((outage) => ({
        ...outage,
        startS: Date.parse(outage.start) / 1000,
        endS: outage.end ? Date.parse(outage.end) / 1000 : null,
      }))
      .filter((outage) => Number.isFinite(outage.startS) && (outage.endS === null || Number.isFinite(outage.endS)));
  }

  /** An outage's span on a chart from `fromS` to `toS`, or null when it lies outside. */
  function outageSpan(outage, fromS, toS) {
    const start = Math.max(outage.startS, fromS);
    const end = Math.min(outage.endS === null ? toS : outage.endS, toS);
    return end >= start && start <= toS ? [start, end] : null;
  }

  function outageText(outage) {
    const kind = outage.kind === 'isp' ? 'ISP outage (the gateway answered, nothing beyond it)' : 'Local outage (the gateway did not answer either)';
    const lines = [kind];
    const from = dateTime(new Date(outage.startS * 1000), true);
    lines.push(outage.endS === null ? `Since ${from}, ongoing` : `${from} to ${dateTime(new Date(outage.endS * 1000), true)}`);
    let length = `Down ${duration(outage.down_seconds)}`;
    if (isNum(outage.unmonitored_seconds) && outage.unmonitored_seconds > 0) {
      length += `, plus ${duration(outage.unmonitored_seconds)} not monitored (${plural(outage.restarts || 0, 'restart', 'restarts')})`;
    }
    lines.push(length);
    return lines;
  }

  /** The outages as buttons over the speed chart: one tab stop, arrow keys between them. */
  function buildOutageMarkers(figure, outages) {
    const layer = $('.outage-markers', figure);
    layer.replaceChildren();
    let first = true;
    for (const outage of outages) {
      const text = outageText(outage);
      layer.append(el('button', {
        class: 'outage-marker',
        attrs: {
          type: 'button',
          tabindex: first ? 0 : -1,
          'data-kind': outage.kind,
          'data-start': outage.startS,
          'data-end': outage.endS === null ? '' : outage.endS,
          'aria-label': text.join('. '),
          'data-tip': text.join('\n'),
        },
      }));
      first = false;
    }
    figure.dataset.outages = String(outages.length);
  }

  function placeOutageMarkers(chart) {
    const figure = $('#speed-chart');
    const layer = $('.outage-markers', figure);
    if (!layer.childElementCount) return;
    const box = $('.chart-box', figure).getBoundingClientRect();
    const over = chart.over.getBoundingClientRect();
    const [min, max] = [chart.scales.x.min, chart.scales.x.max];
    for (const marker of layer.children) {
      const end = marker.dataset.end === '' ? max : Number(marker.dataset.end);
      const span = outageSpan({ startS: Number(marker.dataset.start), endS: end }, min, max);
      marker.hidden = !span;
      if (span) {
        const left = chart.valToPos(span[0], 'x');
        marker.style.left = `${over.left - box.left + left}px`;
        marker.style.width = `${Math.max(10, chart.valToPos(span[1], 'x') - left)}px`;
        marker.style.top = `${over.top - box.top}px`;
      }
    }
  }

  /** Shades each outage's span behind the speed chart's lines (canvas pixels). */
  function paintOutages(u) {
    const outages = outageList();
    if (!outages.length) return;
    const { left, top, width, height } = u.bbox;
    const [min, max] = [u.scales.x.min, u.scales.x.max];
    const ctx = u.ctx;
    ctx.save();
    for (const outage of outages) {
      const span = outageSpan(outage, min, max);
      if (!span) continue;
      const x0 = Math.max(left, u.valToPos(span[0], 'x', true));
      const x1 = Math.min(left + width, Math.max(x0 + 2 * devicePixelRatio, u.valToPos(span[1], 'x', true)));
      ctx.fillStyle = cssColor(outage.kind === 'isp' ? '--c-outage-isp' : '--c-outage-local');
      ctx.fillRect(x0, top, x1 - x0, height);
    }
    ctx.restore();
  }

  /** Without a speed chart (no run stored yet) the outages of the range are listed in the
   * connection section instead: the newest OUTAGES_LISTED, newest first. */
  const OUTAGES_LISTED = 20;
  function listOutages() {
    const list = $('#connectivity-outages');
    const { fromS, toS } = state.resolved;
    const shown = state.data.series ? [] : outageList().filter((outage) => outageSpan(outage, fromS, toS));
    const items = shown.slice(-OUTAGES_LISTED).reverse().map((outage) => el('li', {
      text: outageText(outage).join('. '), attrs: { 'data-kind': outage.kind },
    }));
    if (shown.length > OUTAGES_LISTED) items.push(el('li', { text: `and ${plural(shown.length - OUTAGES_LISTED, 'earlier outage', 'earlier outages')}` }));
    list.replaceChildren(...items);
    list.hidden = !items.length;
  }

  /** A target's identity across answers: address, kind and method. */
  const targetKey = (target) => `${target.address}|${target.kind}|${target.method || ''}`;

  /** The public target with the lowest typical RTT (the line's own latency), else any with data. */
  function bestTarget(targets) {
    const typical = (target) => {
      const list = (target.rtt_median_ms || []).filter(isNum).sort((a, b) => a - b);
      return list.length ? list[Math.floor((list.length - 1) / 2)] : Infinity;
    };
    const ranked = [...targets].sort((a, b) => (a.kind === 'public' ? 0 : 1) - (b.kind === 'public' ? 0 : 1) || typical(a) - typical(b));
    return ranked[0] || null;
  }

  /** What the connectivity section shows; hidden when the server has no probe endpoints, or
   * probing is off and nothing was ever probed in the range. */
  function drawConnectivity() {
    const figure = $('#connectivity-chart');
    const { outages, latency } = state.data || {};
    const targets = !failedAnswer(latency) && Array.isArray(latency.targets) ? latency.targets : [];
    const times = !failedAnswer(latency) && Array.isArray(latency.time) ? latency.time : [];
    const probing = failedAnswer(outages) ? null : outages.probing;
    const anyOutage = outageList().length > 0;
    const hide = notFound(outages) || notFound(latency)
      || (!failedAnswer(outages) && !failedAnswer(latency) && !probing && !times.length && !anyOutage);
    figure.hidden = hide;
    figure.dataset.state = hide ? 'hidden' : 'shown';
    const old = state.charts.connectivity;
    if (hide) {
      if (old) old.destroy();
      delete state.charts.connectivity;
      return;
    }
    const select = $('#connectivity-target');
    const note = $('#connectivity-note');
    const problems = [];
    if (failedAnswer(latency)) problems.push(`The latency did not load: ${latency && latency.failed ? latency.failed.message : 'no answer'}.`);
    if (failedAnswer(outages)) problems.push(`The outages did not load: ${outages && outages.failed ? outages.failed.message : 'no answer'}.`);
    const withData = targets.filter((target) => times.length && (target.sent || []).some((n) => n > 0));
    if (!problems.length && !withData.length) problems.push('No probe results in this range yet.');
    note.textContent = problems.join(' ');
    note.hidden = !problems.length;
    listOutages();
    // The range section waits for the first run; the caption names the window instead.
    const span = state.data.series ? ''
      : `${dateTime(new Date(state.resolved.fromS * 1000))} – ${dateTime(new Date(state.resolved.toS * 1000))}: `;

    // The target list, keeping the one chosen before when it is still there.
    const chosen = withData.find((target) => targetKey(target) === state.probeTarget) || bestTarget(withData);
    select.replaceChildren(...withData.map((target) => el('option', {
      text: `${target.address} (${target.kind}${target.method ? `, ${target.method}` : ''})`,
      attrs: { value: targetKey(target) },
    })));
    select.disabled = withData.length < 2;
    select.closest('.connectivity-controls').hidden = !withData.length;
    const mount = $('.chart-mount', figure);
    if (!chosen) {
      if (old) old.destroy();
      delete state.charts.connectivity;
      mount.replaceChildren();
      figure.dataset.series = '';
      figure.dataset.lossBuckets = '0';
      $('figcaption', figure).textContent = span + availabilityText(outages, probing);
      return;
    }
    select.value = targetKey(chosen);
    figure.dataset.target = chosen.address;

    const { fromS, toS } = state.resolved;
    const { x, pad } = padToRange(times, fromS, toS);
    const column = (values) => pad(times.map((_, i) => (isNum(values && values[i]) ? values[i] : null)));
    const loss = column(chosen.loss_ratio);
    const step = isNum(latency.step_seconds) ? latency.step_seconds : 60;
    const band = { stroke: 'transparent', width: 0, points: { show: false } };
    const options = {
      series: [
        {},
        line('rtt_median', `Median RTT to ${chosen.address}`, cssColor('--c-rtt'), 'ms'),
        line(null, 'Fastest probe', 'transparent', 'ms', band),
        line(null, 'Slowest probe', 'transparent', 'ms', band),
        line(null, 'Loss', 'transparent', '', { ...band, value: (u, v) => (v === null || v === undefined ? '—' : percent(v)) }),
      ],
      bands: [{ series: [3, 2], fill: cssColor('--c-rtt-band') }],
      scales: {
        x: { time: true, range: () => [fromS, toS] },
        y: { range: (u, min, max) => [0, isNum(max) && max > 0 ? max * 1.08 : 1] },
        loss: { range: [0, 1] },
      },
      axes: axes('ms'),
      hooks: {
        // Loss colours a strip along the bottom of each bucket that lost probes.
        draw: [(u) => paintLoss(u, step)],
      },
    };
    options.series[4].scale = 'loss';
    const data = [x, column(chosen.rtt_median_ms), column(chosen.rtt_min_ms), column(chosen.rtt_max_ms), loss];
    makeChart('connectivity', figure, options, data, [2, 3]);
    const lossy = loss.filter((v) => isNum(v) && v > 0);
    figure.dataset.lossBuckets = String(lossy.length);
    figure.dataset.lossBad = String(lossy.filter((v) => v >= LOSS_BAD).length);

    const sum = (values) => (values || []).reduce((total, n) => total + (isNum(n) ? n : 0), 0);
    const [sent, lost] = [sum(chosen.sent), sum(chosen.lost)];
    const medians = (chosen.rtt_median_ms || []).filter(isNum).sort((a, b) => a - b);
    const typical = medians.length ? medians[Math.floor((medians.length - 1) / 2)] : null;
    const parts = [];
    parts.push(`Round-trip time to ${chosen.address} (${chosen.kind}): the line is the median, the band spans the fastest to the slowest probe of each ${duration(step)}.`);
    if (typical !== null) parts.push(`Typical median ${sensible(typical)} ms.`);
    if (sent > 0) {
      parts.push(`Lost ${percent(lost / sent)} of ${sent} probes; ${plural(lossy.length, 'bucket', 'buckets')} with loss marked along the bottom (red at ${percent(LOSS_BAD)} or more).`);
    }
    const loaded = (chosen.under_load || []).filter(Boolean).length;
    if (loaded) parts.push(`${plural(loaded, 'bucket', 'buckets')} under load (a speed test ran).`);
    parts.push(availabilityText(outages, probing));
    $('figcaption', figure).textContent = span + parts.join(' ');
  }

  function paintLoss(u, step) {
    const loss = u.data[4];
    const times = u.data[0];
    const { top, height, left, width } = u.bbox;
    const strip = Math.max(4, Math.round(6 * devicePixelRatio));
    const ctx = u.ctx;
    ctx.save();
    for (let i = 0; i < times.length; i += 1) {
      const value = loss[i];
      if (!isNum(value) || value <= 0) continue;
      const x0 = Math.max(left, u.valToPos(times[i], 'x', true));
      const x1 = Math.min(left + width, Math.max(x0 + devicePixelRatio, u.valToPos(times[i] + step, 'x', true)));
      ctx.fillStyle = cssColor(value >= LOSS_BAD ? '--c-loss-bad' : '--c-loss-some');
      ctx.fillRect(x0, top + height - strip, x1 - x0, strip);
    }
    ctx.restore();
  }

  /** Availability and outages of the range, and how probing runs, in a sentence or three. */
  function availabilityText(outages, probing) {
    if (failedAnswer(outages)) return '';
    const parts = [];
    const list = outageList();
    const count = (kind) => list.filter((outage) => outage.kind === kind).length;
    if (isNum(outages.availability)) {
      parts.push(`Available ${percent(outages.availability)} of the monitored time (no ISP outage).`);
    }
    parts.push(list.length
      ? `${plural(list.length, 'outage', 'outages')} (${count('isp')} ISP, ${count('local')} local), ${state.data.series ? 'shaded on the speed chart' : 'listed above'}.`
      : 'No outages in this range.');
    if (isNum(outages.unmonitored_seconds) && outages.unmonitored_seconds >= 60) {
      parts.push(`${duration(outages.unmonitored_seconds)} not monitored (the service was not running).`);
    }
    if (probing && isNum(probing.interval_seconds)) {
      const every = probing.interval_seconds;
      parts.push(`Probing every ${number(every, Number.isInteger(every) ? 0 : 1)} s by ${probing.method || 'an unknown method'}.`);
    } else {
      parts.push('Probing is off now; these are stored results.');
    }
    return parts.join(' ');
  }

  // ---- heat map ------------------------------------------------------------------------

  function renderHeatmap(heatmap, widened) {
    const table = $('#heatmap');
    if (heatmap.failed) {
      $('tbody', table).replaceChildren();
      setText('heatmap-note', `The heat map did not load: ${heatmap.failed.message}. Reload to try again.`);
      return;
    }
    const weekdayShort = new Intl.DateTimeFormat(undefined, { weekday: 'short', timeZone: 'UTC' });
    const weekdayLong = new Intl.DateTimeFormat(undefined, { weekday: 'long', timeZone: 'UTC' });
    const hourShort = new Intl.DateTimeFormat(undefined, { hour: 'numeric', timeZone: 'UTC' });
    const hourLong = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', timeZone: 'UTC' });
    // 2024-01-01 was a Monday: rows are Monday first, as the endpoint sends them.
    const day = (d, h = 0) => new Date(Date.UTC(2024, 0, 1 + d, h));
    const headRow = el('tr', {}, [el('th', { attrs: { scope: 'col' } }, [el('span', { class: 'visually-hidden', text: 'Weekday' })])]);
    for (let h = 0; h < 24; h++) headRow.append(el('th', { text: hourShort.format(day(0, h)), attrs: { scope: 'col', title: hourLong.format(day(0, h)) } }));
    $('thead', table).replaceChildren(headRow);

    const metric = heatmap.metric || 'download';
    const isSpeed = heatmap.unit !== 'seconds';
    const shares = heatmap.share_of_plan;
    const medians = heatmap.median || [];
    const values = medians.flat().filter(isNum);
    const [min, max] = values.length ? [Math.min(...values), Math.max(...values)] : [0, 0];
    const style = getComputedStyle(document.documentElement);
    const saturation = style.getPropertyValue('--heat-saturation').trim() || '70%';
    const lightness = style.getPropertyValue('--heat-lightness').trim() || '55%';
    const figure = (value) => (isSpeed ? mbit(value) : ms(value));
    const short = (value) => (isSpeed ? number(toMbit(value), toMbit(value) >= 10 ? 0 : 1) : number(toMs(value), toMs(value) >= 10 ? 0 : 1));
    const rows = [];
    for (let d = 0; d < 7; d++) {
      const row = el('tr', {}, [el('th', { text: weekdayShort.format(day(d)), attrs: { scope: 'row', title: weekdayLong.format(day(d)) } })]);
      for (let h = 0; h < 24; h++) {
        const value = medians[d] ? medians[d][h] : null;
        const runs = heatmap.runs && heatmap.runs[d] ? heatmap.runs[d][h] : 0;
        const share = shares && shares[d] ? shares[d][h] : null;
        const when = `${weekdayLong.format(day(d))} ${hourLong.format(day(d, h))}–${hourLong.format(day(d, (h + 1) % 24))}`;
        const cell = el('td');
        if (isNum(value)) {
          let goodness;
          if (isNum(share)) {
            goodness = Math.max(0, Math.min(1, (share - 0.5) / 0.5));
            cell.textContent = number(share * 100, 0);
          } else {
            goodness = max > min ? (value - min) / (max - min) : 1;
            if (!isSpeed) goodness = 1 - goodness;
            cell.textContent = short(value);
          }
          cell.style.backgroundColor = `hsl(${Math.round(goodness * 130)} ${saturation} ${lightness})`;
          const label = `${when}: median ${figure(value)}${isNum(share) ? `, ${percent(share)} of the plan` : ''}, ${runs} ${runs === 1 ? 'run' : 'runs'}`;
          cell.title = label;
          cell.setAttribute('aria-label', label);
        } else {
          cell.title = `${when}: no runs`;
          cell.setAttribute('aria-label', `${when}: no runs`);
        }
        row.append(cell);
      }
      rows.push(row);
    }
    $('tbody', table).replaceChildren(...rows);
    const name = { download: 'download', upload: 'upload', ping: 'idle ping' }[metric] || metric;
    const zone = heatmap.time_zone || 'UTC';
    let note = isNum(shares && shares.flat().find(isNum))
      ? `Median ${name} as % of the plan in force at each run's time, by weekday and hour (${zone}).`
      : `Median ${name} in ${isSpeed ? 'Mbit/s' : 'ms'}, by weekday and hour (${zone}).`;
    if (!values.length) note = `No successful runs in this range, so no medians by weekday and hour (${zone}).`;
    if (widened) note += ' Over the 7 days up to the end of the range, since the range is shorter.';
    setText('heatmap-note', note);
    const legend = $('.heat-legend');
    $('.heat-low', legend).textContent = isSpeed ? 'slow' : 'high';
    $('.heat-high', legend).textContent = isSpeed ? 'fast' : 'low';
  }

  // ---- compliance ----------------------------------------------------------------------

  function renderCompliance(summary) {
    renderVerdict(summary);
    if (summary.failed) {
      const note = $('#compliance-note');
      note.hidden = false;
      note.textContent = `The compliance figures did not load: ${summary.failed.message}. Reload to try again.`;
      $('#compliance-figures').replaceChildren();
      return;
    }
    const figures = [];
    const fact = (term, ...value) => figures.push(el('div', {}, [el('dt', { text: term }), el('dd', {}, value)]));
    const plan = summary.plan;
    const note = $('#compliance-note');
    if (plan) {
      note.hidden = true;
      fact('Met the plan', plan.share_met === null || plan.share_met === undefined
        ? 'no measurements'
        : `${percent(plan.share_met)} (${plan.met} of ${plural(plan.measurements, 'measurement', 'measurements')})`);
      fact('Breaches', String(plan.breaches));
      const retests = plan.retests || {};
      fact('Retests', `${(retests.confirmed || 0) + (retests.refuted || 0)} (${retests.confirmed || 0} confirmed the breach, ${retests.refuted || 0} met the plan)`);
      const longest = plan.longest_below;
      if (longest) {
        fact('Longest stretch below the plan', `${duration(longest.seconds)}, ${plural(longest.measurements, 'measurement', 'measurements')}, from `,
          timeNode(longest.from, false), longest.ongoing ? ' (still below)' : ' to ', longest.ongoing ? null : timeNode(longest.to, false));
      } else {
        fact('Longest stretch below the plan', 'none');
      }
      fact('Plan', `${planText(plan)}, met at ${percent(plan.threshold)}`);
    } else {
      note.hidden = false;
      note.replaceChildren('No plan is set, so nothing is judged against it. Start ', el('code', { text: 'serve' }),
        ' with ', el('code', { text: '--plan-download' }), ' and ', el('code', { text: '--plan-upload' }),
        ' (for example ', el('code', { text: '--plan-download 500Mbit/s --plan-upload 50Mbit/s' }), ') to see how often the line meets it.');
    }
    const runs = summary.runs || {};
    fact('Runs', `${runs.total ?? 0}: ${runs.success ?? 0} succeeded, ${runs.failure ?? 0} failed${runs.skipped ? `, ${runs.skipped} skipped` : ''}`);
    const kinds = summary.failures_by_kind;
    if (kinds && runs.failure) {
      fact('Failures by kind', `network ${kinds.network}, service ${kinds.service}, local ${kinds.local}, other ${kinds.other}`);
    }
    const spread = (p, format) => (p ? `${format(p.p5)} / ${format(p.p50)} / ${format(p.p95)}` : '—');
    fact('Download p5 / median / p95', spread(summary.download_bytes_per_second, mbit));
    fact('Upload p5 / median / p95', spread(summary.upload_bytes_per_second, mbit));
    fact('Ping p5 / median / p95', spread(summary.ping_seconds, ms));
    $('#compliance-figures').replaceChildren(...figures);
  }

  /** The chosen rule set's verdict, or why there is none; `#compliance[data-verdict]` says which. */
  function renderVerdict(summary) {
    const section = $('#compliance');
    const panel = $('#verdict');
    $('#rules-select').value = state.rules;
    const hint = $('#rules-hint');
    hint.textContent = state.rulesIgnored
      ? `The address's rules=${state.rulesIgnored} is not a rule set this page knows (de-bnetza, at-rtr, us-fcc, uk-ofcom), so none is applied.`
      : 'An indication over the range above, in this browser\'s time zone; never the regulator\'s own procedure.';
    const done = (value) => { section.dataset.verdict = value; };
    if (!state.rules) {
      panel.hidden = true;
      done('none');
      return;
    }
    panel.hidden = false;
    const verdict = summary.failed ? null : summary.rules;
    const only = (message) => {
      setText('verdict-title', state.rules);
      setText('verdict-label', FALLBACK_LABEL);
      setText('verdict-outcome', 'No verdict');
      const reason = $('#verdict-reason');
      reason.hidden = false;
      reason.textContent = message;
      for (const id of ['verdict-criteria', 'verdict-facts']) $(`#${id}`).replaceChildren();
      $('#verdict-unverified').hidden = true;
      $('#verdict-sources').hidden = true;
    };
    if (summary.failed) {
      only(`The verdict did not load: ${summary.failed.message}. Reload to try again.`);
      done('failed');
      return;
    }
    if (!verdict) {
      only('A rule set judges at most 366 days: choose a shorter range to see its verdict.');
      done('too-long');
      return;
    }
    setText('verdict-title', verdict.title || verdict.rules);
    setText('verdict-label', verdict.label || FALLBACK_LABEL);
    const outcome = setText('verdict-outcome', OUTCOMES[verdict.outcome] || String(verdict.outcome));
    outcome.className = `outcome-${verdict.outcome}`;
    const reason = $('#verdict-reason');
    reason.hidden = !verdict.reason;
    reason.textContent = verdict.reason ? `Why: ${verdict.reason}` : '';
    const criteria = (verdict.criteria || []).map((criterion) => {
      const unit = criterion.unit === 'days' ? (criterion.of === 1 ? 'day' : 'days') : (criterion.of === 1 ? 'measurement' : 'measurements');
      const status = STATUSES[criterion.status] || String(criterion.status);
      return el('li', { class: `criterion status-${criterion.status}` }, [
        el('span', { class: 'criterion-status', text: status }),
        el('span', { class: 'criterion-requirement', text: criterion.requirement }),
        el('span', { class: 'criterion-count', text: `${criterion.count} of ${criterion.of} ${unit}${criterion.direction ? ` (${criterion.direction})` : ''}` }),
        criterion.reason ? el('span', { class: 'criterion-reason muted', text: criterion.reason }) : null,
      ]);
    });
    if (!criteria.length) criteria.push(el('li', { class: 'criterion muted', text: 'No criteria were judged.' }));
    $('#verdict-criteria').replaceChildren(...criteria);
    const facts = [];
    const fact = (term, ...value) => facts.push(el('div', {}, [el('dt', { text: term }), el('dd', {}, value)]));
    const progress = verdict.progress;
    if (progress && (progress.measurements_required || progress.days_required)) {
      fact('Protocol', `${progress.measurements} of ${progress.measurements_required} measurements, ${progress.days} of ${progress.days_required} days${progress.complete ? ', complete' : ', not complete'}`);
    }
    fact('Runs judged', `${plural(verdict.successful_runs, 'successful run', 'successful runs')}; ${plural(verdict.failed_runs, 'failed run', 'failed runs')} (${verdict.failed_network_runs ?? 0} pointing at the line; never counted as measurements)`);
    fact('Time zone', verdict.time_zone || '—');
    fact('Runs from', verdict.campaign ? 'the campaign started ' : 'every run in the range', verdict.campaign ? timeNode(verdict.campaign, false) : null);
    $('#verdict-facts').replaceChildren(...facts);
    const list = (id, items) => {
      const box = $(`#${id}`);
      box.hidden = !items.length;
      $('ul', box).replaceChildren(...items.map((item) => el('li', { text: item })));
    };
    list('verdict-unverified', verdict.unverified || []);
    list('verdict-sources', verdict.sources || []);
    done(verdict.rules);
  }

  async function chooseRules(rules) {
    state.rules = RULE_SETS.includes(rules) ? rules : '';
    state.rulesIgnored = null;
    history.pushState(null, '', pageUrl(state.range, state.rules));
    if (!state.resolved || !state.data || !state.data.series) {
      refresh();
      return;
    }
    const section = $('#compliance');
    delete section.dataset.verdict;
    section.setAttribute('aria-busy', 'true');
    const load = ++state.summaryLoad;
    const summary = await optional(fetchSummary(state.resolved));
    if (load !== state.summaryLoad) return;
    section.removeAttribute('aria-busy');
    state.data.summary = summary;
    renderCompliance(summary);
  }

  // ---- runs ----------------------------------------------------------------------------

  function renderRuns(page) {
    if (page.failed) {
      $('#runs tbody').replaceChildren(el('tr', {}, [el('td', { text: `The runs did not load: ${page.failed.message}. Reload to try again.`, attrs: { colspan: 9 } })]));
      $('#runs-older').disabled = true;
      $('#runs-newer').disabled = true;
      setText('runs-page', '');
      return;
    }
    const samples = page.samples || [];
    const rows = samples.map((sample) => {
      const outcome = sample.outcome || 'unknown';
      const trigger = sample.trigger && sample.trigger !== 'schedule' ? ` (${sample.trigger})` : '';
      const reason = [];
      if (sample.reason) reason.push(el('strong', { text: sample.reason }));
      if (sample.message) reason.push(`${sample.reason ? ': ' : ''}${sample.message}`);
      const server = sample.server ? (sample.server.name || sample.server.host || '') : '';
      return el('tr', { class: outcome }, [
        el('td', {}, [timeNode(sample.time, false)]),
        el('td', { class: 'outcome', text: outcome + trigger }),
        el('td', { class: 'message' }, reason.length ? reason : ['—']),
        el('td', { class: 'num', text: mbit(sample.download_bytes_per_second) }),
        el('td', { class: 'num', text: mbit(sample.upload_bytes_per_second) }),
        el('td', { class: 'num', text: ms(sample.ping_seconds) }),
        el('td', { class: 'num', text: ms(sample.jitter_seconds) }),
        el('td', { text: server || '—' }),
        el('td', {}, [sample.result_url ? safeLink(sample.result_url, 'result') : '—']),
      ]);
    });
    if (!rows.length) {
      rows.push(el('tr', {}, [el('td', { text: 'No runs in this range.', attrs: { colspan: 9 } })]));
    }
    $('#runs tbody').replaceChildren(...rows);
    const runs = state.runs;
    runs.cursors.length = runs.index + 1;
    if (page.next_cursor) runs.cursors.push(page.next_cursor);
    $('#runs-older').disabled = !page.next_cursor;
    $('#runs-newer').disabled = runs.index === 0;
    setText('runs-page', samples.length ? `Page ${runs.index + 1}, ${plural(samples.length, 'run', 'runs')}, newest first` : '');
    const { from, to } = state.resolved;
    $('#csv-link').href = `/api/v1/samples.csv?${query({ from, to })}`;
  }

  async function turnRunsPage(step) {
    const runs = state.runs;
    const index = runs.index + step;
    if (index < 0 || index >= runs.cursors.length) return;
    const load = ++runs.load;
    const { from, to } = state.resolved;
    try {
      const page = await fetchJson(`/api/v1/samples?${query({ from, to, limit: RUNS_PAGE, cursor: runs.cursors[index] })}`);
      if (load !== runs.load) return;
      runs.index = index;
      renderRuns(page);
    } catch (err) {
      fail(`Cannot load the runs: ${err.message}`);
    }
  }

  // ---- run a test now --------------------------------------------------------------------

  function renderRunNow(status) {
    const button = $('#run-now');
    const enabled = Boolean(status.run_endpoint && status.run_endpoint.enabled);
    $('#run-now-hint').hidden = enabled;
    button.disabled = !enabled || state.runningNow || Boolean(status.running);
    button.title = enabled ? '' : 'Off: start serve with --enable-run-endpoint';
  }

  function progress(text, kind = '') {
    const node = $('#run-progress');
    node.className = `progress ${kind}`;
    node.textContent = text;
  }

  async function runNow() {
    const button = $('#run-now');
    if (state.runningNow) return;
    state.runningNow = true;
    button.disabled = true;
    const before = state.status ? state.status.newest : null;
    progress('Starting a test…');
    try {
      await fetchJson('/api/v1/run', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    } catch (err) {
      state.runningNow = false;
      progress(`The test did not start: ${err.detail || err.message}`, 'bad');
      if (state.status) renderRunNow(state.status);
      return;
    }
    const started = Date.now();
    // The 202 means a test started: Now says so at once, not only at the first status poll.
    setText('now-running', 'Yes, started just now');
    progress('Test running… (this takes about as long as a speed test)');
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, RUN_POLL_MS));
      let status;
      try {
        status = await fetchJson('/api/v1/status');
      } catch (err) {
        progress(`Waiting for the test; the status did not load: ${err.message}`);
        continue;
      }
      state.status = status;
      renderNow(status);
      const newer = status.newest && status.newest !== before
        && (!before || Date.parse(status.newest) > Date.parse(before));
      if (!status.running && newer) break;
      const seconds = Math.round((Date.now() - started) / 1000);
      progress(status.running ? `Test running… ${seconds} s` : `Waiting for the result… ${seconds} s`);
      if (Date.now() - started > RUN_POLL_LIMIT_MS) {
        state.runningNow = false;
        progress('No new run appeared after 15 minutes; the log of serve says why.', 'bad');
        renderRunNow(status);
        return;
      }
    }
    progress('Test finished; loading the new run…');
    state.runningNow = false;
    await refresh();
    const latest = state.status && state.status.latest;
    const outcome = latest ? latest.outcome : 'stored';
    progress(`Done: the new run (${outcome}) is in the table below.`, outcome === 'failure' ? 'bad' : 'ok');
  }

  // ---- wiring ----------------------------------------------------------------------------

  function wire() {
    for (const button of document.querySelectorAll('[data-range]')) {
      button.addEventListener('click', () => chooseRange({ key: button.dataset.range, preset: button.dataset.range }));
    }
    $('#range-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const from = new Date($('#range-from').value);
      const to = new Date($('#range-to').value);
      if (!Number.isFinite(from.getTime()) || !Number.isFinite(to.getTime()) || from >= to) {
        setText('range-label', 'Give a start before the end.');
        return;
      }
      const range = { from: from.toISOString(), to: to.toISOString() };
      range.key = `${range.from}…${range.to}`;
      chooseRange(range);
    });
    window.addEventListener('popstate', () => {
      state.range = rangeFromUrl();
      ({ rules: state.rules, ignored: state.rulesIgnored } = rulesFromUrl());
      refresh();
    });
    $('#rules-select').addEventListener('change', (event) => chooseRules(event.target.value));
    $('#runs-older').addEventListener('click', () => turnRunsPage(1));
    $('#runs-newer').addEventListener('click', () => turnRunsPage(-1));
    $('#run-now').addEventListener('click', runNow);
    $('#heatmap-metric').addEventListener('change', async () => {
      if (!state.resolved) return;
      const { fromS, toS, to } = state.resolved;
      const heatFromS = Math.min(fromS, toS - HEATMAP_MIN_SECONDS);
      const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
      try {
        const heatmap = await fetchHeatmap({ from: new Date(heatFromS * 1000).toISOString(), to, tz: zone, metric: $('#heatmap-metric').value });
        if (state.data) state.data.heatmap = heatmap;
        renderHeatmap(heatmap, heatFromS < fromS);
      } catch (err) {
        fail(`Cannot load the heat map: ${err.message}`);
      }
    });
    // Markers on the speed chart (failures, outages): a tip on hover and focus, one tab stop
    // per layer (roving tabindex), the arrow keys, Home and End move between them.
    const markerLayer = (layer, kind) => {
      const tipFor = (event) => {
        const marker = event.target.closest && event.target.closest(`.${kind}`);
        if (marker) showTip(marker);
      };
      layer.addEventListener('mouseover', tipFor);
      layer.addEventListener('focusin', tipFor);
      layer.addEventListener('mouseout', hideTip);
      layer.addEventListener('focusout', hideTip);
      layer.addEventListener('focusin', (event) => {
        if (!event.target.classList.contains(kind)) return;
        for (const marker of layer.querySelectorAll(`.${kind}[tabindex="0"]`)) marker.tabIndex = -1;
        event.target.tabIndex = 0;
      });
      layer.addEventListener('keydown', (event) => {
        const markers = [...layer.querySelectorAll(`.${kind}:not([hidden])`)];
        const index = markers.indexOf(document.activeElement);
        if (index < 0) return;
        const next = { ArrowRight: index + 1, ArrowDown: index + 1, ArrowLeft: index - 1, ArrowUp: index - 1, Home: 0, End: markers.length - 1 }[event.key];
        if (next === undefined) return;
        event.preventDefault();
        markers[Math.max(0, Math.min(markers.length - 1, next))].focus();
      });
    };
    markerLayer($('#speed-chart .markers'), 'failure-marker');
    markerLayer($('#speed-chart .outage-markers'), 'outage-marker');
    $('#connectivity-target').addEventListener('change', (event) => {
      state.probeTarget = event.target.value;
      if (state.data) drawConnectivity();
    });
    document.addEventListener('keydown', (event) => { if (event.key === 'Escape') hideTip(); });

    // Charts follow the width of their box and the colour scheme.
    let resizeTimer = 0;
    const resize = new ResizeObserver(() => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => {
        // A tooltip placed for the old width would stick out of the new one.
        hideTip();
        for (const [key, chart] of Object.entries(state.charts)) {
          const figure = $(`#${key}-chart`);
          if (figure) chart.setSize(chartSize($('.chart-mount', figure)));
        }
      }, 100);
    });
    resize.observe($('#speed-chart .chart-box'));
    resize.observe($('#connectivity-chart .chart-box'));
    const dark = matchMedia('(prefers-color-scheme: dark)');
    dark.addEventListener('change', () => {
      drawCharts();
      if (state.data && state.data.series) renderHeatmap(state.data.heatmap, state.data.widened);
    });

    // New runs appear without a reload: the status is cheap; the views reload when it changed.
    setInterval(async () => {
      if (state.runningNow || document.hidden) return;
      try {
        const status = await fetchJson('/api/v1/status');
        const changed = !state.status || status.newest !== state.status.newest;
        const wasUnreachable = state.unreachableSince !== null;
        state.unreachableSince = null;
        state.status = status;
        renderNow(status);
        renderRunNow(status);
        // Back after an outage: the banner goes and every view is reloaded, whatever changed.
        // Before the first run the connection section is all there is: it reloads each tick.
        if (wasUnreachable || !status.samples || (changed && state.runs.index === 0)) refresh();
      } catch (err) {
        // Say so at once: otherwise the page goes on showing the last figures, the next test
        // "due" and "Test running: No" as if they were current. The next tick tries again.
        if (state.unreachableSince === null) state.unreachableSince = new Date();
        fail(`The monitor's status cannot be read since ${dateTime(state.unreachableSince, true)}: ${err.message}. `
          + 'What this page shows may be out of date; it tries again every minute.');
      }
    }, REFRESH_MS);
  }

  function start() {
    if (typeof uPlot !== 'function') {
      fail('The chart library did not load (/assets/vendor/uplot/dist/uPlot.iife.min.js).');
      return;
    }
    wire();
    state.range = rangeFromUrl();
    ({ rules: state.rules, ignored: state.rulesIgnored } = rulesFromUrl());
    refresh();
  }

  start();
})();
