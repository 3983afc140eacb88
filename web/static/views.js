// One view per kind of track, each drawn as the people who use that kind
// expect: plots with units for sampled signals (min/max per pixel from the
// server's aggregate shape), audio with a spectrogram and playback, LIDAR
// sweeps from above, RADAR detections and range–Doppler maps, video key
// frames, opaque frames as a timeline with hex.
//
// A view has update(view) (a new range or cursor: fetch and draw), live(ev)
// (a pushed frame, live.go's event) and drawLive(from, to) (redraw for live
// mode's moving range). Data comes from POST /v1/query like any client's.

import { query, ns, post, getJSON } from './api.js';
import * as P from './plot.js';

export function rfc3339(ms) {
  const whole = Math.floor(ms);
  const iso = new Date(whole).toISOString(); // ...sss Z
  const sub = Math.round((ms - whole) * 1e6);
  return iso.slice(0, -1) + String(sub).padStart(6, '0') + 'Z';
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}
export { el };

function f32(b64) {
  const s = atob(b64);
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return new Float32Array(b.buffer);
}

// SAMPLE_BUDGET is the samples (all channels) a plot fetches without asking:
// about 5 s of the server's decoding.
const SAMPLE_BUDGET = 200e6;

// SUMMARY_WAIT is how long a plot past SAMPLE_BUDGET waits for the exact
// min/max on whole seconds before it ends the request and draws the
// sampled envelope: from the server's per-second summaries a day of the
// pump takes about 0.4 s (query/SUMMARIES.md); a server that keeps none
// (serve --summaries=false) or has not summarised the range yet would
// decode every sample, which is what the budget is for.
const SUMMARY_WAIT = 3000;

// secondsGrid is the per-pixel window of [from, to) snapped to whole
// seconds, the grid on which the server answers an aggregate from its
// per-second summaries rather than decode every sample (query/SUMMARIES.md:
// anchor a multiple of 1e9 ns, window length and hop whole seconds of an
// integer rate, kept for tracks of 1,000 samples a second or more over
// their channels): ⌊pixel span⌋ seconds a window, from `from` floored to a
// whole second to `to` ceiled to one, so that every second of the range is
// whole. null when a pixel spans less than a second, or the server keeps
// no summaries of the track.
export function secondsGrid(track, from, to, px) {
  const rate = track.sampleRate, channels = (track.channels || []).length;
  if (!Number.isInteger(rate) || rate < 1 || rate * channels < 1000) return null;
  const secs = Math.floor((to - from) / 1000 / px);
  if (secs < 1) return null;
  return { start: Math.floor(from / 1000) * 1000, end: Math.ceil(to / 1000) * 1000, secs, length: secs * rate };
}

function rateText(r) {
  return r >= 1000 ? `${(r / 1000).toFixed(r % 1000 ? 1 : 0)} kHz` : `${r} Hz`;
}

// Base holds what every view shares: its panel, its title, its status line.
class Base {
  constructor(ctx, track) {
    this.ctx = ctx;
    this.track = track;
    this.gen = 0;
    this.status = el('span', { class: 'status' });
    const title = `Track ${track.number}${track.name ? ' · ' + track.name : ''} · ${track.kind}` +
      (track.sampleRate ? ' · ' + rateText(track.sampleRate) : '') + (track.rows ? ` · ${track.rows}×${track.cols}` : '') +
      (track.mediaType ? ' · ' + track.mediaType : '');
    this.body = el('div', { class: 'view-body' });
    this.el = el('section', { class: `view view-${track.kind}`, 'data-track': String(track.number) },
      el('h3', {}, title, ' ', this.status), this.body);
  }
  setStatus(text, isError) {
    this.status.textContent = text || '';
    this.status.classList.toggle('error', !!isError);
  }
  // run fetches for the newest update only: an older one's answer is dropped.
  // A newer update aborts the older one's requests, so that the server stops
  // decoding what nobody will see.
  async run(fn) {
    const g = ++this.gen;
    if (this.abort) this.abort.abort();
    const abort = (this.abort = new AbortController());
    this.setStatus('loading…');
    try {
      const t0 = performance.now();
      const out = await fn(() => g !== this.gen);
      if (g === this.gen) this.setStatus(out === undefined ? `${(performance.now() - t0).toFixed(0)} ms` : out);
    } catch (e) {
      if (g === this.gen && !abort.signal.aborted) this.setStatus(e.message, true);
    }
  }
  q(req, signal) { return query(Object.assign({ stream: this.ctx.stream, track: this.track.number }, req), signal || (this.abort && this.abort.signal)); }
  // qWithin is q that gives up after ms: null then (the request ended, and
  // with it the server's work on it).
  async qWithin(req, ms) {
    const view = this.abort.signal;
    const mine = new AbortController();
    const end = () => mine.abort();
    view.addEventListener('abort', end, { once: true });
    const timer = setTimeout(end, ms);
    try {
      return await this.q(req, mine.signal);
    } catch (e) {
      if (mine.signal.aborted && !view.aborted) return null;
      throw e;
    } finally {
      clearTimeout(timer);
      view.removeEventListener('abort', end);
    }
  }
  stop() { if (this.abort) this.abort.abort(); this.gen++; }
  live() {}
  drawLive() {}
}

// ---------------------------------------------------------------- sampled

