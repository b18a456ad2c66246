// idempotent-client.js: the client half of the Idempotency-Key contract
// (README, "The client half of the contract"), for a page in a browser.
// No dependencies; an ES module.
//
//   import { IdempotentClient } from "./idempotent-client.js";
//   const api = new IdempotentClient({ baseURL: "https://api.example.com", token: () => jwt });
//   const r = await api.post({ operation: "pay:" + orderId, path: "/payments", body });
//   if (r.outcome === "declined") { api.newAttempt("pay:" + orderId); /* let the user try again */ }
//
// - One key per logical operation ("place order" for a cart, "pay" for an
//   order), minted with crypto.randomUUID() and kept in sessionStorage under
//   the operation, so clicks, retries and a reload all send the same key. A
//   new key only through newAttempt(): after a decline, or when the user
//   changes the payment method. Never on its own.
// - Calls for one operation while one is in flight join it (single flight).
// - Each request asks the server to wait for a duplicate in flight
//   (Prefer: wait=N), so a second tab or a click after a reload needs no retry.
// - Retries, with the same key, a network error, 408, 425, 429, 5xx and the
//   in-flight 409s (payment-in-progress, idempotency-key-in-use,
//   idempotency-lease-lost), honouring Retry-After (capped), with exponential
//   backoff and jitter, until an overall deadline. Never retries 400, 401,
//   403, 404, 413, 422 nor a final 2xx (201 paid, 200 already paid).
// - An answer it does not understand stops the operation and is reported
//   (outcome "unexpected"); the key is kept.
// - A network error while the browser says it is offline waits for the
//   "online" event (or the deadline) instead of spending attempts.
// - It always sets its own Idempotency-Key, so a key a browser would add by
//   itself (Firefox can, changing on every reload) never applies.

/**
 * What a call ended with.
 * - "succeeded": a 2xx; this request (or an earlier one with the same key) did it.
 * - "already-paid": 200 with already_paid: true; another request (another
 *   key) paid the order. Final.
 * - "declined": 402; final for this attempt. newAttempt() then a new call
 *   to try again.
 * - "rejected": 400, 401, 403, 404, 413, 415, or a final 409 (e.g.
 *   idempotency-result-not-retained); retrying the same request cannot help.
 * - "programming-error": 422 (the key was sent with another payload), or a
 *   call whose body differs from the one the operation's key was first used
 *   with. A bug in the page: newAttempt() when the user changed something.
 * - "gave-up": still retryable when the deadline came (network down, 5xx,
 *   in flight elsewhere). The key is kept: the next call continues.
 * - "unexpected": an answer the client does not understand. The key is kept.
 * @typedef {"succeeded"|"already-paid"|"declined"|"rejected"|"programming-error"|"gave-up"|"unexpected"} Outcome
 */

/**
 * @typedef {object} Result
 * @property {Outcome} outcome
 * @property {number} status HTTP status of the last answer, 0 when none came.
 * @property {any} body The last answer's body: parsed JSON when it is JSON, else text.
 * @property {boolean} replayed The answer was a replay (Idempotent-Replayed: true).
 * @property {string} key The Idempotency-Key sent.
 * @property {number} attempts Requests sent by this call.
 * @property {string|null} location The Location header, when exposed.
 * @property {string} [problem] The problem type's last path segment, for a problem answer.
 * @property {string} [error] Why: the network error, or what was not understood.
 */

/**
 * @typedef {object} Event
 * @property {"attempt"|"retry"|"result"} type
 * @property {string} operation
 * @property {number} attempt
 * @property {number} [status]
 * @property {number} [delayMs] before the next attempt ("retry")
 * @property {string} [reason] ("retry")
 * @property {Result} [result] ("result")
 */

