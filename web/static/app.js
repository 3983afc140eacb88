// The console's pages: sign-in, the streams page, a stream's page (its
// coverage timeline, cursor, zoom, live mode and a view per track), usage.
// Routing is by the URL's fragment, so a page can be bookmarked and shared:
//   #/[?prefix=<name prefix>]            streams, a page at a time
//   #/stream/<name>?from=<ms>&to=<ms>&cursor=<ms>[&live=1]
//   #/usage

import * as api from './api.js';
import * as P from './plot.js';
import { viewFor, el, rfc3339 } from './views.js';

const app = document.getElementById('app');
const who = document.getElementById('who');
let page = null; // the page shown; its stop() ends its timers and feeds

// Every error the page meets is shown in the page as well as the console.
window.addEventListener('unhandledrejection', (e) => banner(String(e.reason && e.reason.message || e.reason)));

function banner(text) {
  const b = document.getElementById('banner');
  b.textContent = text || '';
  b.hidden = !text;
}

async function main() {
  try {
    await api.loadConfig();
    await api.restoreKey();
  } catch (e) {
    banner(e.message);
    return;
  }
  window.addEventListener('hashchange', route);
  route();
}

function showWho() {
  who.replaceChildren();
  if (api.keyId()) {
    who.append(`key ${api.keyId()} `, el('button', { type: 'button', onclick: async () => { await api.signOut(); route(); } }, 'Sign out'));
  }
}

function route() {
  if (page && page.stop) page.stop();
  page = null;
  banner('');
  showWho();
  if (api.needsKey()) { page = signInPage(); return; }
  const h = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = h.split('?');
  const params = new URLSearchParams(qs || '');
  document.querySelectorAll('nav a').forEach((a) => a.classList.toggle('here', a.getAttribute('href') === '#' + path));
  if (path.startsWith('/stream/')) page = streamPage(decodeURIComponent(path.slice('/stream/'.length)), params);
  else if (path === '/usage') page = usagePage();
  else page = streamsPage(params);
}

// ---------------------------------------------------------------- sign-in

function signInPage() {
  const id = el('input', { name: 'access-key-id', autocomplete: 'username', required: '', size: '30' });
  const secret = el('input', { name: 'secret', type: 'password', autocomplete: 'current-password', required: '', size: '44' });
  const remember = el('input', { type: 'checkbox', name: 'remember' });
  const err = el('p', { class: 'error' });
  const form = el('form', { class: 'signin' },
    el('h2', {}, 'Sign in'),
    el('p', {}, 'This server signs every request (SigV4). Give an access key from its credentials file; the secret stays in this tab as a key the page cannot read back.'),
    el('label', {}, 'Access key id ', id), el('label', {}, 'Secret access key ', secret),
    el('label', { class: 'inline' }, remember, ' keep the key on this browser (as a non-extractable WebCrypto key, never as text)'),
    el('button', { type: 'submit' }, 'Sign in'), err);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    try {
      await api.signIn(id.value, secret.value, remember.checked);
      secret.value = '';
      route();
    } catch (x) {
      err.textContent = x.message;
    }
  });
  app.replaceChildren(form);
  return {};
}

// ---------------------------------------------------------------- streams

function kindsOf(s) {
  return (s.tracks || []).map((t) => t.kind + (t.sampleRate ? ` ${t.sampleRate >= 1000 ? t.sampleRate / 1000 + ' kHz' : t.sampleRate + ' Hz'}` : '')).join(', ');
}

// PAGE_SIZE is the streams shown at once: the overview summarizes only
// the page's streams (reading each one's store), every 3 s, so a server of
// 10,000 streams costs the page what 50 cost.
const PAGE_SIZE = 50;