// Sampled draws scalar, IMU and audio channels, one plot per unit with its
// channels overlaid. Wide ranges come as the aggregate shape's min and max
// per window, the window chosen so that there is about one per pixel — a
// whole number of seconds on whole seconds when a pixel spans a second or
// more (secondsGrid), which the server reads from its summaries; short
// ranges as the samples themselves.
export class Sampled extends Base {
  constructor(ctx, track) {
    super(ctx, track);
    const groups = new Map();
    (track.channels || []).forEach((c, i) => {
      const u = c.unit || '';
      if (!groups.has(u)) groups.set(u, []);
      groups.get(u).push({ name: c.name, color: P.COLORS[i % P.COLORS.length] });
    });
    this.groups = [...groups].map(([unit, chans]) => {
      const canvas = el('canvas', { class: 'plot', 'data-unit': unit });
      const legend = el('div', { class: 'legend' });
      chans.forEach((c) => { c.label = el('span', { class: 'chan' }); c.label.style.setProperty('--c', c.color); legend.append(c.label); });
      this.body.append(el('div', { class: 'plot-wrap' }, canvas, legend));
      return { unit, chans, canvas, legend };
    });
    this.data = null;
    this.ring = new Map(); // live: channel → {t, min, max} arrays
  }

  async update(v) {
    this.view = v;
    await this.run(async (stale) => {
      const now = Date.now();
      const to = Math.min(v.to, now + 1000);
      if (to <= v.from) { this.data = null; this.draw(); return 'nothing here yet'; }
      const px = Math.max(100, (this.groups[0]?.canvas.clientWidth || 800) - 76);
      const n = (this.track.sampleRate * (to - v.from)) / 1000;
      // The aggregate shape decodes every sample of the range (about 40 M a
      // second on a server's four decode workers) unless it can read the
      // server's per-second summaries: past SAMPLE_BUDGET the plot waits to
      // be asked, rather than hold the server for minutes.
      const stored = this.ctx.storedFraction ? this.ctx.storedFraction(v.from, to) : 1;
      const over = n * stored * (this.track.channels || []).length > (this.ctx.sampleBudget || SAMPLE_BUDGET) && !this.forced;
      this.forced = false;
      // On whole seconds the exact min/max come from the server's
      // summaries, fast whatever the range: asked for first, past the
      // budget too, but then for SUMMARY_WAIT only.
      const grid = secondsGrid(this.track, v.from, to, px);
      const wait = this.ctx.summaryWait || SUMMARY_WAIT;
      let data = null;
      if (grid) {
        const req = { start: rfc3339(grid.start), end: rfc3339(grid.end), shape: 'aggregate',
          window: { length: grid.length, hop: grid.length, anchor: rfc3339(grid.start) }, aggregates: ['min', 'max'] };
        const t = over ? await this.qWithin(req, wait) : await this.q(req);
        if (stale()) return;
        if (t) {
          data = { raw: false, t: t.cols.start, ch: {}, rows: t.rows, step: grid.secs * 1000, window: `${grid.secs} s` };
          for (const c of this.track.channels) if (t.cols[c.name + '_min']) data.ch[c.name] = { min: t.cols[c.name + '_min'], max: t.cols[c.name + '_max'] };
        }
      }
      if (!data && over) {
        // GET /v1/envelope: one frame decoded per pixel column, in about a
        // second whatever the range — a sample of it, labelled so.
        const e = await getJSON('/v1/envelope', { stream: this.ctx.stream, track: this.track.number, from: ns(v.from), to: ns(to), columns: px },
          this.abort && this.abort.signal);
        if (stale()) return;
        // each column is drawn at its own place (its frame may be wider)
        const w = (to - v.from) / e.columns.length;
        const cols = e.columns.map((c, i) => Object.assign({ at: v.from + (i + 0.5) * w }, c)).filter((c) => c.min);
        const sampled = { raw: false, sampled: true, t: Float64Array.from(cols, (c) => c.at), ch: {}, rows: cols.length, step: w };
        e.channels.forEach((name, k) => { sampled.ch[name] = { min: Float64Array.from(cols, (c) => c.min[k]), max: Float64Array.from(cols, (c) => c.max[k]) }; });
        this.data = sampled;
        this.draw();
        this.exactCost = n * stored;
        return `sampled: one frame per pixel column, not every sample (${fmtN(Math.round(n * stored))} per channel here${grid ? `; the exact min/max did not come in ${wait / 1000} s` : ''}) —`;
      }
      if (!data && n <= 3 * px) {
        const t = await this.q({ start: rfc3339(v.from), end: rfc3339(to) });
        if (stale()) return;
        data = { raw: true, t: t.cols.time, ch: {}, rows: t.rows, step: 1000 / this.track.sampleRate };
        for (const c of this.track.channels) if (t.cols[c.name]) data.ch[c.name] = { min: t.cols[c.name], max: t.cols[c.name] };
      } else if (!data) {
        const len = Math.max(1, Math.floor(n / px));
        const t = await this.q({ start: rfc3339(v.from), end: rfc3339(to), shape: 'aggregate', window: { length: len, hop: len }, aggregates: ['min', 'max'] });
        if (stale()) return;
        data = { raw: false, t: t.cols.start, ch: {}, rows: t.rows, step: (len * 1000) / this.track.sampleRate, window: `${len.toLocaleString()} samples` };
        for (const c of this.track.channels) if (t.cols[c.name + '_min']) data.ch[c.name] = { min: t.cols[c.name + '_min'], max: t.cols[c.name + '_max'] };
      }
      this.data = data;
      this.draw();
      return `${data.rows.toLocaleString()} ${data.raw ? 'samples' : `windows of ${data.window} (min/max)`}`;
    });
    if (this.data && this.data.sampled && !this.status.classList.contains('error')) this.offerAnyway(this.exactCost);
  }