/**
 * @typedef {object} Options
 * @property {string} baseURL The API's origin, e.g. "http://127.0.0.1:3000".
 * @property {string|(() => string)} [token] Bearer token (or a function returning one).
 * @property {typeof fetch} [fetch]
 * @property {Pick<Storage, "getItem"|"setItem"|"removeItem">} [storage] default sessionStorage
 * @property {() => string} [newKey] default crypto.randomUUID()
 * @property {() => number} [now] milliseconds, default Date.now
 * @property {(fn: () => void, ms: number) => any} [setTimeout]
 * @property {(id: any) => void} [clearTimeout]
 * @property {() => number} [random] in [0, 1), default Math.random
 * @property {number} [waitSeconds] Prefer: wait=N, default 5; 0 sends no Prefer.
 * @property {number} [deadlineMs] overall time for one call, retries included, default 30000
 * @property {number} [attemptTimeoutMs] one request's time, default waitSeconds*1000 + 15000
 * @property {number} [baseDelayMs] first backoff, default 250
 * @property {number} [maxDelayMs] backoff cap, default 4000
 * @property {number} [maxRetryAfterMs] Retry-After cap, default 10000
 * @property {string} [storagePrefix] default "idem:"
 * @property {(e: Event) => void} [onEvent]
 * @property {Online} [online] default navigator.onLine and the window's "online" event
 */

/**
 * Whether the browser says it is online, and a way to hear when it is back.
 * @typedef {object} Online
 * @property {() => boolean} isOnline
 * @property {(cb: () => void) => (() => void)} onOnline subscribes; returns the unsubscribe
 */

/** @returns {Online} navigator.onLine and window's "online" event, or always online outside a browser. */
function browserOnline() {
  const nav = globalThis.navigator;
  const win = globalThis.window;
  if (!nav || typeof nav.onLine !== "boolean" || !win || typeof win.addEventListener !== "function") {
    return { isOnline: () => true, onOnline: () => () => {} };
  }
  return {
    isOnline: () => nav.onLine,
    onOnline: (cb) => {
      win.addEventListener("online", cb);
      return () => win.removeEventListener("online", cb);
    },
  };
}

/** Problem types (last path segment) of a 409 that means "in flight: retry the same key". */
export const RETRYABLE_CONFLICTS = Object.freeze(["payment-in-progress", "idempotency-key-in-use", "idempotency-lease-lost"]);

/** Problem types of a 409 that is final: it carries no Retry-After, and the same request gets it again. */
export const FINAL_CONFLICTS = Object.freeze(["idempotency-result-not-retained", "transaction-conflict"]);

/** Statuses retried with the same key (plus the in-flight 409s). */
const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

/** Statuses that end a call: retrying the same request cannot help. */
const REJECTED_STATUS = new Set([400, 401, 403, 404, 405, 413, 415]);

/**
 * Parses a Retry-After value (delay-seconds or an HTTP date) into
 * milliseconds from now; null when absent or malformed.
 * @param {string|null} value
 * @param {number} now
 * @returns {number|null}
 */
export function parseRetryAfter(value, now) {
  if (value == null) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return null;
  return Math.max(0, t - now);
}

/**
 * The client. One per page (it holds the in-flight calls).
 */
export class IdempotentClient {
  /** @param {Options} opts */
  constructor(opts) {
    if (!opts || typeof opts.baseURL !== "string") throw new TypeError("IdempotentClient: baseURL is required");
    this.baseURL = opts.baseURL.replace(/\/+$/, "");
    this.token = opts.token;
    this.fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.storage = opts.storage ?? globalThis.sessionStorage;
    this.newKey = opts.newKey ?? (() => globalThis.crypto.randomUUID());
    this.now = opts.now ?? Date.now;
    this.setTimeout = opts.setTimeout ?? globalThis.setTimeout.bind(globalThis);
    this.clearTimeout = opts.clearTimeout ?? globalThis.clearTimeout.bind(globalThis);
    this.random = opts.random ?? Math.random;
    this.waitSeconds = opts.waitSeconds ?? 5;
    this.deadlineMs = opts.deadlineMs ?? 30000;
    this.attemptTimeoutMs = opts.attemptTimeoutMs ?? this.waitSeconds * 1000 + 15000;
    this.baseDelayMs = opts.baseDelayMs ?? 250;
    this.maxDelayMs = opts.maxDelayMs ?? 4000;
    this.maxRetryAfterMs = opts.maxRetryAfterMs ?? 10000;
    this.prefix = opts.storagePrefix ?? "idem:";
    this.onEvent = opts.onEvent ?? (() => {});
    this.online = opts.online ?? browserOnline();
    /** @type {Map<string, Promise<Result>>} */
    this.inflight = new Map();
  }

