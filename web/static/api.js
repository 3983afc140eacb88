// The console's client of the API: every request for data is signed with
// SigV4 (sigv4.js) when the server wants signatures, exactly as the AWS SDKs
// sign, and goes to the same operations any client uses.
//
// The key: the secret is imported into a non-extractable WebCrypto key at
// sign-in and the page forgets its text; with "remember" that key object (not
// the secret) is kept in IndexedDB, from which no script can read the
// secret back. Sign-out deletes it.

import { Signer, importSecret } from './sigv4.js';
import { readStream, toTable } from './arrow.js';

export class ApiError extends Error {
  constructor(status, type, message) {
    super(`${type || 'HTTP ' + status}: ${message}`);
    this.status = status;
    this.type = type;
  }
}

let config = null;
let signer = null;

export async function loadConfig() {
  const r = await fetch('/console/config.json', { cache: 'no-store' });
  if (!r.ok) throw new Error(`the console's configuration: HTTP ${r.status}`);
  config = await r.json();
  return config;
}

export function needsKey() { return config.auth && !signer; }
export function keyId() { return signer ? signer.accessKeyId : ''; }

const DB = 'sensorium-console';

function db() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore('keys');
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function dbDo(mode, fn) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const tx = d.transaction('keys', mode);
    const req = fn(tx.objectStore('keys'));
    tx.oncomplete = () => { d.close(); resolve(req && req.result); };
    tx.onerror = () => { d.close(); reject(tx.error); };
  });
}

// restoreKey signs in with the key kept by an earlier "remember".
export async function restoreKey() {
  if (!config.auth) return false;
  try {
    const k = await dbDo('readonly', (s) => s.get('key'));
    if (k && k.region === config.region && k.secretKey instanceof CryptoKey) {
      signer = new Signer(k.accessKeyId, k.secretKey, config.region, config.service);
      return true;
    }
  } catch (e) {
    console.warn('console: the kept key could not be read', e);
  }
  return false;
}

// signIn checks a key with a signed ListStreams before keeping it.
export async function signIn(accessKeyId, secret, remember) {
  const secretKey = await importSecret(secret);
  const s = new Signer(accessKeyId.trim(), secretKey, config.region, config.service);
  const prev = signer;
  signer = s;
  try {
    await post('/listStreams', { MaxResults: 1 });
  } catch (e) {
    signer = prev;
    throw e;
  }
  if (remember) await dbDo('readwrite', (st) => st.put({ accessKeyId: s.accessKeyId, secretKey, region: config.region }, 'key'));
  else await dbDo('readwrite', (st) => st.delete('key'));
}

export async function signOut() {
  signer = null;
  await dbDo('readwrite', (s) => s.delete('key'));
}

async function send(method, path, params, body, accept, signal) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
  const bytes = body === undefined ? null : new TextEncoder().encode(JSON.stringify(body));
  for (let attempt = 0; ; attempt++) {
    const headers = {};
    if (bytes) headers['Content-Type'] = 'application/json';
    if (accept) headers.Accept = accept;
    if (signer) Object.assign(headers, await signer.sign(method, url.toString(), bytes));
    const r = await fetch(url, { method, headers, body: bytes, cache: 'no-store', signal });
    if (r.ok) return r;
    let type = r.headers.get('x-amzn-ErrorType') || '';
    let message = r.statusText;
    try { const j = await r.json(); message = j.message || message; type = type || j.__type; } catch { /* not JSON */ }
    // A clock that is minutes off: learn the server's from its Date and retry once.
    if (signer && attempt === 0 && /Signature (not yet current|expired)/.test(message) && r.headers.get('Date')) {
      signer.skew = new Date(r.headers.get('Date')).getTime() - Date.now();
      continue;
    }
    if (r.status === 403 && signer === null && config.auth) throw new ApiError(r.status, 'SignInRequired', 'this server wants a key');
    throw new ApiError(r.status, type, message);
  }
}

// post calls one of the seed service's operations (POST /<op>, JSON).
export async function post(path, body) {
  const r = await send('POST', path, null, body || {});
  const text = await r.text();
  return text ? JSON.parse(text) : {};
}

// getJSON calls one of the console's GETs (console_data.go).
export async function getJSON(path, params, signal) {
  return (await send('GET', path, params, undefined, undefined, signal)).json();
}

// postBytes calls an operation whose answer is binary (a query, media).
export async function postBytes(path, body, signal) {
  const r = await send('POST', path, null, body, undefined, signal);
  return { buffer: await r.arrayBuffer(), contentType: r.headers.get('Content-Type') || '', trailerError: r.headers.get('Sensorium-Error') };
}

// query runs POST /v1/query and reads its Arrow answer into columns.
// A signal (AbortController's) ends the request, and with it the server's
// work on it, when the page no longer wants the answer.
export async function query(req, signal) {
  const { buffer } = await postBytes('/v1/query', req, signal);
  const s = readStream(buffer);
  if (!s.complete) throw new Error(`the query of ${req.stream} ended before its end-of-stream marker (the server failed part way)`);
  return toTable(s);
}

// getBytes fetches a signed GET's binary answer (a preview PNG).
export async function getBlob(path, params) {
  return (await send('GET', path, params)).blob();
}

// presigned returns a GET URL that carries its own signature (EventSource
// cannot set headers), valid for expires seconds.
export async function presigned(path, params, expires = 300) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
  if (!signer) return url.toString();
  return signer.presign('GET', url.toString(), expires);
}

// ns turns the console's ms into the API's integer ns, as a string.
export function ns(ms) {
  return (BigInt(Math.floor(ms)) * 1000000n + BigInt(Math.round((ms - Math.floor(ms)) * 1e6))).toString();
}