  offerAnyway(n) {
    const b = el('button', { type: 'button', class: 'small', onclick: () => { this.forced = true; b.remove(); this.update(this.view); } },
      `exact min/max (≈ ${Math.ceil((n * this.track.channels.length) / 40e6)} s of decoding on the server)`);
    this.status.append(' ', b);
  }

  // draw plots this.data over the view, or the live ring over [from, to).
  draw(liveFrom, liveTo) {
    const v = this.view;
    const from = liveFrom ?? v.from, to = liveTo ?? v.to;
    const src = liveFrom !== undefined ? this.liveSeries(from) : this.data;
    for (const grp of this.groups) {
      const { g, w, h } = P.setup(grp.canvas, 170);
      let lo = Infinity, hi = -Infinity;
      if (src) {
        for (const c of grp.chans) {
          const s = src.ch[c.name];
          if (!s) continue;
          for (let i = 0; i < s.min.length; i++) {
            if (src.t[i] < from || src.t[i] > to) continue;
            const a = s.min[i], b = s.max[i];
            if (a < lo) lo = a;
            if (b > hi) hi = b;
          }
        }
      }
      if (!(hi >= lo)) { lo = -1; hi = 1; }
      const padv = (hi - lo) * 0.05 || Math.abs(hi) * 0.05 || 1;
      const f = new P.Frame(w, h, from, to, lo - padv, hi + padv);
      P.axes(g, f, grp.unit);
      if (!src || !src.rows) { P.message(g, w, h, liveFrom !== undefined ? 'waiting for live frames…' : 'no samples in this range'); }
      g.save();
      g.beginPath(); g.rect(f.m.l, f.m.t, f.pw, f.ph); g.clip();
      if (src) for (const c of grp.chans) if (src.ch[c.name]) envelope(g, f, src.t, src.ch[c.name].min, src.ch[c.name].max, c.color, src.step);
      g.restore();
      if (liveFrom === undefined) P.cursorLine(g, f, v.cursor);
      for (const c of grp.chans) c.label.textContent = `${c.name} ${this.readout(src, c.name, liveFrom !== undefined ? to : v.cursor)}${grp.unit ? ' ' + grp.unit : ''}`;
    }
  }

  readout(src, name, t) {
    const s = src && src.ch[name];
    if (!s || !src.t.length) return '';
    let lo = 0, hi = src.t.length - 1;
    while (lo < hi) { const m = (lo + hi + 1) >> 1; if (src.t[m] <= t) lo = m; else hi = m - 1; }
    if (Math.abs(src.t[lo] - t) > Math.max(2 * src.step + 1, this.liveStep ? 1000 : 0)) return '';
    const a = s.min[lo], b = s.max[lo];
    return a === b ? P.fmtValue(a) : `${P.fmtValue(a)}…${P.fmtValue(b)}`;
  }

  live(ev) {
    if (!ev.columns) return;
    const keep = (this.ctx.liveSpan || 10000) + 2000;
    for (const c of ev.columns) {
      let r = this.ring.get(c.name);
      if (!r) { r = { t: [], min: [], max: [] }; this.ring.set(c.name, r); }
      if (c.values) {
        const v = f32(c.values);
        for (let i = 0; i < v.length; i++) { r.t.push(ev.t0 + i * ev.step); r.min.push(v[i]); r.max.push(v[i]); }
      } else if (c.min) {
        const mn = f32(c.min), mx = f32(c.max);
        for (let i = 0; i < mn.length; i++) { r.t.push(ev.t0 + i * ev.bucket); r.min.push(mn[i]); r.max.push(mx[i]); }
      }
      const cut = r.t.findIndex((t) => t >= ev.time - keep);
      if (cut > 0) { r.t.splice(0, cut); r.min.splice(0, cut); r.max.splice(0, cut); }
    }
    this.liveStep = ev.bucket || ev.step;
  }

  liveSeries() {
    const first = this.ring.values().next().value;
    if (!first) return null;
    const s = { t: first.t, ch: {}, rows: first.t.length, step: this.liveStep || 1 };
    for (const [name, r] of this.ring) s.ch[name] = { min: r.min, max: r.max };
    return s;
  }

  drawLive(from, to) { this.draw(from, to); }
}

// envelope draws a channel as min–max bars binned to pixel columns, joined
// to their neighbours, and breaks it where the data has a gap (more than
// three steps between points).
function envelope(g, f, t, mins, maxs, color, step) {
  const n = t.length;
  if (!n) return;
  const pxPerStep = (step / (f.to - f.from)) * f.pw;
  g.strokeStyle = color;
  g.fillStyle = color;
  g.lineWidth = 1.2;
  if (pxPerStep >= 1.5) { // sparse: a line through the points (mid of min/max)
    g.beginPath();
    let pen = false;
    for (let i = 0; i < n; i++) {
      const x = f.x(t[i]), y = f.y((mins[i] + maxs[i]) / 2);
      if (!Number.isFinite(y)) { pen = false; continue; }
      if (pen && t[i] - t[i - 1] <= 3 * step) g.lineTo(x, y); else g.moveTo(x, y);
      pen = true;
    }
    g.stroke();
    return;
  }
  const cols = Math.ceil(f.pw) + 1;
  const lo = new Float32Array(cols).fill(Infinity), hi = new Float32Array(cols).fill(-Infinity);
  const lastT = new Float64Array(cols).fill(NaN);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(f.x(t[i]) - f.m.l);
    if (c < 0 || c >= cols) continue;
    if (mins[i] < lo[c]) lo[c] = mins[i];
    if (maxs[i] > hi[c]) hi[c] = maxs[i];
    lastT[c] = t[i];
  }
  let prev = -1;
  for (let c = 0; c < cols; c++) {
    if (!(hi[c] >= lo[c])) continue;
    let a = lo[c], b = hi[c];
    if (prev === c - 1 && prev >= 0) { a = Math.min(a, hi[prev]); b = Math.max(b, lo[prev]); } // join
    const y0 = f.y(b), y1 = f.y(a);
    g.fillRect(f.m.l + c, y0, 1, Math.max(1, y1 - y0));
    prev = c;
  }
}

