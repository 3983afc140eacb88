// Drawing helpers for the console's canvases: sizing for the screen's pixel
// ratio, time and value axes with ticks a person reads, colours, and
// formatting of times, bytes and rates.

export const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
export const BG = '#ffffff';
export const GRID = '#e6e8eb';
export const AXIS = '#5b6470';
export const CURSOR = '#c2185b';

// setup sizes a canvas to its CSS box at the device's pixel ratio and
// returns its 2-D context scaled to CSS pixels, cleared to the background.
export function setup(canvas, cssHeight) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(50, Math.floor(canvas.clientWidth || canvas.parentElement.clientWidth || 600));
  const h = cssHeight || canvas.clientHeight || 150;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    canvas.style.height = h + 'px';
  }
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.fillStyle = BG;
  g.fillRect(0, 0, w, h);
  g.font = '11px system-ui, sans-serif';
  return { g, w, h };
}

const SEC = 1000, MIN = 60 * SEC, HOUR = 60 * MIN, DAY = 24 * HOUR;
const TIME_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, SEC, 2 * SEC, 5 * SEC, 10 * SEC, 15 * SEC, 30 * SEC, MIN, 2 * MIN, 5 * MIN,
  10 * MIN, 15 * MIN, 30 * MIN, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY];

// timeTicks: tick times for a range of ms shown over px pixels.
export function timeTicks(from, to, px) {
  const want = Math.max(2, Math.floor(px / 110));
  const span = to - from;
  let step = TIME_STEPS.find((s) => span / s <= want) || TIME_STEPS[TIME_STEPS.length - 1];
  if (span / step > want) step = Math.ceil(span / want);
  const off = step >= DAY ? new Date(from).getTimezoneOffset() * -MIN : 0; // whole local days
  const out = [];
  for (let t = Math.ceil((from + off) / step) * step - off; t <= to; t += step) out.push(t);
  return { ticks: out, step };
}

function pad(n, w = 2) { return String(n).padStart(w, '0'); }

// fmtTick formats a tick at the precision its step needs.
export function fmtTick(t, step) {
  const d = new Date(t);
  if (step < SEC) return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  if (step < MIN) return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (step < DAY) return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

// fmtTime is a full local time to the ms.
export function fmtTime(t) {
  if (!Number.isFinite(t)) return '—';
  const d = new Date(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function fmtDuration(ms) {
  if (!Number.isFinite(ms)) return '—';
  const a = Math.abs(ms);
  if (a < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (a < SEC) return `${ms.toFixed(0)} ms`;
  if (a < MIN) return `${(ms / SEC).toFixed(1)} s`;
  if (a < HOUR) return `${(ms / MIN).toFixed(1)} min`;
  if (a < 2 * DAY) return `${(ms / HOUR).toFixed(1)} h`;
  return `${(ms / DAY).toFixed(1)} d`;
}

export function fmtBytes(n) {
  if (!Number.isFinite(n)) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : Math.round(n)} ${u[i]}`;
}

// valueTicks: about n round values covering [lo, hi].
export function valueTicks(lo, hi, n) {
  if (!(hi > lo)) { const c = Number.isFinite(lo) ? lo : 0; lo = c - 1; hi = c + 1; }
  const raw = (hi - lo) / Math.max(1, n);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return { ticks: out, step };
}

export function fmtValue(v, step) {
  if (!Number.isFinite(v)) return '—';
  if (!step) return Number.isInteger(v) ? String(v) : Math.abs(v) >= 1e6 || Math.abs(v) < 1e-3 ? v.toExponential(3) : String(Number(v.toPrecision(5)));
  const a = Math.abs(step || v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  const digits = step ? Math.max(0, -Math.floor(Math.log10(step)) + (step / Math.pow(10, Math.floor(Math.log10(step))) % 1 ? 1 : 0)) : 3;
  return v.toFixed(Math.min(6, digits));
}

// Frame: the plotting area inside margins, with time on x and a value on y.
export class Frame {
  constructor(w, h, from, to, lo, hi, margin = { l: 64, r: 12, t: 8, b: 20 }) {
    Object.assign(this, { w, h, from, to, lo, hi, m: margin });
    this.pw = w - margin.l - margin.r;
    this.ph = h - margin.t - margin.b;
  }
  x(t) { return this.m.l + ((t - this.from) / (this.to - this.from)) * this.pw; }
  t(x) { return this.from + ((x - this.m.l) / this.pw) * (this.to - this.from); }
  y(v) { return this.m.t + this.ph - ((v - this.lo) / (this.hi - this.lo)) * this.ph; }
}

// axes draws the grid, the time ticks below and the value ticks left.
// values false leaves the value ticks out (a timeline, a strip of frames).
export function axes(g, f, unit, values = true) {
  g.strokeStyle = GRID;
  g.lineWidth = 1;
  g.fillStyle = AXIS;
  g.textAlign = 'center';
  g.textBaseline = 'top';
  const tt = timeTicks(f.from, f.to, f.pw);
  for (const t of tt.ticks) {
    const x = Math.round(f.x(t)) + 0.5;
    g.beginPath(); g.moveTo(x, f.m.t); g.lineTo(x, f.m.t + f.ph); g.stroke();
    g.fillText(fmtTick(t, tt.step), x, f.m.t + f.ph + 4);
  }
  const vt = values ? valueTicks(f.lo, f.hi, Math.max(2, Math.floor(f.ph / 30))) : { ticks: [] };
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (const v of vt.ticks) {
    const y = Math.round(f.y(v)) + 0.5;
    g.beginPath(); g.moveTo(f.m.l, y); g.lineTo(f.m.l + f.pw, y); g.stroke();
    g.fillText(fmtValue(v, vt.step), f.m.l - 6, y);
  }
  if (unit) {
    g.save();
    g.translate(10, f.m.t + f.ph / 2);
    g.rotate(-Math.PI / 2);
    g.textAlign = 'center';
    g.fillText(unit, 0, 0);
    g.restore();
  }
  g.strokeStyle = AXIS;
  g.strokeRect(f.m.l + 0.5, f.m.t + 0.5, f.pw, f.ph);
}

export function cursorLine(g, f, t) {
  if (!(t >= f.from && t <= f.to)) return;
  const x = Math.round(f.x(t)) + 0.5;
  g.strokeStyle = CURSOR;
  g.lineWidth = 1;
  g.beginPath(); g.moveTo(x, f.m.t); g.lineTo(x, f.m.t + f.ph); g.stroke();
}

// heat maps v in [0, 1] to a perceptually ordered colour (a viridis-like ramp).
const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
export function heat(v) {
  if (!Number.isFinite(v)) return [255, 255, 255];
  v = Math.min(1, Math.max(0, v)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(v));
  const f = v - i;
  return RAMP[i].map((c, k) => Math.round(c + (RAMP[i + 1][k] - c) * f));
}

// message writes a line of text in the middle of a canvas (no data, an error).
export function message(g, w, h, text, color = AXIS) {
  g.fillStyle = color;
  g.textAlign = 'center';
  g.textBaseline = 'middle';
  g.fillText(text, w / 2, h / 2);
}