function streamsPage(params) {
  const tbody = el('tbody');
  const status = el('span', { class: 'status' });
  const name = el('input', { name: 'name', placeholder: 'stream name', required: '', pattern: '[a-zA-Z0-9_.\\-]{1,256}' });
  const hours = el('input', { name: 'retention', type: 'number', min: '0', value: '24', required: '', class: 'short' });
  const create = el('form', { class: 'create' }, 'New stream ', name, ' retention ', hours, ' h ', el('button', { type: 'submit' }, 'Create'));
  create.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api.post('/createStream', { StreamName: name.value, DataRetentionInHours: Number(hours.value), MediaType: 'application/x-sensorium' });
      name.value = '';
      refresh();
    } catch (x) { banner(x.message); }
  });
  // The pages: tokens[i] is where page i starts (the overview's next of
  // page i − 1), so that previous goes back without the server keeping
  // anything; a new filter starts again at the first page.
  let tokens = [''];
  let at = 0;
  const filter = el('input', { name: 'filter', type: 'search', placeholder: 'name begins with…', size: '24', value: params.get('prefix') || '' });
  const prev = el('button', { type: 'button', name: 'previous', onclick: () => { if (at > 0) { at--; refresh(); } } }, '← previous');
  const next = el('button', { type: 'button', name: 'next', onclick: () => { if (tokens[at + 1]) { at++; refresh(); } } }, 'next →');
  const pageText = el('span', { class: 'status', id: 'streams-page' });
  let typing = null;
  filter.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      tokens = [''];
      at = 0;
      const p = filter.value.trim();
      history.replaceState(null, '', p ? `#/?prefix=${encodeURIComponent(p)}` : '#/');
      refresh();
    }, 250);
  });
  const pager = el('div', { class: 'controls pager' }, 'Filter ', filter, ' ', prev, next, pageText);
  app.replaceChildren(el('h2', {}, 'Streams ', status), create, pager,
    el('table', { class: 'streams' }, el('thead', {}, el('tr', {}, ...['', 'stream', 'state', 'ingest', 'last fragment', 'retention', 'stored', 'tracks', ''].map((h) => el('th', {}, h)))), tbody));
  let timer = null;
  let stopped = false;
  let shown = 0; // refreshes begun: an answer to an older one is dropped
  const remote = new Map(); // name → the last summary another node gave, shown until the next comes
  async function refresh() {
    clearTimeout(timer);
    const mine = ++shown;
    try {
      const prefix = filter.value.trim();
      const o = await api.getJSON('/v1/overview', { limit: PAGE_SIZE, prefix: prefix || undefined, next: tokens[at] || undefined });
      if (mine !== shown || stopped) return;
      const now = o.now;
      if (!o.streams.length && at > 0) { at--; refresh(); return; } // the page emptied (streams deleted): show the one before
      tokens[at + 1] = o.next || '';
      tokens.length = at + 2;
      tbody.replaceChildren(...o.streams.map((s) => streamRow((s.remote && remote.has(s.name)) ? withCatalog(remote.get(s.name), s) : s, now, refresh)));
      fillRemote(o.streams, now, mine);
      if (!o.streams.length) {
        tbody.append(el('tr', {}, el('td', { colspan: '9' }, prefix ? `No stream's name begins with ${prefix}.` : 'No streams yet: create one, or run a producer (sensorium demo, examples/).')));
      }
      prev.disabled = at === 0;
      next.disabled = !o.next;
      const first = at * PAGE_SIZE + 1;
      pageText.textContent = o.streams.length ? `streams ${first}–${first + o.streams.length - 1}${o.next ? '' : ', the last'}` : '';
      status.textContent = `page ${at + 1} · ${new Date().toLocaleTimeString()}`;
    } catch (x) { banner(x.message); }
    if (!stopped && mine === shown) timer = setTimeout(refresh, 3000);
  }
  // fillRemote: on a cluster node, the overview gives only the catalog's
  // part of a stream another node holds (remote); its summary comes from
  // GET /v1/stream, which that node answers. A few at a time.
  async function fillRemote(streams, now, mine) {
    const todo = streams.filter((s) => s.remote);
    const worker = async () => {
      for (let s = todo.shift(); s; s = todo.shift()) {
        try {
          const held = await api.getJSON('/v1/stream', { stream: s.name });
          if (remote.size > 4 * PAGE_SIZE) remote.clear();
          remote.set(s.name, held);
          if (mine !== shown || stopped) return;
          const row = tbody.querySelector(`tr[data-stream="${CSS.escape(s.name)}"]`);
          if (row) row.replaceWith(streamRow(withCatalog(held, s), now, refresh));
        } catch (x) { /* the row stays unknown; the next refresh tries again */ }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }
  // withCatalog is the holder's summary with the catalog's part as this
  // page's overview read it (the version a retention change or a deletion
  // must name), not as an older answer gave it.
  function withCatalog(held, s) {
    return { ...held, arn: s.arn, status: s.status, version: s.version, mediaType: s.mediaType, created: s.created, retentionHours: s.retentionHours };
  }
  refresh();
  return { stop() { stopped = true; clearTimeout(timer); clearTimeout(typing); } };
}

function streamRow(s, now, refresh) {
  const age = s.last ? now - s.last.server : NaN;
  const preview = el('img', { class: 'thumb', alt: '' });
  if (s.last) loadPreview(preview, s);
  const changeRetention = async () => {
    const v = prompt(`Retention of ${s.name} in hours (now ${s.retentionHours}; 0 keeps nothing):`, String(s.retentionHours));
    if (v === null) return;
    const h = Number(v);
    if (!Number.isInteger(h) || h < 0) { banner(`retention must be a whole number of hours ≥ 0, not ${v}`); return; }
    if (h === s.retentionHours) return;
    try {
      await api.post('/updateDataRetention', { StreamName: s.name, CurrentVersion: s.version, Operation: h > s.retentionHours ? 'INCREASE_DATA_RETENTION' : 'DECREASE_DATA_RETENTION', DataRetentionChangeInHours: Math.abs(h - s.retentionHours) });
      refresh();
    } catch (x) { banner(x.message); }
  };
  const del = async () => {
    const typed = prompt(`Delete stream ${s.name} and all it stores${s.remote ? '' : ` (${P.fmtBytes(s.storedBytes)})`}? Type its name to confirm:`);
    if (typed === null) return;
    if (typed !== s.name) { banner(`not deleted: "${typed}" is not ${s.name}`); return; }
    try { await api.post('/deleteStream', { StreamName: s.name, CurrentVersion: s.version }); refresh(); } catch (x) { banner(x.message); }
  };
  return el('tr', { 'data-stream': s.name },
    el('td', {}, preview),
    el('td', {}, el('a', { href: `#/stream/${encodeURIComponent(s.name)}` }, s.name)),
    el('td', {}, el('span', { class: `state ${s.state}`, title: s.remote ? 'held by another node: asking it…' : '' }, s.state)),
    el('td', {}, s.remote ? '…' : s.state === 'empty' ? '—' : `${P.fmtBytes(s.rateBytesPerSecond)}/s · ${s.rateFragmentsPerMinute}/min`),
    el('td', { title: s.last ? P.fmtTime(s.last.server) : '' }, s.last ? `${P.fmtDuration(age)} ago` : '—'),
    el('td', {}, `${s.retentionHours} h `, el('button', { type: 'button', class: 'small', onclick: changeRetention }, 'change')),
    el('td', {}, s.remote ? '…' : `${P.fmtBytes(s.storedBytes)} · ${s.storedFragments} fragments`),
    el('td', { class: 'kinds', title: s.error || '' }, kindsOf(s) || (s.error ? '?' : s.remote ? '…' : '—')),
    el('td', {}, el('button', { type: 'button', class: 'small danger', onclick: del }, 'delete')));
}

// previews are refreshed at most every 10 s per stream; a row shows the
// last one while the next is drawn (no blank picture at each refresh or
// page turn), and a stream has one request in flight at most
const previewCache = new Map();
async function loadPreview(img, s) {
  const c = previewCache.get(s.name) || { url: '', at: 0, pending: null };
  previewCache.set(s.name, c);
  if (c.url) img.src = c.url;
  if (Date.now() - c.at < 10000) return;
  if (!c.pending) {
    // the last minute, or all of a younger stream, so that it fills the picture
    const to = s.last.producer + s.last.durationMs;
    const from = Math.max(to - 60000, s.first ? s.first.producer : to - 60000);
    c.pending = api.getBlob('/v1/preview', { stream: s.name, from: api.ns(from), to: api.ns(to), width: 160, height: 40 })
      .then((blob) => {
        const old = c.url;
        c.url = URL.createObjectURL(blob);
        c.at = Date.now();
        // rows still loading the old picture get it: let it go later
        if (old) setTimeout(() => URL.revokeObjectURL(old), 30000);
      })
      .finally(() => { c.pending = null; });
  }
  try {
    await c.pending;
    img.src = c.url;
  } catch (e) {
    img.title = e.message;
  }
}

// ---------------------------------------------------------------- a stream

const SPANS = [['10 s', 10e3], ['1 min', 60e3], ['10 min', 600e3], ['1 h', 3600e3], ['6 h', 6 * 3600e3], ['1 d', 86400e3], ['1 w', 7 * 86400e3]];

function streamPage(name, params) {
  const st = { from: Number(params.get('from')), to: Number(params.get('to')), cursor: Number(params.get('cursor')), live: params.get('live') === '1' };
  const ctx = { stream: name, liveSpan: 10000, setCursor: (t) => { st.cursor = t; changed(true); } };
  // ?budget=N: the samples a plot fetches exactly before it shows the
  // sampled envelope instead (default SAMPLE_BUDGET, views.js).
  if (Number(params.get('budget')) > 0) ctx.sampleBudget = Number(params.get('budget'));
  // ?wait=MS: how long a plot past it waits for the exact min/max on whole
  // seconds before it draws the sampled envelope (default SUMMARY_WAIT).
  if (Number(params.get('wait')) > 0) ctx.summaryWait = Number(params.get('wait'));
  // storedFraction: the part of [a, b) that holds fragments, from the
  // coverage last fetched (1 while none is known), so that a plot knows how
  // many samples it is about to ask the server to decode.
  ctx.storedFraction = (a, b) => {
    if (!coverage || coverage.from > a * 1 || coverage.to < b) return 1;
    let held = 0;
    for (const s of coverage.spans) held += Math.max(0, Math.min(b, s.end) - Math.max(a, s.start));
    return held / (b - a);
  };
  const title = el('h2', {}, name, ' ');
  const state = el('span', { class: 'state' });
  title.append(state);
  const cursorText = el('output', { class: 'cursor-time', id: 'cursor-time' });
  const rangeText = el('span', { class: 'range' });
  const tl = el('canvas', { class: 'timeline', id: 'timeline' });
  const liveBtn = el('button', { type: 'button', id: 'live', onclick: () => setLive(!st.live) }, '● Live');
  const zoom = (f) => { const c = st.cursor; const w = (st.to - st.from) * f; st.from = c - (c - st.from) * f; st.to = st.from + w; changed(); };
  const step = (k) => { const w = st.to - st.from; st.from += k * w / 2; st.to += k * w / 2; st.cursor += k * w / 2; changed(); };
  const controls = el('div', { class: 'controls' },
    el('button', { type: 'button', title: 'back half a view', onclick: () => step(-1) }, '◀'),
    el('button', { type: 'button', title: 'forward half a view', onclick: () => step(1) }, '▶'),
    el('button', { type: 'button', title: 'zoom in on the cursor', onclick: () => zoom(0.5) }, 'zoom +'),
    el('button', { type: 'button', title: 'zoom out', onclick: () => zoom(2) }, 'zoom −'),
    ...SPANS.map(([label, ms]) => el('button', { type: 'button', class: 'span', onclick: () => { st.from = st.cursor - ms / 2; st.to = st.from + ms; changed(); } }, label)),
    el('button', { type: 'button', onclick: () => { if (info && info.first) { st.from = info.first.producer; st.to = info.last.producer + info.last.durationMs; changed(); } } }, 'all'),
    liveBtn, ' cursor ', cursorText, ' ', rangeText);
  const dl = downloadBar(ctx, st);
  const views = el('div', { class: 'views' });
  app.replaceChildren(el('p', {}, el('a', { href: '#/' }, '← streams')), title, controls, tl,
    el('p', { class: 'hint' }, 'Click: cursor · drag: pan · wheel: zoom · shift-drag: select a range to download'), dl.el, views);

  let info = null, coverage = null, trackViews = [], stopped = false;
  let feed = null, liveTimer = null, covTimer = null, sel = null;

  async function load() {
    try {
      info = await api.getJSON('/v1/stream', { stream: name });
    } catch (e) { banner(e.message); return; }
    state.textContent = info.state;
    state.className = `state ${info.state}`;
    if (!(st.to > st.from)) {
      const end = info.last ? info.last.producer + info.last.durationMs : Date.now();
      st.to = end; st.from = end - 60e3;
      if (info.first && info.first.producer > st.from) st.from = info.first.producer;
      if (st.to - st.from < 1000) st.from = st.to - 1000;
    }
    if (!Number.isFinite(st.cursor) || st.cursor < st.from || st.cursor > st.to) st.cursor = st.from + (st.to - st.from) / 2;
    dl.setRange(st.from, st.to);
    trackViews = (info.tracks || []).map((t) => viewFor(ctx, t));
    views.replaceChildren(...trackViews.map((v) => v.el));
    if (!trackViews.length) views.append(el('p', {}, 'This stream holds no fragments yet, so its tracks are not known.'));
    if (st.live) setLive(true); else changed();
  }

  let pending = null;
  function changed(cursorOnly) {
    rangeText.textContent = `${P.fmtTime(st.from)} – ${P.fmtTime(st.to)} (${P.fmtDuration(st.to - st.from)})`;
    cursorText.textContent = P.fmtTime(st.cursor);
    history.replaceState(null, '', `#/stream/${encodeURIComponent(name)}?from=${Math.round(st.from)}&to=${Math.round(st.to)}&cursor=${Math.round(st.cursor)}${st.live ? '&live=1' : ''}${ctx.sampleBudget ? '&budget=' + ctx.sampleBudget : ''}${ctx.summaryWait ? '&wait=' + ctx.summaryWait : ''}`);
    drawTimeline();
    if (st.live) return;
    clearTimeout(pending);
    pending = setTimeout(async () => {
      await fetchCoverage(); // first: the plots size their requests by what is stored
      const v = { from: st.from, to: st.to, cursor: st.cursor };
      for (const tv of trackViews) {
        if (cursorOnly && tv.draw && tv instanceof Object && tv.data !== undefined && tv.constructor.name !== 'Audio') { tv.view = v; tv.draw(); continue; }
        tv.update(v);
      }
    }, cursorOnly ? 30 : 120);
  }

  async function fetchCoverage() {
    const span = st.to - st.from;
    try {
      coverage = await api.getJSON('/v1/coverage', { stream: name, from: api.ns(st.from - span), to: api.ns(st.to + span) });
      drawTimeline();
    } catch (e) { banner(e.message); }
  }

  function drawTimeline() {
    const { g, w, h } = P.setup(tl, 64);
    const f = new P.Frame(w, h, st.from, st.to, 0, 1, { l: 64, r: 12, t: 6, b: 20 });
    P.axes(g, f, '', false);
    g.fillStyle = '#e9edf2';
    g.fillRect(f.m.l, f.m.t, f.pw, f.ph);
    g.fillStyle = '#3f7fbf';
    let shown = 0;
    for (const s of (coverage && coverage.spans) || []) {
      if (s.end < st.from || s.start > st.to) continue;
      const x0 = Math.max(f.m.l, f.x(s.start)), x1 = Math.min(f.m.l + f.pw, f.x(s.end));
      g.fillRect(x0, f.m.t + 4, Math.max(1, x1 - x0), f.ph - 8);
      shown++;
    }
    if (sel) {
      g.fillStyle = 'rgba(255, 160, 0, 0.35)';
      g.fillRect(f.x(sel.from), f.m.t, f.x(sel.to) - f.x(sel.from), f.ph);
    }
    g.fillStyle = P.AXIS; g.textAlign = 'left'; g.textBaseline = 'middle';
    g.fillText('stored', 4, f.m.t + f.ph / 2);
    if (!st.live) P.cursorLine(g, f, st.cursor);
    tl.dataset.spans = String(shown);
    tl.frame = f;
  }

  // timeline interaction
  let drag = null;
  tl.addEventListener('pointerdown', (e) => {
    tl.setPointerCapture(e.pointerId);
    drag = { x: e.offsetX, from: st.from, to: st.to, moved: false, select: e.shiftKey };
  });
  tl.addEventListener('pointermove', (e) => {
    if (!drag) return;
    const f = tl.frame;
    const dx = e.offsetX - drag.x;
    if (Math.abs(dx) > 3) drag.moved = true;
    if (!drag.moved) return;
    if (drag.select) {
      const a = f.t(drag.x), b = f.t(e.offsetX);
      sel = { from: Math.min(a, b), to: Math.max(a, b) };
      dl.setRange(sel.from, sel.to);
      drawTimeline();
      return;
    }
    if (st.live) setLive(false);
    const dt = (dx / f.pw) * (drag.to - drag.from);
    st.from = drag.from - dt; st.to = drag.to - dt;
    changed();
  });
  tl.addEventListener('pointerup', (e) => {
    if (drag && !drag.moved && tl.frame) { st.cursor = tl.frame.t(e.offsetX); if (st.live) setLive(false); changed(true); }
    drag = null;
  });
  tl.addEventListener('wheel', (e) => {
    e.preventDefault();
    const f = tl.frame;
    if (!f) return;
    const t = f.t(e.offsetX);
    const k = Math.exp(Math.sign(e.deltaY) * 0.2);
    const span = Math.min(Math.max((st.to - st.from) * k, 10), 5 * 365 * 86400e3);
    st.from = t - ((t - st.from) / (st.to - st.from)) * span;
    st.to = st.from + span;
    changed();
  }, { passive: false });
  function onKey(e) {
    if (e.target.closest && e.target.closest('input, select, textarea')) return;
    const w = st.to - st.from;
    if (e.key === 'ArrowLeft') { st.cursor -= w / 100; changed(true); } else if (e.key === 'ArrowRight') { st.cursor += w / 100; changed(true); }
  }
  document.addEventListener('keydown', onKey);

  // live mode: the views follow the pushed frames over the last liveSpan.
  async function setLive(on) {
    st.live = on;
    liveBtn.classList.toggle('on', on);
    if (feed) { feed.close(); feed = null; }
    cancelAnimationFrame(liveTimer);
    clearInterval(covTimer);
    if (!on) { changed(); return; }
    const span = ctx.liveSpan;
    window.__sensoriumLive = window.__sensoriumLive || { frames: 0, latencies: [], draws: 0 };
    const stats = window.__sensoriumLive;
    const open = async () => {
      const url = await api.presigned('/v1/live', { stream: name }, 600);
      if (!st.live || stopped) return;
      feed = new EventSource(url);
      feed.addEventListener('frame', (m) => {
        const ev = JSON.parse(m.data);
        stats.frames++;
        const v = trackViews.find((x) => x.track.number === ev.track);
        if (v) { v.live(ev); v.pendingLatency = ev; }
      });
      feed.addEventListener('dropped', (m) => { stats.dropped = (stats.dropped || 0) + JSON.parse(m.data).frames; });
      feed.onerror = () => {
        // A presigned URL expires: sign a new one rather than retry the old.
        if (feed && feed.readyState === EventSource.CLOSED && st.live) { feed = null; setTimeout(open, 1000); }
      };
    };
    await open();
    const frame = () => {
      if (!st.live || stopped) return;
      const now = Date.now();
      st.to = now; st.from = now - span; st.cursor = now;
      cursorText.textContent = 'live';
      for (const v of trackViews) {
        v.drawLive(st.from, st.to);
        if (v.pendingLatency) {
          // from the end of the frame (when its producer could put it) to its paint
          stats.latencies.push(Date.now() - (v.pendingLatency.time + v.pendingLatency.duration));
          if (stats.latencies.length > 1000) stats.latencies.shift();
          v.pendingLatency = null;
          stats.draws++;
        }
      }
      drawTimeline();
      liveTimer = requestAnimationFrame(frame);
    };
    liveTimer = requestAnimationFrame(frame);
    const cov = () => {
      fetchCoverage();
      api.getJSON('/v1/stream', { stream: name }).then((i) => { state.textContent = i.state; state.className = `state ${i.state}`; }).catch(() => {});
    };
    cov();
    covTimer = setInterval(cov, 2000);
  }

  load();
  return {
    stop() {
      stopped = true;
      if (feed) feed.close();
      cancelAnimationFrame(liveTimer);
      clearInterval(covTimer);
      clearTimeout(pending);
      document.removeEventListener('keydown', onKey);
      for (const v of trackViews) { if (v.timer) clearInterval(v.timer); v.stop(); }
    },
  };
}

// ---------------------------------------------------------------- downloads

// downloadBar saves a range of the stream: Arrow (the query's IPC stream),
// CSV (written here from it), MKV (GetMediaForFragmentList of the
// fragments ListFragments gives for the range).
function downloadBar(ctx, st) {
  const from = el('input', { name: 'dl-from', size: '28' });
  const to = el('input', { name: 'dl-to', size: '28' });
  const track = el('input', { name: 'dl-track', type: 'number', min: '1', value: '1', class: 'short' });
  const formats = { arrows: 'Arrow (IPC stream)', parquet: 'Parquet', csv: 'CSV', mkv: 'MKV (fragments)', mp4: 'MP4 (video and audio, GetClip)' };
  const fmt = el('select', { name: 'dl-format' }, ...Object.entries(formats).map(([f, label]) => el('option', { value: f }, label)));
  const status = el('span', { class: 'status', id: 'dl-status' });
  const useView = el('button', { type: 'button', class: 'small', onclick: () => setRange(st.from, st.to) }, 'use the view');
  const go = el('button', { type: 'submit' }, 'Download');
  const form = el('form', { class: 'download' }, 'Download from ', from, ' to ', to, ' ', useView, ' track ', track, ' as ', fmt, ' ', go, ' ', status);
  function setRange(a, b) { from.value = rfc3339(a); to.value = rfc3339(b); }
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    status.textContent = 'preparing…';
    status.classList.remove('error');
    try {
      const a = Date.parse(from.value), b = Date.parse(to.value);
      if (!(b > a)) throw new Error('the range must end after it starts');
      const name = `${ctx.stream}_${from.value.replace(/[:]/g, '')}`;
      let blob, file;
      if (fmt.value === 'mkv') {
        blob = await downloadMKV(ctx.stream, a, b);
        file = name + '.mkv';
      } else if (fmt.value === 'mp4') {
        // GetClip: the fragments that start in the range, remuxed to MP4
        const { buffer, contentType } = await api.postBytes('/getClip', { StreamName: ctx.stream,
          ClipFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: a / 1000, EndTimestamp: b / 1000 } } });
        blob = new Blob([buffer], { type: contentType || 'video/mp4' });
        file = name + '.mp4';
      } else {
        // Arrow is POST /v1/query's answer as it is; Parquet and CSV the same
        // query written by the server (POST /v1/export), as `sensorium query
        // -o` writes them.
        const q = { stream: ctx.stream, track: Number(track.value), start: from.value, end: to.value };
        const path = fmt.value === 'arrows' ? '/v1/query' : `/v1/export?format=${fmt.value}`;
        const { buffer, contentType, trailerError } = await api.postBytes(path, q);
        if (trailerError) throw new Error(trailerError);
        const tail = new Uint8Array(buffer.slice(-4));
        if (fmt.value === 'parquet' && String.fromCharCode(...tail) !== 'PAR1') throw new Error('the export was cut short (no Parquet footer): the server failed part way');
        blob = new Blob([buffer], { type: contentType });
        file = `${name}.${fmt.value}`;
      }
      // what was saved, for the browser test: set before the status says
      // so, which is what the test waits for (set after it, a test could
      // read the previous download's)
      window.__sensoriumDownload = { file, size: blob.size, bytes: new Uint8Array(await blob.arrayBuffer()) };
      save(blob, file);
      status.textContent = `${file}: ${P.fmtBytes(blob.size)}`;
    } catch (x) {
      status.textContent = x.message;
      status.classList.add('error');
    }
  });
  return { el: form, setRange };
}