// ---------------------------------------------------------------- audio

// Audio adds to the waveform a spectrogram of the range (when it is short
// enough to fetch its samples: 60 s) and playback from the cursor.
export class Audio extends Sampled {
  constructor(ctx, track) {
    super(ctx, track);
    this.spec = el('canvas', { class: 'plot spectrogram' });
    this.playBtn = el('button', { type: 'button', onclick: () => this.play() }, '▶ Play from cursor');
    this.body.append(el('div', { class: 'plot-wrap' }, this.spec, el('div', { class: 'legend' }, 'spectrogram (first channel, dB) ', this.playBtn)));
  }

  async update(v) {
    await super.update(v);
    const to = Math.min(v.to, Date.now());
    const { g, w, h } = P.setup(this.spec, 170);
    if (to - v.from > 60000) { P.message(g, w, h, 'zoom to 60 s or less for a spectrogram'); return; }
    try {
      const t = await this.q({ start: rfc3339(v.from), end: rfc3339(to), fields: [this.track.channels[0].name] });
      spectrogram(this.spec, t.cols[this.track.channels[0].name], t.cols.time, v.from, to, this.track.sampleRate, v.cursor);
    } catch (e) {
      P.message(g, w, h, e.message, '#b00020');
    }
  }

  async play() {
    if (this.source) { this.source.stop(); this.source = null; this.playBtn.textContent = '▶ Play from cursor'; return; }
    const v = this.view;
    const end = Math.min(v.cursor + 30000, v.to, Date.now());
    const t = await this.q({ start: rfc3339(v.cursor), end: rfc3339(end) });
    if (!t.rows) { this.setStatus('nothing to play at the cursor', true); return; }
    const ac = this.ac || (this.ac = new AudioContext());
    const chans = this.track.channels.map((c) => t.cols[c.name]);
    const buf = ac.createBuffer(chans.length, t.rows, this.track.sampleRate);
    chans.forEach((src, k) => {
      const scale = src instanceof Int16Array ? 1 / 32768 : src instanceof Int32Array ? 1 / 2147483648 : 1;
      const dst = buf.getChannelData(k);
      for (let i = 0; i < src.length; i++) dst[i] = src[i] * scale;
    });
    this.source = ac.createBufferSource();
    this.source.buffer = buf;
    this.source.connect(ac.destination);
    this.source.onended = () => { this.source = null; this.playBtn.textContent = '▶ Play from cursor'; };
    this.source.start();
    this.playBtn.textContent = '■ Stop';
  }
}

// fft: in-place radix-2 transform of re/im (length a power of two).
function fft(re, im) {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) { [re[i], re[j]] = [re[j], re[i]]; [im[i], im[j]] = [im[j], im[i]]; }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const a = (-2 * Math.PI) / len, wr = Math.cos(a), wi = Math.sin(a);
    for (let i = 0; i < n; i += len) {
      let cr = 1, ci = 0;
      for (let j = 0; j < len / 2; j++) {
        const ur = re[i + j], ui = im[i + j];
        const vr = re[i + j + len / 2] * cr - im[i + j + len / 2] * ci;
        const vi = re[i + j + len / 2] * ci + im[i + j + len / 2] * cr;
        re[i + j] = ur + vr; im[i + j] = ui + vi;
        re[i + j + len / 2] = ur - vr; im[i + j + len / 2] = ui - vi;
        const nr = cr * wr - ci * wi; ci = cr * wi + ci * wr; cr = nr;
      }
    }
  }
}

