// AWS Signature Version 4 in the browser, with WebCrypto: the same
// signatures the AWS SDKs make, so that the console's requests are checked
// by the server exactly as any client's are. The secret never leaves the
// CryptoKey it is imported into ("AWS4" + secret, non-extractable): the
// page cannot read it back, and what is stored in IndexedDB is that key
// object, never the secret's text (api.js).

const enc = new TextEncoder();
const subtle = crypto.subtle;

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
}

export async function sha256Hex(data) {
  const bytes = typeof data === 'string' ? enc.encode(data) : data;
  return hex(await subtle.digest('SHA-256', bytes));
}

async function hmacKey(raw) {
  return subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
}

async function hmac(key, msg) {
  return subtle.sign('HMAC', key, enc.encode(msg));
}

// importSecret makes the non-extractable key the signatures start from.
export function importSecret(secret) {
  return hmacKey(enc.encode('AWS4' + secret));
}

// RFC 3986 percent-encoding, as SigV4's canonical forms want it.
export function uriEncode(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function amzDate(d) {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function canonicalQuery(params) {
  return [...params].map(([k, v]) => [uriEncode(k), uriEncode(v)])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`).join('&');
}

function canonicalPath(path) {
  return path.split('/').map((seg) => uriEncode(decodeURIComponent(seg))).join('/');
}

export class Signer {
  // accessKeyId: the key's id; secretKey: importSecret's CryptoKey.
  constructor(accessKeyId, secretKey, region, service) {
    this.accessKeyId = accessKeyId;
    this.secretKey = secretKey;
    this.region = region;
    this.service = service;
    this.keys = new Map(); // date → signing key, derived once a day
    this.skew = 0; // ms the server's clock is ahead of this one's
  }

  async signingKey(date) {
    let k = this.keys.get(date);
    if (!k) {
      const kDate = await hmac(this.secretKey, date);
      const kRegion = await hmac(await hmacKey(kDate), this.region);
      const kService = await hmac(await hmacKey(kRegion), this.service);
      const kSigning = await hmac(await hmacKey(kService), 'aws4_request');
      k = await hmacKey(kSigning);
      this.keys.clear();
      this.keys.set(date, k);
    }
    return k;
  }

  async signature(stringToSign, date) {
    return hex(await hmac(await this.signingKey(date), stringToSign));
  }

  // sign returns the headers that sign a request: method, a URL (absolute),
  // and the body's bytes (or null).
  async sign(method, url, body) {
    const u = new URL(url);
    const now = amzDate(new Date(Date.now() + this.skew));
    const date = now.slice(0, 8);
    const payload = await sha256Hex(body || new Uint8Array(0));
    const headers = { host: u.host, 'x-amz-content-sha256': payload, 'x-amz-date': now };
    const names = Object.keys(headers).sort();
    const canonical = [method, canonicalPath(u.pathname), canonicalQuery(u.searchParams),
      names.map((n) => `${n}:${headers[n]}\n`).join(''), names.join(';'), payload].join('\n');
    const scope = `${date}/${this.region}/${this.service}/aws4_request`;
    const sts = ['AWS4-HMAC-SHA256', now, scope, await sha256Hex(canonical)].join('\n');
    const sig = await this.signature(sts, date);
    return {
      'X-Amz-Date': now,
      'X-Amz-Content-Sha256': payload,
      Authorization: `AWS4-HMAC-SHA256 Credential=${this.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${sig}`,
    };
  }

  // presign returns url with a query-string signature valid for expires
  // seconds (for EventSource, which cannot set headers).
  async presign(method, url, expires) {
    const u = new URL(url);
    const now = amzDate(new Date(Date.now() + this.skew));
    const date = now.slice(0, 8);
    const scope = `${date}/${this.region}/${this.service}/aws4_request`;
    u.searchParams.set('X-Amz-Algorithm', 'AWS4-HMAC-SHA256');
    u.searchParams.set('X-Amz-Credential', `${this.accessKeyId}/${scope}`);
    u.searchParams.set('X-Amz-Date', now);
    u.searchParams.set('X-Amz-Expires', String(expires));
    u.searchParams.set('X-Amz-SignedHeaders', 'host');
    const canonical = [method, canonicalPath(u.pathname), canonicalQuery(u.searchParams), `host:${u.host}\n`, 'host', 'UNSIGNED-PAYLOAD'].join('\n');
    const sts = ['AWS4-HMAC-SHA256', now, scope, await sha256Hex(canonical)].join('\n');
    u.searchParams.set('X-Amz-Signature', await this.signature(sts, date));
    return u.toString();
  }
}