  /**
   * The key of an operation, minted and stored on first use.
   * @param {string} operation
   * @returns {string}
   */
  keyFor(operation) {
    return this.#entry(operation, undefined).key;
  }

  /**
   * Starts a new attempt of an operation: the next call sends a new key.
   * Call it after a decline, or when the user changed what the operation
   * sends (another payment method). Refused while a call is in flight.
   * @param {string} operation
   * @returns {boolean} false when a call of the operation is in flight
   */
  newAttempt(operation) {
    if (this.inflight.has(operation)) return false;
    this.storage.removeItem(this.prefix + operation);
    return true;
  }

  /**
   * Forgets an operation's key once the page is done with it.
   * @param {string} operation
   */
  forget(operation) {
    this.newAttempt(operation);
  }

  /**
   * Sends a POST for an operation with its key, retrying as the contract
   * says. A call while one of the same operation is in flight joins it.
   * @param {{operation: string, path: string, body: any, headers?: Record<string,string>}} req
   * @returns {Promise<Result>}
   */
  post(req) {
    const running = this.inflight.get(req.operation);
    if (running) return running;
    const p = this.#run(req).finally(() => this.inflight.delete(req.operation));
    this.inflight.set(req.operation, p);
    return p;
  }

  /**
   * The stored entry of an operation, made when missing. body, when given,
   * is recorded with a new entry, and stored as the first payload of an
   * entry that has none.
   * @param {string} operation
   * @param {string|undefined} body
   * @returns {{key: string, body?: string}}
   */
  #entry(operation, body) {
    const name = this.prefix + operation;
    let e = null;
    try {
      e = JSON.parse(this.storage.getItem(name) ?? "null");
    } catch {
      e = null;
    }
    if (!e || typeof e.key !== "string" || e.key === "") {
      e = { key: this.newKey() };
    } else if (e.body !== undefined || body === undefined) {
      return e;
    }
    if (body !== undefined) e.body = body;
    this.storage.setItem(name, JSON.stringify(e));
    return e;
  }

  /** @param {{operation: string, path: string, body: any, headers?: Record<string,string>}} req */
  async #run(req) {
    const body = typeof req.body === "string" ? req.body : JSON.stringify(req.body);
    const { key, body: first } = this.#entry(req.operation, body);
    /** @type {Result} */
    const res = { outcome: "gave-up", status: 0, body: null, replayed: false, key, attempts: 0, location: null };
    const finish = (/** @type {Outcome} */ outcome, /** @type {string|undefined} */ error) => {
      res.outcome = outcome;
      if (error !== undefined) res.error = error;
      this.onEvent({ type: "result", operation: req.operation, attempt: res.attempts, status: res.status, result: res });
      return res;
    };
    if (first !== body) {
      return finish("programming-error", "the operation's key was first sent with another body: call newAttempt() when the user changes what is sent");
    }
    const deadline = this.now() + this.deadlineMs;
    for (;;) {
      res.attempts++;
      this.onEvent({ type: "attempt", operation: req.operation, attempt: res.attempts });
      const remaining = deadline - this.now();
      const wait = Math.min(this.waitSeconds, Math.floor((remaining - 1000) / 1000));
      // Headers, not an object: a caller's "idempotency-key" in any case
      // is replaced, never sent next to ours.
      const headers = new Headers(req.headers);
      if (!headers.has("Content-Type")) headers.set("Content-Type", "application/json");
      headers.set("Idempotency-Key", key);
      if (wait > 0) headers.set("Prefer", "wait=" + wait);
      const tok = typeof this.token === "function" ? this.token() : this.token;
      if (tok) headers.set("Authorization", "Bearer " + tok);

      let retryAfter = null;
      let reason = "";
      try {
        // No `cache` option: "no-store" or "reload" also bypass the
        // browser's preflight cache (Chromium sends a preflight before every
        // POST then); a POST's answer is never cached anyway.
        const r = await this.#send(this.baseURL + req.path, { method: "POST", headers, body, mode: "cors", credentials: "omit" }, Math.min(this.attemptTimeoutMs, remaining));
        res.status = r.status;
        res.body = await readBody(r);
        res.replayed = r.headers.get("Idempotent-Replayed") === "true";
        res.location = r.headers.get("Location");
        delete res.problem;
        delete res.error;
        const problem = problemType(r, res.body);
        if (problem) res.problem = problem;
        const verdict = classify(r.status, problem, res.body);
        if (verdict !== "retry") return finish(verdict, verdict === "unexpected" ? `status ${r.status}${problem ? " " + problem : ""} is not part of the contract` : undefined);
        retryAfter = parseRetryAfter(r.headers.get("Retry-After"), this.now());
        reason = `status ${r.status}${problem ? " " + problem : ""}`;
      } catch (err) {
        // A network error (offline, connection refused, CORS refusal) or
        // this attempt's timeout: the request may or may not have arrived.
        res.status = 0;
        res.body = null;
        res.error = reason = String(err && err.message ? err.message : err);
      }
      if (res.status === 0 && !this.online.isOnline()) {
        // Offline: every attempt would fail at once. Wait for the network
        // to come back (then retry at once), or for the deadline.
        const left = deadline - this.now();
        this.onEvent({ type: "retry", operation: req.operation, attempt: res.attempts, status: 0, delayMs: left, reason: "offline: waiting for the network" });
        if (!(await this.#untilOnline(left))) return finish("gave-up", res.error ?? reason);
        continue;
      }
      const backoff = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (res.attempts - 1));
      let delay = backoff / 2 + this.random() * (backoff / 2); // equal jitter
      if (retryAfter !== null) delay = Math.max(delay, Math.min(retryAfter, this.maxRetryAfterMs));
      if (this.now() + delay >= deadline) return finish("gave-up", res.error ?? reason);
      this.onEvent({ type: "retry", operation: req.operation, attempt: res.attempts, status: res.status, delayMs: delay, reason });
      await new Promise((resolve) => this.setTimeout(resolve, delay));
    }
  }

  /**
   * Resolves true when the browser is back online, false after ms.
   * @param {number} ms
   * @returns {Promise<boolean>}
   */
  #untilOnline(ms) {
    return new Promise((resolve) => {
      let off = () => {};
      const timer = this.setTimeout(() => {
        off();
        resolve(false);
      }, ms);
      off = this.online.onOnline(() => {
        this.clearTimeout(timer);
        off();
        resolve(true);
      });
    });
  }

  /**
   * One request with a timeout.
   * @param {string} url
   * @param {RequestInit} init
   * @param {number} timeoutMs
   * @returns {Promise<Response>}
   */
  async #send(url, init, timeoutMs) {
    const ctl = new AbortController();
    const timer = this.setTimeout(() => ctl.abort(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
    try {
      return await this.fetch(url, { ...init, signal: ctl.signal });
    } finally {
      this.clearTimeout(timer);
    }
  }
}