function spectrogram(canvas, samples, times, from, to, rate, cursor) {
  const { g, w, h } = P.setup(canvas, 170);
  const f = new P.Frame(w, h, from, to, 0, rate / 2);
  if (!samples || samples.length < 256) { P.axes(g, f, 'Hz'); P.message(g, w, h, 'too few samples for a spectrogram'); return; }
  const N = 512;
  const cols = Math.max(1, Math.floor(f.pw));
  const img = g.createImageData(cols, N / 2);
  const re = new Float64Array(N), im = new Float64Array(N);
  const win = Float64Array.from({ length: N }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (N - 1)));
  const mags = new Float32Array(cols * (N / 2)).fill(NaN);
  let top = -Infinity;
  for (let c = 0; c < cols; c++) {
    const t = f.t(f.m.l + c);
    // the sample at t (times are sorted)
    let lo = 0, hi = times.length - 1;
    while (lo < hi) { const m = (lo + hi) >> 1; if (times[m] < t) lo = m + 1; else hi = m; }
    if (Math.abs(times[lo] - t) > (2 * N * 1000) / rate || lo + N > samples.length) continue;
    for (let i = 0; i < N; i++) { re[i] = samples[lo + i] * win[i]; im[i] = 0; }
    fft(re, im);
    for (let k = 0; k < N / 2; k++) {
      const db = 10 * Math.log10(re[k] * re[k] + im[k] * im[k] + 1e-20);
      mags[c * (N / 2) + k] = db;
      if (db > top) top = db;
    }
  }
  for (let c = 0; c < cols; c++) {
    for (let k = 0; k < N / 2; k++) {
      const db = mags[c * (N / 2) + k];
      const [r, gg, b] = P.heat((db - (top - 80)) / 80);
      const o = ((N / 2 - 1 - k) * cols + c) * 4;
      img.data[o] = r; img.data[o + 1] = gg; img.data[o + 2] = b; img.data[o + 3] = Number.isFinite(db) ? 255 : 0;
    }
  }
  const off = new OffscreenCanvas(cols, N / 2);
  off.getContext('2d').putImageData(img, 0, 0);
  g.imageSmoothingEnabled = true;
  g.drawImage(off, f.m.l, f.m.t, f.pw, f.ph);
  P.axes(g, f, 'Hz');
  P.cursorLine(g, f, cursor);
}

// ---------------------------------------------------------------- LIDAR

// PointCloud draws the points of the last sweep period before the cursor
// (or the newest sweep, live) from above, x forward and y left, coloured
// by height, with play and pause stepping the cursor a sweep at a time.
export class PointCloud extends Base {
  constructor(ctx, track) {
    super(ctx, track);
    this.canvas = el('canvas', { class: 'plot square' });
    this.playBtn = el('button', { type: 'button', onclick: () => this.togglePlay() }, '▶ Play');
    this.body.append(el('div', { class: 'plot-wrap' }, this.canvas, el('div', { class: 'legend' }, 'bird’s-eye, coloured by z; ', this.playBtn)));
    this.period = 100; // ms a sweep covers; refined from the data
  }

  async update(v) {
    this.view = v;
    await this.run(async (stale) => {
      const t = await this.q({ start: rfc3339(v.cursor - this.period), end: rfc3339(v.cursor), fields: ['x', 'y', 'z'] });
      if (stale()) return;
      this.points = { x: t.cols.x, y: t.cols.y, z: t.cols.z, n: t.rows };
      this.draw(`${fmtN(t.rows)} points, ${P.fmtDuration(this.period)} before the cursor`);
      return `${fmtN(t.rows)} points`;
    });
  }

  draw(caption) {
    const { g, w, h } = P.setup(this.canvas, 420);
    const p = this.points;
    if (!p || !p.n) { P.message(g, w, h, 'no sweep before the cursor'); return; }
    let r = 1;
    for (let i = 0; i < p.n; i++) r = Math.max(r, Math.abs(p.x[i]), Math.abs(p.y[i]));
    r = Math.min(r, 120);
    const s = Math.min(w, h) / (2 * r * 1.05), cx = w / 2, cy = h / 2;
    let zl = Infinity, zh = -Infinity;
    for (let i = 0; i < p.n; i++) { zl = Math.min(zl, p.z[i]); zh = Math.max(zh, p.z[i]); }
    g.strokeStyle = P.GRID;
    for (let ring = 10; ring <= r; ring += ring < 40 ? 10 : 20) { g.beginPath(); g.arc(cx, cy, ring * s, 0, 2 * Math.PI); g.stroke(); }
    const img = g.getImageData(0, 0, g.canvas.width, g.canvas.height);
    const dpr = g.canvas.width / w;
    for (let i = 0; i < p.n; i++) {
      const X = Math.round((cx - p.y[i] * s) * dpr), Y = Math.round((cy - p.x[i] * s) * dpr);
      if (X < 0 || Y < 0 || X >= g.canvas.width || Y >= g.canvas.height) continue;
      const [cr, cg, cb] = P.heat((p.z[i] - zl) / (zh - zl || 1));
      const o = (Y * g.canvas.width + X) * 4;
      img.data[o] = cr; img.data[o + 1] = cg; img.data[o + 2] = cb; img.data[o + 3] = 255;
    }
    g.putImageData(img, 0, 0);
    g.fillStyle = P.AXIS;
    g.textAlign = 'left';
    g.textBaseline = 'top';
    g.fillText(caption || '', 6, 6);
    g.fillText(`rings every ${r > 40 ? 20 : 10} m · z ${P.fmtValue(zl)}…${P.fmtValue(zh)} m`, 6, 20);
  }

  togglePlay() {
    if (this.timer) { clearInterval(this.timer); this.timer = null; this.playBtn.textContent = '▶ Play'; return; }
    this.playBtn.textContent = '❚❚ Pause';
    this.timer = setInterval(() => this.ctx.setCursor(this.view.cursor + this.period), this.period);
  }

  live(ev) {
    const c = Object.fromEntries((ev.columns || []).map((k) => [k.name, f32(k.values)]));
    if (!c.x) return;
    this.points = { x: c.x, y: c.y, z: c.z, n: c.x.length };
    this.liveCaption = `${fmtN(ev.rows)} points (${fmtN(c.x.length)} drawn) at ${P.fmtTime(ev.time)}`;
    this.dirty = true;
  }

  drawLive() { if (this.dirty) { this.dirty = false; this.draw(this.liveCaption); } }
}

function fmtN(n) { return Number(n).toLocaleString(); }

// ---------------------------------------------------------------- RADAR