async function downloadMKV(stream, a, b) {
  const numbers = [];
  let token;
  do {
    const page = await api.post('/listFragments', token ? { StreamName: stream, NextToken: token } : {
      StreamName: stream, MaxResults: 1000,
      FragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: a / 1000, EndTimestamp: b / 1000 } },
    });
    for (const f of page.Fragments || []) numbers.push(f);
    token = page.NextToken;
  } while (token);
  if (!numbers.length) throw new Error('no fragments in that range');
  numbers.sort((x, y) => (BigInt(x.FragmentNumber) < BigInt(y.FragmentNumber) ? -1 : 1));
  const parts = [];
  for (let i = 0; i < numbers.length; i += 1000) {
    const { buffer } = await api.postBytes('/getMediaForFragmentList', { StreamName: stream, Fragments: numbers.slice(i, i + 1000).map((f) => f.FragmentNumber) });
    parts.push(buffer);
  }
  return new Blob(parts, { type: 'video/x-matroska' });
}

function save(blob, file) {
  const a = el('a', { href: URL.createObjectURL(blob), download: file });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
}

// ---------------------------------------------------------------- usage

function usagePage() {
  const body = el('div');
  const days = el('select', { name: 'usage-days' }, ...[1, 7, 30, 90].map((d) => el('option', { value: String(d) }, `last ${d} day${d > 1 ? 's' : ''}`)));
  days.value = '30';
  days.addEventListener('change', load);
  app.replaceChildren(el('h2', {}, 'Usage ', days), body);
  async function load() {
    const to = Date.now(), from = to - Number(days.value) * 86400e3;
    try {
      const [u, o] = await Promise.all([
        api.getJSON('/v1/usage', { from: new Date(from).toISOString(), to: new Date(to).toISOString() }),
        allStreams().catch(() => ({ streams: [] })),
      ]);
      // undefined where not known here: a stream another cluster node holds
      const storedNow = Object.fromEntries(o.streams.map((s) => [s.name, s.storedBytes]));
      const row = (name, c, now) => el('tr', { 'data-stream': name }, el('td', {}, name), el('td', {}, P.fmtBytes(c.BytesIn)),
        el('td', {}, (c.FragmentsIn || 0).toLocaleString()), el('td', {}, P.fmtBytes(c.BytesOutTotal)),
        el('td', { class: 'kinds' }, Object.entries(c.BytesOut || {}).filter(([, v]) => v).map(([k, v]) => `${k.toLowerCase()} ${P.fmtBytes(v)}`).join(', ') || '—'),
        el('td', {}, now === undefined ? '' : P.fmtBytes(now)), el('td', {}, (c.StoredGBMonths || 0).toPrecision(3)),
        el('td', {}, (c.StoredFragmentHours || 0).toLocaleString(undefined, { maximumFractionDigits: 1 })));
      const rows = (u.Streams || []).map((s) => row(s.StreamName, s, storedNow[s.StreamName]));
      const known = o.streams.every((s) => s.storedBytes !== undefined);
      if (u.Total) rows.push(row('total', u.Total, known ? o.streams.reduce((a, s) => a + s.storedBytes, 0) : undefined));
      body.replaceChildren(el('p', {}, `Whole UTC hours from ${P.fmtTime(Date.parse(u.From))} to ${P.fmtTime(Date.parse(u.To))}: what the managed service bills — data in, data out by API (GetMedia, queries, clips, HLS, the console), data stored over time.`),
        el('table', { class: 'streams usage' }, el('thead', {}, el('tr', {}, ...['stream', 'bytes in', 'fragments in', 'bytes out', 'out by API', 'stored now', 'stored GB-months', 'fragment-hours stored'].map((h) => el('th', {}, h)))), el('tbody', {}, ...rows)));
    } catch (e) {
      body.replaceChildren(el('p', {}, e.status === 404 ? 'This server does not meter usage (GET /v1/usage is not there).' : e.message));
    }
  }
  load();
  return {};
}

// allStreams reads every page of the overview (the usage page wants each
// stream's stored bytes now), 1,000 streams a request.
async function allStreams() {
  const out = { streams: [] };
  let next;
  do {
    const o = await api.getJSON('/v1/overview', { limit: 1000, next });
    out.streams.push(...o.streams);
    next = o.next;
  } while (next);
  return out;
}

main();