/**
 * What to do with an answer.
 * @param {number} status
 * @param {string|undefined} problem
 * @param {any} body
 * @returns {Outcome|"retry"}
 */
export function classify(status, problem, body) {
  if (status === 200 && body && typeof body === "object" && body.already_paid === true) return "already-paid";
  if (status >= 200 && status < 300) return "succeeded";
  if (status === 402) return "declined";
  if (status === 422) return "programming-error";
  if (status === 409) {
    if (problem && RETRYABLE_CONFLICTS.includes(problem)) return "retry";
    if (problem && FINAL_CONFLICTS.includes(problem)) return "rejected";
    return "unexpected";
  }
  if (RETRYABLE_STATUS.has(status)) return "retry";
  if (REJECTED_STATUS.has(status)) return "rejected";
  return "unexpected";
}

/**
 * @param {Response} r
 * @returns {Promise<any>}
 */
async function readBody(r) {
  const text = await r.text();
  const ct = r.headers.get("Content-Type") ?? "";
  if (/json/i.test(ct) && text !== "") {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

/**
 * The last path segment of a problem+json answer's type.
 * @param {Response} r
 * @param {any} body
 * @returns {string|undefined}
 */
function problemType(r, body) {
  if (!/problem\+json/i.test(r.headers.get("Content-Type") ?? "")) return undefined;
  if (!body || typeof body.type !== "string") return undefined;
  return body.type.replace(/\/+$/, "").split("/").pop();
}