// Detections draws the detections of the last 200 ms before the cursor
// twice: from above (range and azimuth) and on range against radial
// velocity (the detections' range–Doppler view), sized by SNR.
export class Detections extends Base {
  constructor(ctx, track) {
    super(ctx, track);
    this.top = el('canvas', { class: 'plot half' });
    this.rd = el('canvas', { class: 'plot half' });
    this.body.append(el('div', { class: 'plot-wrap pair' }, this.top, this.rd),
      el('div', { class: 'legend' }, 'left: from above (x forward); right: range against radial velocity; dot size: SNR'));
    this.window = 200;
  }

  async update(v) {
    this.view = v;
    await this.run(async (stale) => {
      const t = await this.q({ start: rfc3339(v.cursor - this.window), end: rfc3339(v.cursor), fields: ['range', 'azimuth', 'radial_velocity', 'snr'] });
      if (stale()) return;
      this.dets = { r: t.cols.range, az: t.cols.azimuth, v: t.cols.radial_velocity, snr: t.cols.snr, n: t.rows };
      this.draw();
      return `${fmtN(t.rows)} detections in the ${this.window} ms before the cursor`;
    });
  }

  draw() {
    const d = this.dets;
    const a = P.setup(this.top, 300), b = P.setup(this.rd, 300);
    if (!d || !d.n) { P.message(a.g, a.w, a.h, 'no detections before the cursor'); P.message(b.g, b.w, b.h, ''); return; }
    let rmax = 10, vmax = 1, smax = 1;
    for (let i = 0; i < d.n; i++) { rmax = Math.max(rmax, d.r[i]); vmax = Math.max(vmax, Math.abs(d.v[i])); smax = Math.max(smax, d.snr[i]); }
    rmax *= 1.05; vmax *= 1.1;
    // from above
    {
      const { g, w, h } = a;
      const s = Math.min(w / (2 * rmax), (h - 20) / rmax), cx = w / 2, cy = h - 10;
      g.strokeStyle = P.GRID;
      for (let ring = 10; ring < rmax; ring += rmax > 100 ? 50 : 10) { g.beginPath(); g.arc(cx, cy, ring * s, Math.PI, 2 * Math.PI); g.stroke(); }
      g.fillStyle = P.COLORS[0];
      for (let i = 0; i < d.n; i++) {
        const x = cx - d.r[i] * Math.sin(d.az[i]) * s, y = cy - d.r[i] * Math.cos(d.az[i]) * s;
        g.beginPath(); g.arc(x, y, 1.5 + (3 * Math.max(0, d.snr[i])) / smax, 0, 2 * Math.PI); g.fill();
      }
      g.fillStyle = P.AXIS; g.textAlign = 'left'; g.textBaseline = 'top';
      g.fillText(`range to ${rmax.toFixed(0)} m`, 6, 6);
    }
    // range against radial velocity
    {
      const { g, w, h } = b;
      const m = { l: 48, r: 10, t: 8, b: 28 };
      const pw = w - m.l - m.r, ph = h - m.t - m.b;
      g.strokeStyle = P.AXIS; g.strokeRect(m.l + 0.5, m.t + 0.5, pw, ph);
      g.fillStyle = P.AXIS; g.textAlign = 'center'; g.textBaseline = 'top';
      for (const vv of P.valueTicks(-vmax, vmax, 6).ticks) { const x = m.l + ((vv + vmax) / (2 * vmax)) * pw; g.fillText(P.fmtValue(vv, 1), x, m.t + ph + 4); }
      g.fillText('radial velocity (m/s)', m.l + pw / 2, m.t + ph + 15);
      g.textAlign = 'right'; g.textBaseline = 'middle';
      for (const rr of P.valueTicks(0, rmax, 5).ticks) { const y = m.t + ph - (rr / rmax) * ph; g.fillText(`${rr} m`, m.l - 4, y); }
      g.fillStyle = P.COLORS[1];
      for (let i = 0; i < d.n; i++) {
        const x = m.l + ((d.v[i] + vmax) / (2 * vmax)) * pw, y = m.t + ph - (d.r[i] / rmax) * ph;
        g.beginPath(); g.arc(x, y, 1.5 + (3 * Math.max(0, d.snr[i])) / smax, 0, 2 * Math.PI); g.fill();
      }
    }
  }

  live(ev) {
    const c = Object.fromEntries((ev.columns || []).map((k) => [k.name, f32(k.values)]));
    if (!c.range) return;
    this.dets = { r: c.range, az: c.azimuth, v: c.radial_velocity, snr: c.snr, n: c.range.length };
    this.dirty = true;
  }

  drawLive() { if (this.dirty) { this.dirty = false; this.draw(); } }
}

// ArrayView draws a 2-D array frame (a range–Doppler map, a depth or
// thermal image) as a heat map: the newest frame before the cursor.
export class ArrayView extends Base {
  constructor(ctx, track) {
    super(ctx, track);
    this.canvas = el('canvas', { class: 'plot' });
    this.legend = el('div', { class: 'legend' });
    this.body.append(el('div', { class: 'plot-wrap' }, this.canvas, this.legend));
  }

  async update(v) {
    this.view = v;
    await this.run(async (stale) => {
      const t = await this.q({ start: rfc3339(v.cursor - 1000), end: rfc3339(v.cursor) });
      if (stale()) return;
      const col = Object.keys(t.cols).find((k) => k !== 'time');
      const frames = t.cols[col] || [];
      if (!frames.length) { this.grid = null; this.draw(); return 'no frame in the second before the cursor'; }
      this.grid = { values: frames[frames.length - 1], rows: this.track.rows, cols: this.track.cols, time: t.cols.time[t.rows - 1] };
      this.draw();
      return `frame at ${P.fmtTime(this.grid.time)}`;
    });
  }

  draw() {
    const { g, w, h } = P.setup(this.canvas, 320);
    const a = this.grid;
    if (!a) { P.message(g, w, h, 'no frame before the cursor'); return; }
    let lo = Infinity, hi = -Infinity;
    for (const x of a.values) { if (x < lo) lo = x; if (x > hi) hi = x; }
    const img = new ImageData(a.cols, a.rows);
    for (let r = 0; r < a.rows; r++) for (let c = 0; c < a.cols; c++) {
      const [cr, cg, cb] = P.heat((a.values[r * a.cols + c] - lo) / (hi - lo || 1));
      const o = ((a.rows - 1 - r) * a.cols + c) * 4; // row 0 (nearest range) at the bottom
      img.data[o] = cr; img.data[o + 1] = cg; img.data[o + 2] = cb; img.data[o + 3] = 255;
    }
    const off = new OffscreenCanvas(a.cols, a.rows);
    off.getContext('2d').putImageData(img, 0, 0);
    g.imageSmoothingEnabled = false;
    const m = 30;
    const dw = Math.min(w - 2 * m - 260, 640);
    g.drawImage(off, m, m / 2, dw, h - m);
    g.fillStyle = P.AXIS; g.textAlign = 'left'; g.textBaseline = 'top';
    g.fillText(`${a.rows} rows (range bins, up) × ${a.cols} columns (Doppler bins) · ${P.fmtValue(lo)}…${P.fmtValue(hi)} ${this.track.unit || ''}`, m + dw + 8, m / 2);
    this.legend.textContent = a.time ? `frame at ${P.fmtTime(a.time)}` : '';
  }

  live(ev) {
    const c = ev.columns && ev.columns[0];
    if (!c || !c.values) return;
    this.grid = { values: f32(c.values), rows: ev.rows, cols: ev.cols, time: ev.time };
    this.dirty = true;
  }

  drawLive() { if (this.dirty) { this.dirty = false; this.draw(); } }
}

// ---------------------------------------------------------------- frames of bytes

// Frames draws a track of byte frames (opaque, video) as a timeline of its
// frames (key frames tall) and, for opaque frames, lists the frames after
// the cursor in hex. Video playback (MSE over fragmented MP4) needs the
// server's HLS endpoint; until it answers, this is what a video track shows.
export class Frames extends Base {
  constructor(ctx, track) {
    super(ctx, track);
    this.canvas = el('canvas', { class: 'plot strip' });
    this.table = el('table', { class: 'hex' });
    this.note = el('div', { class: 'legend' });
    this.body.append(el('div', { class: 'plot-wrap' }, this.canvas, this.note));
    if (track.kind === 'opaque') this.body.append(this.table);
    this.liveTicks = [];
  }

  async update(v) {
    this.view = v;
    await this.run(async (stale) => {
      const span = v.to - v.from;
      let t = null;
      if (span <= 3600e3) {
        t = await this.q({ start: rfc3339(v.from), end: rfc3339(Math.min(v.to, Date.now() + 1000)), fields: ['key'] });
        if (stale()) return;
      }
      this.ticks = t ? { t: t.cols.time, key: t.cols.key, n: t.rows } : null;
      this.draw(v.from, v.to, v.cursor);
      if (this.track.kind !== 'video') this.note.textContent = 'frames: key frames tall';
      if (this.track.kind === 'opaque') {
        const h = await this.q({ start: rfc3339(v.cursor), end: rfc3339(v.cursor + 10000), fields: ['data'] });
        if (stale()) return;
        this.hex(h.cols.time, h.cols.data, h.rows);
      }
      return t ? `${fmtN(t.rows)} frames` : 'zoom to an hour or less to see each frame';
    });
  }

  draw(from, to, cursor, live) {
    const { g, w, h } = P.setup(this.canvas, 70);
    const f = new P.Frame(w, h, from, to, 0, 1, { l: 64, r: 12, t: 6, b: 20 });
    P.axes(g, f, '', false);
    const src = live ? { t: this.liveTicks.map((x) => x.t), key: this.liveTicks.map((x) => x.key), n: this.liveTicks.length } : this.ticks;
    if (!src) { P.message(g, w, h, 'zoom to an hour or less to see each frame'); return; }
    for (let i = 0; i < src.n; i++) {
      const x = Math.round(f.x(src.t[i])) + 0.5;
      if (x < f.m.l || x > f.m.l + f.pw) continue;
      g.strokeStyle = src.key[i] ? P.COLORS[1] : P.COLORS[0];
      g.beginPath(); g.moveTo(x, f.m.t + f.ph); g.lineTo(x, f.m.t + f.ph * (src.key[i] ? 0.05 : 0.55)); g.stroke();
    }
    if (!live) P.cursorLine(g, f, cursor);
  }

  hex(times, data, n) {
    this.table.replaceChildren(el('tr', {}, el('th', {}, 'time'), el('th', {}, 'bytes'), el('th', {}, 'hex (first 32 bytes)'), el('th', {}, 'text')));
    for (let i = 0; i < Math.min(n, 40); i++) this.table.append(hexRow(times[i], data[i].length, data[i].subarray(0, 32)));
    if (!n) this.table.append(el('tr', {}, el('td', { colspan: '4' }, 'no frames in the 10 s after the cursor')));
  }

  live(ev) {
    this.liveTicks.push({ t: ev.time, key: ev.key });
    const keep = (this.ctx.liveSpan || 10000) + 2000;
    while (this.liveTicks.length && this.liveTicks[0].t < ev.time - keep) this.liveTicks.shift();
    if (this.track.kind === 'opaque' && ev.head) {
      const bytes = Uint8Array.from(ev.head.match(/../g) || [], (x) => parseInt(x, 16));
      this.table.insertBefore(hexRow(ev.time, ev.size, bytes.subarray(0, 32)), this.table.rows[1] || null);
      while (this.table.rows.length > 41) this.table.deleteRow(-1);
    }
  }

  drawLive(from, to) { this.draw(from, to, to, true); }
}

// Video adds playback to the strip of frames: an ON_DEMAND HLS session
// (GetHLSStreamingSessionURL, signed) from the cursor to the end of the
// view, whose fragmented MP4 init and media segments — remuxed by the
// server from the stored H.264 (and AAC), never transcoded — are appended
// to a Media Source Extensions buffer of a <video>.
export class Video extends Frames {
  constructor(ctx, track) {
    super(ctx, track);
    this.video = el('video', { class: 'player', controls: '', muted: '', playsinline: '' });
    this.playBtn = el('button', { type: 'button', onclick: () => this.play() }, '▶ Play from cursor');
    this.playState = el('span', { class: 'status' });
    this.body.append(el('div', { class: 'legend' }, this.playBtn, this.playState), this.video);
    this.note.textContent = 'H.264: key frames tall, others short. Playback: fragmented MP4 remuxed by the server (HLS session), played with Media Source Extensions.';
  }

  async play() {
    const v = this.view;
    const end = Math.min(v.to, v.cursor + 10 * 60e3);
    this.playState.textContent = 'opening a session…';
    this.playState.classList.remove('error');
    try {
      const out = await post('/getHLSStreamingSessionURL', {
        StreamName: this.ctx.stream, PlaybackMode: 'ON_DEMAND', ContainerFormat: 'FRAGMENTED_MP4',
        HLSFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: (v.cursor - 2000) / 1000, EndTimestamp: end / 1000 } },
        Expires: 600,
      });
      const master = new URL(out.HLSStreamingSessionURL, location.href);
      const mtext = await (await fetch(master)).text();
      const codecs = (mtext.match(/CODECS="([^"]+)"/) || [])[1];
      const mediaLine = mtext.split('\n').find((l) => l && !l.startsWith('#'));
      const media = new URL(mediaLine, master);
      const ptext = await (await fetch(media)).text();
      const init = new URL((ptext.match(/#EXT-X-MAP:URI="([^"]+)"/) || [])[1], media);
      const segs = ptext.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => new URL(l, media));
      const type = `video/mp4; codecs="${codecs}"`;
      if (!window.MediaSource || !MediaSource.isTypeSupported(type)) throw new Error(`this browser cannot play ${type} (Media Source Extensions)`);
      const ms = new MediaSource();
      if (this.objectURL) URL.revokeObjectURL(this.objectURL);
      this.objectURL = URL.createObjectURL(ms);
      this.video.src = this.objectURL;
      await new Promise((ok) => ms.addEventListener('sourceopen', ok, { once: true }));
      const sb = ms.addSourceBuffer(type);
      const append = (buf) => new Promise((ok, bad) => {
        sb.addEventListener('updateend', ok, { once: true });
        sb.addEventListener('error', () => bad(new Error('the browser refused a segment')), { once: true });
        sb.appendBuffer(buf);
      });
      await append(await (await fetch(init)).arrayBuffer());
      let appended = 0;
      for (const u of segs) {
        const r = await fetch(u);
        if (!r.ok) throw new Error(`segment: HTTP ${r.status}`);
        await append(await r.arrayBuffer());
        appended++;
        this.playState.textContent = `${appended} of ${segs.length} segments (${codecs})`;
        if (appended === 1) {
          // The segments keep the stream's own times: start where they are.
          if (sb.buffered.length) this.video.currentTime = sb.buffered.start(0);
          this.video.play().catch(() => {});
        }
      }
      if (ms.readyState === 'open') ms.endOfStream();
      window.__sensoriumVideo = { segments: appended, codecs };
    } catch (e) {
      this.playState.textContent = e.message;
      this.playState.classList.add('error');
    }
  }
}

function hexRow(t, size, bytes) {
  const hx = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
  const tx = Array.from(bytes, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '·')).join('');
  return el('tr', {}, el('td', {}, P.fmtTime(t)), el('td', {}, String(size)), el('td', { class: 'mono' }, hx), el('td', { class: 'mono' }, tx));
}

// viewFor picks the view of a track's kind.
export function viewFor(ctx, track) {
  switch (track.kind) {
    case 'scalar': case 'imu': return new Sampled(ctx, track);
    case 'audio': return new Audio(ctx, track);
    case 'pointcloud': return new PointCloud(ctx, track);
    case 'detections': return new Detections(ctx, track);
    case 'array': return new ArrayView(ctx, track);
    case 'video': return new Video(ctx, track);
    case 'opaque': return new Frames(ctx, track);
  }
  const v = new Base(ctx, track);
  v.update = async () => v.setStatus(`no view for ${track.kind} (${track.codecId})${track.error ? ': ' + track.error : ''}`, true);
  return v;
}

export { ns };
